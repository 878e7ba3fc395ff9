"""Mu & Klabjan (arXiv 2512.18248, ICML 2026): the convergence rate of plain LoRA gradient descent.

Source. The shared copy (``papers/mu-klabjan-lora-gd-convergence-rate.md``) has only the abstract; the
full text could not be read from this project's stores. The formulas below follow a paper note that
quotes the statements with their numbers (papernotes.org, "On the Convergence Rate of LoRA Gradient
Descent", ICML 2026 notes); where that note is silent (the norms) the choice is ours and said so.

Setting (their Section 3). V = [B; Aᵀ] ∈ R^{(m+n)×r} (here Q = [u; v] with δ = u vᵀ, B = u, Aᵀ = v),
E₁ = [I_m 0], E₂ = [0; I_n], J(V) = 𝓛(E₁ V Vᵀ E₂) with 𝓛 L-smooth and bounded below by 𝓛*;
∇J(V) = 2 Sym(E₁ᵀ ∇𝓛 E₂ᵀ) V = [∇𝓛 v; ∇𝓛ᵀ u] (LoRA gradient descent is gradient descent on V).
  Lemma 3.3: J(V₂) ≤ J(V₁) + ⟨∇J(V₁), D⟩ + √2 L ‖D‖²‖V₁‖² + √2 L ‖D‖³‖V₁‖ + (√2 L/4)‖D‖⁴
             + ‖∇𝓛(E₁V₁V₁ᵀE₂)‖ ‖D‖²,  D = V₂ − V₁.
             Its three L terms are √2L(‖D‖‖V₁‖ + ‖D‖²/2)². With δ = uvᵀ and D = [D_u; D_v], δ moves by
             Δ = uD_vᵀ + D_uvᵀ + D_uD_vᵀ, ‖Δ‖ ≤ ‖V₁‖‖D‖ + ‖D‖²/2 (Cauchy–Schwarz), ⟨∇𝓛, D_uD_vᵀ⟩ ≤ ‖∇𝓛‖‖D‖²/2,
             so L-smoothness alone gives the same inequality with (L/2)(…)² and ½‖∇𝓛‖‖D‖² (derived here):
             the lemma's L terms are 2√2 times and its ∇𝓛 term twice what is needed, so it cannot fail on an
             L-smooth 𝓛 (with weight decay the added (λ/2)‖D‖² is exact and has no slack).
  Lemma 3.4: with η_t = min{1 / (4√2 L (‖V_t‖² + ‖∇𝓛(E₁V_tV_tᵀE₂)‖)), 1},
             J(V_{t+1}) ≤ J(V_t) − (η_t/4) ‖∇J(V_t)‖².
             The rule as the note writes it mixes units: L‖∇𝓛‖ is not in the units of L‖V‖² (𝓛 → c𝓛(a·)
             scales L by ca², ∇𝓛 by ca, V² by 1/a), so it cannot hold for every L-smooth 𝓛 without an
             assumption that fixes the units (L ≥ 1, say). Derived here from Lemma 3.3 with D = −η∇J and
             ‖∇J‖ ≤ ‖∇𝓛‖‖V‖ (∇J = [∇𝓛 v; ∇𝓛ᵀ u]), x = ηL‖V‖², y = η‖∇𝓛‖: the decrease holds when
             √2x + y + √2xy + (√2/4)xy² ≤ 3/4, which x + y ≤ 1/(4√2) gives. Readings (``STEP_READINGS``):
             "transcribed" (the note's formula) bounds x but y only by 1/(4√2 L), and the decrease can fail:
             at V = ε[a; b], (a, b) the top singular pair of ∇𝓛(0) with value σ₁, J is ε²σ₁ + O(ε⁴) above
             𝓛(0), and a step η gives the Lemma 3.4 margin 3 − 2ησ₁ + O(ε²), negative once ησ₁ > 3/2
             (``ascent_pair_margin``), which the transcribed η ≤ min{1/(4√2 Lσ₁), 1} allows when
             L < 1/(6√2) ≈ 0.118 and σ₁ > 3/2. "L_at_least_1" (max(L, 1) in place of L: an L-smooth 𝓛 is
             max(L, 1)-smooth) and "unit_consistent" (L‖V‖² + ‖∇𝓛‖) give x + y ≤ 1/(4√2), so Lemma 3.4
             follows from Lemma 3.3 for every L.
  Theorem 3.5: min_{t<T} ‖∇J(V_t)‖² ≤ 4 (J(V₀) − 𝓛*) / Σ_{t<T} η_t, which is O(1/log T) because
             ‖V_t‖² = O(t) in the worst case, and O(1/T) when ‖V_t‖ stays bounded.
Norms: Frobenius for V and for ∇𝓛 (the paper's inner product is ⟨·,·⟩_F; Frobenius ≥ operator norm, so
this reading gives the smaller step). Weight decay λ > 0 is the Burer–Monteiro form f(VVᵀ),
f(X) = 𝓛(E₁XE₂) + (λ/2) tr X, still L-smooth; its gradient term is bounded by ‖∇𝓛‖_F + λ, which is
what ``step_size`` adds (our extension; λ = 0 is their rule exactly).

The rates are UPPER bounds: a faster decay is consistent with them. Fitted rates describe a curve and
prove nothing alone; the bounds with computable constants below are what a check compares.

Shapes: ``T`` (k,) iteration counts ≥ 1 (≥ 2 for the 1/log T rate), increasing;
``grad_sq`` (k,) or ``min_grad_sq`` (k,) positive; ``eta`` (T,) the steps taken.
"""
from __future__ import annotations

import numpy as np

#: the two reference rates of the paper
RATES = ("1/T", "1/logT")
#: the constant of the step-size rule (Lemma 3.4) and the fraction of η‖∇J‖² it guarantees per step
STEP_CONSTANT = 4.0 * np.sqrt(2.0)
DECREASE_FRACTION = 0.25
#: readings of the rule (module docstring): the note's formula, and the two that Lemma 3.3 proves for every L
STEP_READINGS = ("transcribed", "L_at_least_1", "unit_consistent")


def smoothness_constant(hessian_bound: float, sensing_norm_sq: float, N: int) -> float:
    """L of the linearized risk 𝓛(δ) = (1/N) Σ_i ℓ(f0_i + A(δ)_i): ∇²𝓛 = (1/N) A* ∇²ℓ A ⪯ (h/N)‖A‖²_op,
    with h = λ_max(∇²ℓ) (2 squared, 1/2 cross-entropy) and ‖A‖²_op = ``sensing_norm_sq``."""
    return float(hessian_bound * sensing_norm_sq / N)


def step_size(V_norm_sq, grad_L_norm, L: float, lam: float = 0.0, reading: str = "transcribed"):
    """Lemma 3.4's step, capped at 1, in one of ``STEP_READINGS`` (λ = 0: their rule; λ > 0 adds λ to ‖∇𝓛‖):

    - "transcribed": η_t = min{1 / (4√2 L (‖V_t‖²_F + ‖∇𝓛(δ_t)‖_F + λ)), 1}, the note's formula;
    - "L_at_least_1": the same with max(L, 1) in place of L;
    - "unit_consistent": η_t = min{1 / (4√2 (L‖V_t‖²_F + ‖∇𝓛(δ_t)‖_F + λ)), 1}.

    V_norm_sq and grad_L_norm scalars or arrays of one shape (one entry per run); same shape out."""
    V = np.asarray(V_norm_sq, dtype=float)
    g = np.asarray(grad_L_norm, dtype=float) + lam
    if reading == "transcribed":
        denom = L * (V + g)
    elif reading == "L_at_least_1":
        denom = max(L, 1.0) * (V + g)
    elif reading == "unit_consistent":
        denom = L * V + g
    else:
        raise ValueError(f"unknown step-rule reading {reading!r}: expected one of {STEP_READINGS}")
    return np.minimum(1.0 / (STEP_CONSTANT * denom), 1.0)


def ascent_pair_margin(eta, sigma_1):
    """Lemma 3.4's margin (decrease ÷ (η/4)‖∇J‖²) − 1 of one step η from V = ε[a; b], (a, b) the top singular
    pair of ∇𝓛(0) with value σ₁ (λ = 0), to first order in ε: 3 − 2ησ₁ (module docstring; J along the pair is
    ε²σ₁(1 − ησ₁)² after the step, (η/4)‖∇J‖² = ηε²σ₁²/2)."""
    return 3.0 - 2.0 * np.asarray(eta, dtype=float) * np.asarray(sigma_1, dtype=float)


def transcribed_breaking_units(L: float, sigma_1: float, grad_norm: float, start_norm_sq: float,
                               excess: float) -> tuple[float, float]:
    """Units (a, c) of 𝓛'(δ) = c·𝓛(aδ) (L' = ca²L, ∇𝓛'(0) = ca∇𝓛(0)) in which the "transcribed" rule's first step
    from ‖V₀‖² = ``start_norm_sq`` is capped at 1 with a factor 2 to spare (4√2 L'(‖V₀‖² + ‖∇𝓛'(0)‖) = ½) while
    ησ₁' = ca·σ₁ = ``excess`` × 3/2: past the limit of ``ascent_pair_margin`` by that factor when excess > 1.
    ``sigma_1``, ``grad_norm``: σ₁ and ‖·‖_F of ∇𝓛(0) in the original units."""
    p = excess * 1.5 / sigma_1
    a = 0.5 / (STEP_CONSTANT * p * L * (start_norm_sq + p * grad_norm))
    return a, p / a


def decrease_slack(J_now, J_next, eta, grad_J_sq):
    """Lemma 3.4 read at one step: J(V_t) − J(V_{t+1}) − (η_t/4)‖∇J(V_t)‖² (≥ 0 when it holds)."""
    return np.asarray(J_now) - np.asarray(J_next) - DECREASE_FRACTION * np.asarray(eta) * np.asarray(grad_J_sq)


def lemma_3_3_bound(J_now, inner, D_norm, V_norm, grad_L_norm, L: float):
    """Lemma 3.3's upper bound on J(V + D): J + ⟨∇J, D⟩ + √2L‖D‖²‖V‖² + √2L‖D‖³‖V‖ + (√2L/4)‖D‖⁴ + ‖∇𝓛‖‖D‖²."""
    r2 = np.sqrt(2.0) * L
    D = np.asarray(D_norm, dtype=float)
    V = np.asarray(V_norm, dtype=float)
    return (np.asarray(J_now) + np.asarray(inner) + r2 * D ** 2 * V ** 2 + r2 * D ** 3 * V + 0.25 * r2 * D ** 4
            + np.asarray(grad_L_norm) * D ** 2)


def theorem_3_5_bound(J0: float, J_low: float, eta) -> np.ndarray:
    """Theorem 3.5 read at every horizon: 4 (J(V₀) − 𝓛*) / Σ_{t<T} η_t for T = 1 … len(eta), shape (T,).
    ``J_low`` is 𝓛* or any lower bound on it (0 for cross-entropy); a smaller one only loosens the bound."""
    return 4.0 * (J0 - J_low) / np.cumsum(np.asarray(eta, dtype=float))


def bounded_norm_bound(J0: float, J_low: float, eta_min: float, T) -> np.ndarray:
    """The bounded-norm case of Theorem 3.5: with η_t ≥ η_min for t < T (‖V_t‖ ≤ R and ‖∇𝓛‖ ≤ G give
    η_min = ``step_size(R², G, L)``), min_{t<T} ‖∇J‖² ≤ 4 (J(V₀) − 𝓛*) / (η_min T): the O(1/T) rate."""
    return 4.0 * (J0 - J_low) / (eta_min * np.asarray(T, dtype=float))


def gd_descent_bound(F0: float, F_low: float, L: float, T) -> np.ndarray:
    """Full fine-tuning beside LoRA: gradient descent on δ with η = 1/L (descent lemma) gives
    min_{t<T} ‖∇𝓛(δ_t)‖² ≤ 2L (𝓛(δ₀) − 𝓛*) / T."""
    return 2.0 * L * (F0 - F_low) / np.asarray(T, dtype=float)


def running_min(grad_sq: np.ndarray) -> np.ndarray:
    """min_{t ≤ T} ‖∇_t‖² for T = 1, …, len(grad_sq), shape (k,)."""
    return np.minimum.accumulate(np.asarray(grad_sq, dtype=float))


def reference_rate(T: np.ndarray, rate: str) -> np.ndarray:
    """1/T or 1/log T at the iteration counts T, shape (k,)."""
    T = np.asarray(T, dtype=float)
    if rate == "1/T":
        return 1.0 / T
    if rate == "1/logT":
        if np.any(T <= 1):
            raise ValueError("the 1/log T rate needs T ≥ 2")
        return 1.0 / np.log(T)
    raise ValueError(f"unknown rate {rate!r}: expected one of {RATES}")


def _log_positive(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if np.any(y <= 0):
        raise ValueError("squared gradient norms must be > 0 for a log-log fit")
    return np.log(y)


def fit_rate_constant(T: np.ndarray, min_grad_sq: np.ndarray, rate: str) -> float:
    """c minimising Σ (log y − log(c · rate(T)))²: c = exp(mean(log y − log rate(T)))."""
    return float(np.exp(np.mean(_log_positive(min_grad_sq) - np.log(reference_rate(T, rate)))))


def log_fit_residual(T: np.ndarray, min_grad_sq: np.ndarray, rate: str) -> float:
    """Root-mean-square of log y − log(c · rate(T)) at the fitted c (smaller = closer in shape)."""
    resid = _log_positive(min_grad_sq) - np.log(fit_rate_constant(T, min_grad_sq, rate)
                                                 * reference_rate(T, rate))
    return float(np.sqrt(np.mean(resid ** 2)))


def empirical_rate_exponent(T: np.ndarray, min_grad_sq: np.ndarray) -> float:
    """Least-squares slope of log(min_{t ≤ T} ‖∇_t‖²) against log T (−1 for an exact 1/T curve)."""
    logT = np.log(np.asarray(T, dtype=float))
    if logT.size < 2 or np.ptp(logT) == 0:
        raise ValueError("need at least two distinct iteration counts")
    return float(np.polyfit(logT, _log_positive(min_grad_sq), 1)[0])


def apriori_norm_bound(V0_sq: float, gap: float, L: float, t, multiplier: float = 1.0) -> np.ndarray:
    """‖V_t‖²_F ≤ ‖V₀‖² + 4cΔ + 4√(cΔ t / (4√2 L)) for λ = 0, Δ = J(V₀) − 𝓛*, steps c·η_t (c = 1: the rule).

    Derived here from Lemma 3.4 (not in the paper, whose worst case is ‖V_t‖² = O(t)): ‖V_{s+1}‖² ≤ ‖V_s‖²
    + 2η_s‖V_s‖‖∇J_s‖ + η_s²‖∇J_s‖²; Cauchy–Schwarz over s < t with η_s‖V_s‖² ≤ c/(4√2 L) (the rule) and
    Σ η_s‖∇J_s‖² ≤ 4Δ (Lemma 3.4 summed), η_s ≤ c."""
    t = np.asarray(t, dtype=float)
    return V0_sq + 4.0 * multiplier * gap + 4.0 * np.sqrt(multiplier * gap * t / (STEP_CONSTANT * L))


def apriori_grad_bound(V0_sq: float, J0: float, J_low: float, L: float, T: int, *, lam: float = 0.0,
                       multiplier: float = 1.0, reading: str = "transcribed") -> np.ndarray:
    """A bound on min_{t<T} ‖∇J(V_t)‖² for T = 1 … T with constants known before the run, shape (T,):
    Theorem 3.5's 4Δ / Σ_{t<T} η_t with each η_t replaced by a lower bound.

    ‖∇𝓛(δ_t)‖_F² ≤ 2L(𝓛(δ_t) − 𝓛*) ≤ 2LΔ (L-smoothness; J decreases by Lemma 3.4). λ = 0: ‖V_t‖² from
    ``apriori_norm_bound`` (η_t = Ω(1/√t), so this bound is O(1/√T)); λ > 0: ‖V_t‖² ≤ 2J(V₀)/λ (weight decay
    keeps the norms bounded), so η_t ≥ η_min and the bound is 4Δ/(η_min T), the O(1/T) case. The steps are the
    rule's in its ``reading``; ``apriori_norm_bound``'s η‖V‖² ≤ 1/(4√2 L) holds in each."""
    gap = J0 - J_low
    t = np.arange(T, dtype=float)
    if lam > 0:
        V_sq = np.full(T, 2.0 * J0 / lam)
    else:
        V_sq = apriori_norm_bound(V0_sq, gap, L, t, multiplier)
    eta = multiplier * step_size(V_sq, np.sqrt(2.0 * L * gap), L, lam, reading)
    return 4.0 * gap / np.cumsum(eta)


def fit_window(T: np.ndarray, min_grad_sq: np.ndarray) -> dict:
    """Both reference rates fitted on one window: {rate: (c, RMS log residual)}, the better one and the
    log-log slope. T (k,) horizons, min_grad_sq (k,) positive."""
    fits = {rate: (fit_rate_constant(T, min_grad_sq, rate), log_fit_residual(T, min_grad_sq, rate))
            for rate in RATES}
    return {"fits": fits, "better": min(fits, key=lambda r: fits[r][1]),
            "slope": empirical_rate_exponent(T, min_grad_sq)}
