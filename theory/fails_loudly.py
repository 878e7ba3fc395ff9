"""Kim, Kim, Ryu (ICML 2025): LoRA converges to a low-rank global minimum or it fails loudly.

Setting (slides "Assumption: restricted strong convexity and restricted smoothness"). X* is a
rank-r* global minimizer of L̂_λ = f + λ‖·‖_*, LoRA rank r > r*, and f is the smooth,
unregularized loss — here the linearized empirical risk f = L̂ of MATH.md §1 (the nuclear norm
has no Hessian, and RSM needs ∇²f). Over {X : rank X ≤ r, ‖X − X*‖_F ≤ D}:

- (α, r, D)-restricted strong convexity about X*:
      ⟨∇f(X) − ∇f(X*), X − X*⟩ ≥ α ‖X − X*‖_F²;
- (β, r, D)-restricted smoothness about X*: for U (m, m), V (n, n) of rank 1 and unit Frobenius
  norm,   ∇²f(X)[U X + X V, U X + X V] ≤ β ‖U X + X V‖_F².

Theorem. Let (A, B) be an SOSP of the LoRA loss with X = A Bᵀ, ‖X − X*‖_F ≤ D, α, β > 0 and
σ_1 ≥ σ_2 ≥ … the singular values of X. Then
  (i)  σ_r(X) ≤ (2α/β) σ_{r*}(X)  ⇒  X is a global minimizer;
  (ii) otherwise X is spurious and fails loudly:
       ‖X‖_F ≥ √( Σ_{s=r*+1}^{r} σ_s² / (1 − 2α σ_{r*} / (β σ_r)) ) − ‖X*‖_F.

α and β are an infimum and a supremum over a set. Ratios evaluated at sampled points therefore
give, through their minimum, an UPPER bound on the true α and, through their maximum, a LOWER
bound on the true β — never the constants themselves; say so wherever they are reported. The
slides' table (β/α = 8.0, 18.7, 320.8, N/A for r = 8, 16, 32, 64) was measured on a real model
that way; "N/A" is a negative α estimate, where the theorem says nothing.

Shapes: ``sigmas`` (k,) singular values of X in decreasing order (σ_s = sigmas[s − 1], missing
ones are 0); ``X``, ``X_star`` (m, n); ``U`` (m, m); ``V`` (n, n).
"""
from __future__ import annotations

import numpy as np

from theory.linearized_model import apply_A, predictions, risk_gradient
from theory.losses import get_loss


def _sigma(sigmas: np.ndarray, s: int) -> float:
    """σ_s (1-indexed), 0 beyond the given values."""
    return float(sigmas[s - 1]) if s <= len(sigmas) else 0.0


def _check_constants(sigmas, r: int, r_star: int, alpha: float, beta: float) -> np.ndarray:
    sigmas = np.asarray(sigmas, dtype=float)
    if not 1 <= r_star < r:
        raise ValueError(f"need 1 ≤ r* < r, got r* = {r_star}, r = {r}")
    if not (alpha > 0 and beta > 0):
        raise ValueError(f"the theorem needs α > 0 and β > 0, got α = {alpha}, β = {beta}")
    if np.any(sigmas < 0) or np.any(np.diff(sigmas) > 0):
        raise ValueError("sigmas must be non-negative and in decreasing order")
    return sigmas


def gap_ratio(alpha: float, beta: float) -> float:
    """2α/β, the spectral-gap threshold of the theorem."""
    return 2.0 * alpha / beta


def is_global_by_gap(sigmas, r: int, r_star: int, alpha: float, beta: float) -> bool:
    """Case (i): σ_r(X) ≤ (2α/β) σ_{r*}(X), which makes the SOSP X a global minimizer."""
    sigmas = _check_constants(sigmas, r, r_star, alpha, beta)
    return _sigma(sigmas, r) <= gap_ratio(alpha, beta) * _sigma(sigmas, r_star)


def loud_failure_norm_bound(sigmas, r: int, r_star: int, alpha: float, beta: float,
                            norm_X_star: float) -> float:
    """Case (ii) lower bound on ‖X‖_F: √(Σ_{s=r*+1}^r σ_s² / (1 − 2ασ_{r*}/(βσ_r))) − ‖X*‖_F.

    Raises ValueError in case (i), where the bound is not defined (denominator ≤ 0 or σ_r = 0).
    """
    sigmas = _check_constants(sigmas, r, r_star, alpha, beta)
    if is_global_by_gap(sigmas, r, r_star, alpha, beta):
        raise ValueError("σ_r ≤ (2α/β) σ_{r*}: case (i) (global minimizer), no loud-failure bound")
    tail = sum(_sigma(sigmas, s) ** 2 for s in range(r_star + 1, r + 1))
    denom = 1.0 - gap_ratio(alpha, beta) * _sigma(sigmas, r_star) / _sigma(sigmas, r)
    return float(np.sqrt(tail / denom)) - norm_X_star


def rsc_ratio(G, f0, Y, loss: str, X, X_star) -> float:
    """⟨∇f(X) − ∇f(X*), X − X*⟩ / ‖X − X*‖_F² for f = L̂ (one sample of the RSC constant α)."""
    diff = X - X_star
    denom = float(np.sum(diff * diff))
    if denom == 0.0:
        raise ValueError("X = X*: the restricted strong convexity ratio is undefined")
    dgrad = risk_gradient(G, f0, Y, loss, X) - risk_gradient(G, f0, Y, loss, X_star)
    return float(np.sum(dgrad * diff)) / denom


def rsm_direction(X: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """E = U X + X V (m, n), the direction of the restricted smoothness condition."""
    return U @ X + X @ V


def loss_hessian_form(G, f0, Y, loss: str, X, E) -> float:
    """∇²f(X)[E, E] = (1/N) Σ_i A(E)[i]ᵀ ∇²ℓ_i A(E)[i] for f = L̂ (the linearized risk)."""
    AE = apply_A(G, E)
    curvature = get_loss(loss).hess_apply(predictions(G, f0, X), Y, AE)
    return float(np.sum(AE * curvature)) / G.shape[0]


def rsm_ratio(G, f0, Y, loss: str, X, U, V) -> float:
    """∇²f(X)[E, E] / ‖E‖_F² with E = U X + X V (one sample of the RSM constant β)."""
    E = rsm_direction(X, U, V)
    denom = float(np.sum(E * E))
    if denom == 0.0:
        raise ValueError("U X + X V = 0: the restricted smoothness ratio is undefined")
    return loss_hessian_form(G, f0, Y, loss, X, E) / denom


def alpha_upper_estimate(rsc_ratios) -> float:
    """min of sampled RSC ratios: an UPPER bound on the true α (an infimum over the set)."""
    return float(np.min(rsc_ratios))


def beta_lower_estimate(rsm_ratios) -> float:
    """max of sampled RSM ratios: a LOWER bound on the true β (a supremum over the set)."""
    return float(np.max(rsm_ratios))


# --- Provable α and β for the linearized squared loss, and the dichotomy as a decision ---------------------
# f(X) = L̂(X) = (1/N) Σ_i ‖f0[i] + A(X)[i] − Y[i]‖² (theory.losses.SquaredLoss, L̂ = (1/N) Σ ℓ). Then
#   ∇f(X) − ∇f(X*) = (2/N) A*A(X − X*)   and   ∇²f(X)[E, E] = (2/N) ‖A(E)‖²   (independent of X),
# so every RSC ratio is (2/N)‖A(Δ)‖²/‖Δ‖² and every RSM ratio (2/N)‖A(E)‖²/‖E‖²: both lie in
# [(2/N) σ_min(A)², (2/N) σ_max(A)²], σ over the m·n-dimensional domain (σ_min = 0 when KN < mn).


def sensing_singular_values(G: np.ndarray) -> np.ndarray:
    """Singular values of A as a (K·N) × (m·n) matrix, decreasing; padded with zeros to length m·n when
    K·N < m·n (A then has a null space of dimension ≥ mn − KN)."""
    A = G.reshape(G.shape[0] * G.shape[1], -1)
    s = np.linalg.svd(A, compute_uv=False)
    return np.concatenate([s, np.zeros(max(0, A.shape[1] - s.size))])


def squared_loss_alpha_lower(G: np.ndarray) -> float:
    """A proven lower bound on the RSC constant α of the linearized squared loss, for every r and D:
    α ≥ (2/N) σ_min(A)² (> 0 iff KN ≥ mn and A is injective). Exact when r ≥ min(m, n) (every direction
    X − X* is then allowed and the ratio does not depend on ‖X − X*‖)."""
    return 2.0 * float(sensing_singular_values(G)[-1]) ** 2 / G.shape[0]


def squared_loss_beta_upper(G: np.ndarray) -> float:
    """A proven upper bound on the RSM constant β of the linearized squared loss: β ≤ (2/N)‖A‖²_op.
    Exact when min(m, n) ≤ 2 and the restricted set holds an invertible X: E = U X + X V (U, V of rank 1)
    is then any matrix of rank ≤ 2, i.e. any matrix."""
    return 2.0 * float(sensing_singular_values(G)[0]) ** 2 / G.shape[0]


def null_direction(G: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """A unit rank-1 Δ = a bᵀ (m, n) with A(Δ) = 0, for the given b (n,), or None if there is none.

    aᵀ G[i, j] b = 0 for all (i, j) are K·N linear equations in a ∈ R^m: a nonzero solution exists
    whenever m > K·N. Along X* + tΔ (rank ≤ rank X* + 1) the RSC ratio of any linearized loss
    f = (1/N) Σ ℓ(f0 + A(X)) is exactly 0, since f depends on X only through A(X): α ≤ 0 for every
    r > r*, whatever a sampled estimate says.
    """
    Gb = np.einsum("nkab,b->nka", G, b).reshape(-1, G.shape[2])  # (KN, m)
    _, s, Vt = np.linalg.svd(Gb, full_matrices=True)
    rank = int(np.sum(s > s.max(initial=0.0) * max(Gb.shape) * np.finfo(float).eps))
    if rank >= G.shape[2]:
        return None
    a = Vt[rank]
    delta = np.outer(a, b)
    return delta / np.linalg.norm(delta)


def rsc_ratios_from_outputs(yhat, yhat_star, Y, loss: str, dist2) -> np.ndarray:
    """RSC ratios ⟨∇f(X_s) − ∇f(X*), X_s − X*⟩ / ‖X_s − X*‖²_F of the linearized risk for S samples at once.

    Since ∇f(X) = A*(V(X)) with V = (1/N)∇ℓ(ŷ), the numerator is ⟨V(X_s) − V(X*), A(X_s − X*)⟩ and
    needs only the outputs: ``yhat`` (S, N, K) = f0 + A(X_s), ``yhat_star`` (N, K), ``Y`` the targets,
    ``dist2`` (S,) = ‖X_s − X*‖²_F.
    """
    lossf = get_loss(loss)
    N = yhat_star.shape[0]
    g = np.stack([lossf.grad(y, Y) for y in yhat]) - lossf.grad(yhat_star, Y)[None]
    return np.einsum("snk,snk->s", g, yhat - yhat_star[None]) / N / np.asarray(dist2, dtype=float)


def rsm_ratios_from_outputs(yhat, AE, Y, loss: str, normE2) -> np.ndarray:
    """RSM ratios ∇²f(X_s)[E_s, E_s] / ‖E_s‖²_F of the linearized risk for S samples at once:
    (1/N) Σ_i A(E_s)[i]ᵀ ∇²ℓ_i(ŷ_s[i]) A(E_s)[i] / ‖E_s‖². ``yhat`` (S, N, K) = f0 + A(X_s),
    ``AE`` (S, N, K) = A(E_s), ``normE2`` (S,)."""
    lossf = get_loss(loss)
    N = AE.shape[1]
    curv = np.stack([lossf.hess_apply(y, Y, d) for y, d in zip(yhat, AE)])
    return np.einsum("snk,snk->s", AE, curv) / N / np.asarray(normE2, dtype=float)


def dichotomy_case(sigmas, r: int, r_star: int, alpha: float, beta: float) -> str:
    """The theorem's case for an SOSP X with singular values ``sigmas``: "global" (case (i),
    σ_r ≤ (2α/β) σ_{r*}) or "spurious" (case (ii))."""
    return "global" if is_global_by_gap(sigmas, r, r_star, alpha, beta) else "spurious"


def dichotomy_consistent(sigmas, r: int, r_star: int, alpha: float, beta: float, *, is_global: bool,
                         norm_X_star: float) -> tuple[bool, float]:
    """Whether an SOSP X (singular values ``sigmas``, known global or not) agrees with the theorem, and the
    slack of the claim the theorem makes about it (> 0: holds with that slack):

    - case (i): X must be global; slack (2α/β)σ_{r*} − σ_r if it is, −1 if it is not;
    - case (ii): X must not be global and ‖X‖_F ≥ the loud-failure bound; slack ‖X‖_F − bound if not
      global, −1 if it is.
    Valid for constants with α ≤ the true RSC constant and β ≥ the true RSM constant (smaller α or larger β
    keep both hypotheses true)."""
    sigmas = np.asarray(sigmas, dtype=float)
    if dichotomy_case(sigmas, r, r_star, alpha, beta) == "global":
        gap = gap_ratio(alpha, beta) * _sigma(sigmas, r_star) - _sigma(sigmas, r)
        return (True, float(gap)) if is_global else (False, -1.0)
    if is_global:
        return False, -1.0
    slack = float(np.linalg.norm(sigmas)) - loud_failure_norm_bound(sigmas, r, r_star, alpha, beta, norm_X_star)
    return slack >= 0.0, slack


def sgd_rank_bound(batch: int, lr: float, weight_decay: float, eps: float) -> float:
    """Kim, Kim, Ryu 2025, Lemma 1 (Section 3.4, adapting Galanti et al. 2024; proof in their Appendix A.4):
    LoRA trained by SGD with batch size b, learning rate µ and weight decay λ > 0 (A ← (1 − µλ)A − µ∇_A, B
    likewise); if X_t = A_t B_tᵀ converges to X, then for every ε > 0 some W with ‖X/‖X‖ − W‖ < ε has
    rank(W) ≤ b · log(ε/4) / log(1 − µλ). Returns that bound (0 when ε ≥ 4, where W = 0 qualifies);
    needs 0 < µλ < 1. Their b presumes per-example gradients of rank one (a linear layer fed one vector
    per example); a sequence of L tokens gives rank ≤ L per example."""
    decay = lr * weight_decay
    if not 0 < decay < 1:
        raise ValueError(f"µλ = lr · weight_decay must lie in (0, 1), got {decay}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    return max(0.0, batch * np.log(eps / 4) / np.log(1 - decay))


#: relative slack within which log(ε/4)/log(1 − µλ) counts as a whole number of decay steps (µλ = 1 − ε/4 is not
#: exact in binary: the ratio comes out 1 + 2e-16 at ε = 0.1)
WHOLE_STEP_RTOL = 1e-9


def decay_steps(lr: float, weight_decay: float, eps: float) -> int:
    """The least whole k with (1 − µλ)^k ≤ ε/4: ⌈log(ε/4)/log(1 − µλ)⌉, the number of weight-decay steps after which
    the part of A from before them is below ε/4 of its size — the whole-step count an unrolled SGD recursion uses
    (a ratio within WHOLE_STEP_RTOL of an integer counts as that integer). 0 when ε ≥ 4."""
    ratio = sgd_rank_bound(1, lr, weight_decay, eps)
    return int(np.ceil(ratio * (1 - WHOLE_STEP_RTOL)))


def lemma_1_decay(eps: float, horizon: float) -> float:
    """The µλ at which Lemma 1's bound (:func:`sgd_rank_bound`) equals b · ``horizon``: log(ε/4)/log(1 − µλ) =
    horizon, so µλ = 1 − (ε/4)^(1/horizon). A horizon just above 1 puts the bound just above b, the rank that
    stationarity alone allows a converged full-batch point with rank-one per-example gradients."""
    if not 0 < eps < 4:
        raise ValueError(f"eps must lie in (0, 4), got {eps}")
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0, got {horizon}")
    return 1.0 - (eps / 4) ** (1.0 / horizon)


def eps_rank(X: np.ndarray, eps: float) -> int:
    """The least rank of a W (m, n) with ‖X/‖X‖_F − W‖_F < ε (Eckart–Young: W the truncated SVD of X/‖X‖_F),
    the quantity Lemma 1 bounds, its unnamed norm read as Frobenius (:func:`eps_rank_spectral` reads it as the
    spectral norm; neither is always the larger). 0 for X = 0."""
    s = np.linalg.svd(np.asarray(X, dtype=float), compute_uv=False)
    total = float(np.sum(s * s))
    if total == 0.0:
        return 0
    tail = np.concatenate([np.cumsum((s * s)[::-1])[::-1], [0.0]]) / total  # tail[k] = Σ_{s>k} σ_s² / ‖X‖²
    return int(np.argmax(tail < eps * eps))


def eps_rank_spectral(X: np.ndarray, eps: float) -> int:
    """The least rank of a W (m, n) with ‖X/‖X‖₂ − W‖₂ < ε (Eckart–Young in the spectral norm: the least k with
    σ_{k+1}(X) < ε σ_1(X)): Lemma 1's quantity with its unnamed norm read as the spectral norm. 0 for X = 0."""
    s = np.linalg.svd(np.asarray(X, dtype=float), compute_uv=False)
    if s.size == 0 or s[0] == 0.0:
        return 0
    return int(np.argmax(np.append(s, 0.0) < eps * s[0]))
