"""Generalization (Section 5, Appendix C): Lemma C.4, Lemma C.5, Theorem C.6, Theorem 5.1.

Shapes: ``G`` (N, K, m, n) sensing tensor of N i.i.d. examples, ``signs`` (N, K) or (S, N, K)
Rademacher signs ε_ij ∈ {±1}. R bounds ‖G[i, j]‖_F = ‖G^{(j)}(X_i)‖_F for every output j
(a.s. over X ~ P); K enters through the sum over the NK terms ε_ij ⟨G[i, j], δ⟩.

- Lemma C.4 (exact form, MATH.md §4). For the nuclear-norm ball of radius D and one sign draw,
      sup_{‖δ‖_* ≤ D} (1/N) Σ_ij ε_ij ⟨G[i, j], δ⟩ = (D/N) ‖Σ_ij ε_ij G[i, j]‖_op
  (the operator norm is the dual of the nuclear norm), attained at δ = D u₁ v₁ᵀ for the top
  singular pair of Σ ε_ij G[i, j]. The offsets f0 add (1/N) Σ ε_ij f0[i, j], which has mean
  zero and is left out. The paper's chain
      E_ε (D/N)‖Σ ε G‖_op ≤ E_ε (D/N)‖Σ ε G‖_F ≤ (D/N) √(Σ_ij ‖G[i, j]‖_F²) ≤ R D √K / √N
  bounds the Rademacher complexity of the class A_D.
- Lemma C.5. ℓ G-Lipschitz in ŷ (Euclidean) on A_D, ‖δ‖_*, ‖δ₀‖_* ≤ D: with probability > 1 − η,
      L̂(δ₀) − L̂(δ) − L(δ₀) + L(δ) < √(2K) G R D / √N · (2 + √log(1/η)).
- Theorem C.6. δ*_true ≠ 0 a population minimizer, D = (2 + ε)‖δ*_true‖_*,
      λ = (2 + ε) √(2K) G R / √N · (2 + √log(1/η)),
  P ⪰ 0 with ‖P‖_F < ε λ ‖δ*_true‖_* / (2 ‖δ*_λ‖_*), (û, v̂) an SOSP of F_P. With probability
  > 1 − η over the sample,
      L(û v̂ᵀ) − L(δ*_true) < ‖δ*_true‖_* (2 + ε)² √(2K) G R / √N · (2 + √log(1/η)).
- Theorem 5.1 is Theorem C.6 for cross-entropy, ‖∇ℓ_CE‖₂ ≤ √2 = G, which the paper writes as
      λ = 2(2 + ε) √K R / √N · (2 + √log(1/η)),  bound ‖δ*_true‖_* 2(2 + ε)² √K R / √N · (…).

Checking "with probability > 1 − η" needs repeated independent samples and a one-sided
binomial test; ``one_sided_binomial_pvalue`` states its hypotheses.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.stats import binomtest

from theory.losses import CrossEntropyLoss
from theory.sensing import is_operator

#: largest NK for which ``all_sign_patterns`` enumerates the 2^{NK} draws
MAX_ENUMERATED_SIGNS = 16
#: G of Theorem C.6 for cross-entropy: ‖softmax(ŷ) − e_y‖₂ ≤ √2 (proof of Theorem 5.1)
CROSS_ENTROPY_LIPSCHITZ = CrossEntropyLoss().lipschitz()


def _check_eta(eta: float) -> float:
    if not 0.0 < eta < 1.0:
        raise ValueError(f"η must lie in (0, 1), got {eta}")
    return float(eta)


def _check_positive(**values) -> None:
    for name, v in values.items():
        if not v > 0:
            raise ValueError(f"{name} must be > 0, got {v}")


def sensing_radius(G) -> float:
    """R = max_ij ‖G[i, j]‖_F (the smallest R with ‖G^{(j)}(X_i)‖_F ≤ R on these examples); G dense or a
    ``theory.sensing.BlockSensing``."""
    return float(np.sqrt(row_norms_squared(G).max()))


def row_norms_squared(G) -> np.ndarray:
    """‖G[i, j]‖_F² (N, K) for a dense G (N, K, m, n) or a ``BlockSensing``."""
    if is_operator(G):
        return G.row_norms_squared()
    return np.einsum("nkab,nkab->nk", G, G)


def confidence_factor(eta: float) -> float:
    """2 + √log(1/η), the factor of Lemma C.5 and Theorem C.6."""
    return 2.0 + float(np.sqrt(np.log(1.0 / _check_eta(eta))))


# Lemma C.4 ------------------------------------------------------------------------------------
def signed_sum(G: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Σ_ij ε_ij G[i, j]: signs (N, K) → (m, n); signs (S, N, K) → (S, m, n)."""
    return np.tensordot(signs, G, axes=([-2, -1], [0, 1]))


def rademacher_sup(G, signs: np.ndarray, D: float) -> np.ndarray | float:
    """sup_{‖δ‖_* ≤ D} (1/N) Σ_ij ε_ij ⟨G[i, j], δ⟩ = (D/N) ‖Σ_ij ε_ij G[i, j]‖_op (Lemma C.4, exact); G dense or a
    ``BlockSensing`` (one SVD per diagonal block).

    Float for signs (N, K); array (S,) for a batch of draws (S, N, K).
    """
    if is_operator(G):  # block-diagonal Σ ε G: its operator norm is the largest block's
        draws = np.reshape(signs, (-1,) + G.shape[:2])
        norms = np.array([max(np.linalg.norm(St, ord=2) for St in G.adjoint_blocks(e)) for e in draws])
        out = D / G.shape[0] * (norms.reshape(np.shape(signs)[:-2]) if np.ndim(signs) == 3 else norms[0])
    else:
        out = D / G.shape[0] * np.linalg.norm(signed_sum(G, signs), ord=2, axis=(-2, -1))
    return float(out) if np.ndim(out) == 0 else out


def rademacher_argmax(G: np.ndarray, signs: np.ndarray, D: float) -> np.ndarray:
    """δ = D u₁ v₁ᵀ (m, n), a point of the nuclear ball attaining ``rademacher_sup`` for signs (N, K)."""
    U, _, Vt = np.linalg.svd(signed_sum(G, signs))
    return D * np.outer(U[:, 0], Vt[0])


def all_sign_patterns(N: int, K: int) -> np.ndarray:
    """All 2^{NK} Rademacher draws, shape (2^{NK}, N, K): the mean over them is E_ε exactly."""
    if N * K > MAX_ENUMERATED_SIGNS:
        raise ValueError(f"2^(NK) = 2^{N * K} sign patterns is too many to enumerate "
                         f"(NK ≤ {MAX_ENUMERATED_SIGNS})")
    return np.array(list(itertools.product((-1.0, 1.0), repeat=N * K))).reshape(-1, N, K)


def empirical_rademacher(G: np.ndarray, signs: np.ndarray, D: float) -> float:
    """Mean of ``rademacher_sup`` over the draws ``signs`` (S, N, K).

    With ``all_sign_patterns`` this is the conditional Rademacher complexity E_ε[·] exactly.
    """
    return float(np.mean(rademacher_sup(G, signs, D)))


def rademacher_frobenius_bound(G: np.ndarray, D: float) -> float:
    """(D/N) √(Σ_ij ‖G[i, j]‖_F²): the paper's intermediate (Jensen) bound on E_ε of the sup."""
    return D / G.shape[0] * float(np.sqrt(row_norms_squared(G).sum()))


def rademacher_bound(R: float, D: float, K: int, N: int) -> float:
    """R D √K / √N: Lemma C.4's bound on the Rademacher complexity of A_D."""
    return R * D * np.sqrt(K) / np.sqrt(N)


# Lemma C.5, Theorem C.6, Theorem 5.1 ----------------------------------------------------------
def lemma_c5_deviation_bound(K: int, Glip: float, R: float, D: float, N: int, eta: float) -> float:
    """√(2K) G R D / √N · (2 + √log(1/η)): Lemma C.5's high-probability deviation bound."""
    return float(np.sqrt(2.0 * K)) * Glip * R * D / np.sqrt(N) * confidence_factor(eta)


def theorem_c6_radius(eps: float, nuc_true: float) -> float:
    """D = (2 + ε)‖δ*_true‖_*, the nuclear-norm radius Theorem C.6 applies Lemma C.5 with."""
    _check_positive(eps=eps, nuc_true=nuc_true)
    return (2.0 + eps) * nuc_true


def theorem_c6_lambda(eps: float, K: int, Glip: float, R: float, N: int, eta: float) -> float:
    """λ = (2 + ε) √(2K) G R / √N · (2 + √log(1/η)) (Theorem C.6)."""
    _check_positive(eps=eps, K=K, Glip=Glip, R=R, N=N)
    return (2.0 + eps) * float(np.sqrt(2.0 * K)) * Glip * R / np.sqrt(N) * confidence_factor(eta)


def theorem_c6_perturbation_radius(eps: float, lam: float, nuc_true: float, nuc_lam: float) -> float:
    """ε λ ‖δ*_true‖_* / (2‖δ*_λ‖_*): Theorem C.6 needs ‖P‖_F strictly below this."""
    _check_positive(eps=eps, lam=lam, nuc_true=nuc_true, nuc_lam=nuc_lam)
    return eps * lam * nuc_true / (2.0 * nuc_lam)


def theorem_c6_excess_risk_bound(nuc_true: float, eps: float, K: int, Glip: float, R: float, N: int,
                                 eta: float) -> float:
    """‖δ*_true‖_* (2 + ε)² √(2K) G R / √N · (2 + √log(1/η)) (Theorem C.6)."""
    _check_positive(nuc_true=nuc_true)
    return nuc_true * (2.0 + eps) * theorem_c6_lambda(eps, K, Glip, R, N, eta)


def theorem_5_1_lambda(eps: float, K: int, R: float, N: int, eta: float) -> float:
    """λ = 2(2 + ε) √K R / √N · (2 + √log(1/η)) (Theorem 5.1, cross-entropy), as printed."""
    _check_positive(eps=eps, K=K, R=R, N=N)
    return 2.0 * (2.0 + eps) * float(np.sqrt(K)) * R / np.sqrt(N) * confidence_factor(eta)


def theorem_5_1_excess_risk_bound(nuc_true: float, eps: float, K: int, R: float, N: int,
                                  eta: float) -> float:
    """‖δ*_true‖_* 2(2 + ε)² √K R / √N · (2 + √log(1/η)) (Theorem 5.1), as printed."""
    _check_positive(nuc_true=nuc_true, eps=eps, K=K, R=R, N=N)
    return nuc_true * 2.0 * (2.0 + eps) ** 2 * float(np.sqrt(K)) * R / np.sqrt(N) * confidence_factor(eta)


# the probabilistic claim ----------------------------------------------------------------------
def one_sided_binomial_pvalue(successes: int, trials: int, p0: float) -> float:
    """Exact p-value against "success probability ≥ p0" (e.g. p0 = 1 − η for Theorems 5.1/C.6).

    H0: p ≥ p0 (the claim holds); H1: p < p0 (the claim is violated). scipy's
    ``binomtest(successes, trials, p0, alternative="less")``. A p-value below α is evidence of a
    violation at level α; a large p-value is no proof that the claim holds.
    """
    return float(binomtest(int(successes), int(trials), p0, alternative="less").pvalue)


def success_probability_upper_bound(successes: int, trials: int, confidence: float) -> float:
    """One-sided exact (Clopper–Pearson) upper confidence bound on the success probability.

    It is < p0 exactly when ``one_sided_binomial_pvalue(successes, trials, p0)`` < 1 − confidence.
    """
    ci = binomtest(int(successes), int(trials), 0.5, alternative="less").proportion_ci(
        confidence_level=confidence, method="exact")
    return float(ci.high)
