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
