"""Certificates for any returned point, in float64 (MATH.md §2).

The project's own proof of global optimality: for λ > 0 the a-posteriori gap bound
H(QQᵀ) − min H ≤ ½ tr(QᵀMQ) + max(0, −λ_min(M)) · H(QQᵀ)/λ needs only λ_min of the
(m + n)×(m + n) matrix M (formulas in ``theory.optimality``). For λ = 0 the loss's exact optimum
(``Loss.unregularized_minimum``: least squares in R^{KN} for the squared loss) is used instead.
Nothing here trusts a solver's status. The result is a ``verify.results.Certificate``.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from theory import optimality
from theory.lemma_2_2 import balanced_lift
from theory.linearized_model import risk_gradient, sensing_norm_squared
from theory.sensing import factor_singular_values, is_operator
from verify.instance import Instance
from verify.results import Certificate, FailedCondition, SolveResult
from verify.tolerances import GAP_RTOL

__all__ = ["GAP_RTOL", "certify", "certify_result", "lambda_min_M", "rank_tolerance", "untrusted"]

def _rounding_bound(size: int, norm_M: float) -> float:
    """size · ε · ‖M‖: a bound on the error of a dense symmetric eigenvalue (or singular value) computed by LAPACK
    in float64 (backward stable: the computed value is exact for M + E with ‖E‖_2 ≲ p(size) ε ‖M‖_2)."""
    return size * np.finfo(float).eps * norm_M


def lambda_min_M(S, lam: float, P: np.ndarray | None) -> float:
    """A certified lower bound on λ_min(M) for M = [[0, S], [Sᵀ, 0]] + λI + 2P (the gap bound stays an upper bound).

    ``S`` is an (m, n) array, or a list of diagonal blocks S_t of a block-diagonal S (block storage). With P = 0,
    λ_min(M) = λ − σ_max(S), σ_max(S) = max_t σ_max(S_t); with P ≠ 0 the dense eigenvalue of M (S assembled from its
    blocks). Every eigenvalue is dense LAPACK (never a Lanczos / Ritz estimate, which lies above λ_min(M), the
    unsafe side), and the result is lowered by its rounding bound (``_rounding_bound``).
    """
    blocks = S if isinstance(S, list) else [S]
    smax = max((_sigma_max(St) for St in blocks), default=0.0)
    size = sum(St.shape[0] + St.shape[1] for St in blocks)
    pnorm = 0.0 if P is None else 2.0 * float(np.linalg.norm(P))
    slack = _rounding_bound(size, abs(lam) + smax + pnorm)
    if P is None:
        return lam - smax - slack
    if isinstance(S, list):
        raise ValueError("with P ≠ 0 pass the assembled S (m, n)")
    M = optimality.certificate_matrix(S, lam, P)
    return float(scipy.linalg.eigvalsh(M, subset_by_index=[0, 0], check_finite=False)[0]) - slack


def _sigma_max(S: np.ndarray) -> float:
    """σ_max(S) by dense LAPACK: from the smaller Gram matrix (S Sᵀ or Sᵀ S) when S is far from square."""
    if S.size == 0:
        return 0.0
    small = S @ S.T if S.shape[0] <= S.shape[1] else S.T @ S
    if min(S.shape) * 4 <= max(S.shape):
        k = small.shape[0]
        return float(np.sqrt(max(scipy.linalg.eigvalsh(small, subset_by_index=[k - 1, k - 1],
                                                       check_finite=False)[0], 0.0)))
    return float(scipy.linalg.svdvals(S, check_finite=False)[0])


def rank_tolerance(inst: Instance, gap_tol_abs: float, sigma_max: float) -> float:
    """Singular values of δ below this are numerically zero at the certified accuracy.

    λ > 0: dropping a singular value σ changes L̂_λ by at most about 2λσ at a certified point
    (λσ from the nuclear norm, ≤ σ‖S‖_op ≤ λσ from the risk), so σ ≤ gap_tol/(2λ) is invisible.
    λ = 0 (squared loss): the change is ≈ σ²‖A‖²/N, so σ ≤ √(gap_tol·N)/‖A‖_op.
    Never below 1000·ε_machine·σ_max.
    """
    floor = 1e3 * np.finfo(float).eps * sigma_max
    if inst.lam > 0:
        return max(gap_tol_abs / (2 * inst.lam), floor)
    a_op = float(np.sqrt(sensing_norm_squared(inst.G)))
    return max(np.sqrt(gap_tol_abs * inst.N) / max(a_op, np.finfo(float).tiny), floor)


def certify(inst: Instance, *, delta: np.ndarray | None = None, Q: np.ndarray | None = None,
            tol: float = GAP_RTOL) -> Certificate:
    """Certify a point given as a LoRA factor Q (m + n, r) or as an update δ (m, n).

    A δ is factored with the balanced factors of Lemma 2.2, for which F_0(Q) = L̂_λ(δ).
    ``certified`` is True iff the gap (bound) is ≤ tol · max(1, |objective|).
    """
    if Q is None and delta is None:
        raise ValueError("certify needs a point: delta (m, n) or Q (m + n, r)")
    if Q is None:
        delta = np.asarray(delta, dtype=float)
        if delta.shape != (inst.m, inst.n):
            raise ValueError(f"delta must have shape (m, n) = ({inst.m}, {inst.n}), got {delta.shape}")
        Q = balanced_lift(delta)
    Q = np.asarray(Q, dtype=float)
    if Q.ndim != 2 or Q.shape[0] != inst.m + inst.n:
        raise ValueError(f"Q must have shape (m + n, r) = ({inst.m + inst.n}, r), got {Q.shape}")
    if not np.all(np.isfinite(Q)):
        return untrusted(tol, "the point contains NaN or Inf values (a diverged run)")
    if is_operator(inst.G):
        objective, H, sv, MQ, lmin = _block_parts(inst, Q)
    else:
        delta = Q[:inst.m] @ Q[inst.m:].T
        sv = factor_singular_values(Q[:inst.m], Q[inst.m:])  # σ(u vᵀ) from the (r, r) core, no (m, n) SVD
        objective = inst.risk(delta) + inst.lam * float(sv.sum())
        H = inst.lora_objective(Q)
        S = risk_gradient(inst.G, inst.f0, inst.Y, inst.loss, delta)
        MQ = optimality.apply_M(S, inst.lam, Q, inst.P)  # ∇F_P(Q)
        lmin = lambda_min_M(S, inst.lam, inst.P)
    first_order = float(np.sum(Q * MQ))
    gap_tol_abs = tol * max(1.0, abs(objective))
    reason = ""
    if inst.lam > 0:
        gap = optimality.gap_bound(H, first_order, lmin, inst.lam)
    elif inst.P is None and (optimum := inst.loss_fn.unregularized_minimum(inst.G, inst.f0, inst.Y)) is not None:
        gap = max(0.0, objective - optimum)
    else:
        gap = float("inf")
        reason = (f"λ = 0 with the {inst.loss} loss or P ≠ 0: no finite a-posteriori bound "
                  "(no exact optimum, or the infimum may not be attained)")
    certified = bool(np.isfinite(gap) and gap <= gap_tol_abs)
    failed = FailedCondition.NONE
    if not certified:
        failed = _failed_condition(inst, first_order, lmin, H, gap_tol_abs) if inst.lam > 0 else (
            FailedCondition.FIRST_ORDER if np.isfinite(gap) else FailedCondition.NO_BOUND)
        reason = reason or f"gap bound {gap:.3g} exceeds tolerance {gap_tol_abs:.3g} ({failed.value})"
    rtol = rank_tolerance(inst, gap_tol_abs, float(sv[0]) if sv.size else 0.0)
    return Certificate(objective=objective, lifted_objective=H, gap_bound=float(gap), certified=certified,
                       lambda_min_M=lmin, first_order_residual=float(np.linalg.norm(MQ)),
                       rank=int(np.sum(sv > rtol)), rank_tol=float(rtol), singular_values=sv, tol=tol,
                       reason=reason, failed=failed)


def _block_parts(inst: Instance, Q: np.ndarray):
    """(L̂_λ(u vᵀ), F_P(Q), σ(u vᵀ), M Q, λ_min(M) lower bound) for block storage, never forming G, u vᵀ, or
    (when P = 0) the off-diagonal zeros of S: ‖u vᵀ‖_* from two thin QRs, S by its diagonal blocks."""
    G, m = inst.G, inst.m
    u, v = Q[:m], Q[m:]
    sv = factor_singular_values(u, v)
    lossf = inst.loss_fn
    yhat = inst.f0 + G.apply_factors(u, v)
    risk = float(np.mean(lossf.value(yhat, inst.Y)))
    H = risk + 0.5 * inst.lam * float(np.sum(Q * Q))
    if inst.P is not None:
        H += float(np.sum(Q * (inst.P @ Q)))
    blocks = G.adjoint_blocks(lossf.grad(yhat, inst.Y) / inst.N)
    MQ = optimality.apply_M_blocks(G, blocks, inst.lam, Q, inst.P)  # ∇F_P(Q)
    if inst.P is None:
        lmin = lambda_min_M(blocks, inst.lam, None)
    else:
        S = np.zeros((m, inst.n))
        for St, (r, c) in zip(blocks, G.slices()):
            S[r, c] = St
        lmin = lambda_min_M(S, inst.lam, inst.P)
    return risk + inst.lam * float(sv.sum()), H, sv, MQ, lmin


def _failed_condition(inst: Instance, first_order: float, lmin: float, H: float, gap_tol_abs: float) -> FailedCondition:
    """Which term of the gap bound ½ tr(QᵀMQ) + max(0, −λ_min(M))·H/λ is over half the tolerance."""
    stationarity = 0.5 * first_order > 0.5 * gap_tol_abs
    cone = max(0.0, -lmin) * H / inst.lam > 0.5 * gap_tol_abs
    if stationarity and cone or not (stationarity or cone):
        return FailedCondition.BOTH
    return FailedCondition.FIRST_ORDER if stationarity else FailedCondition.DUAL_CONE


def untrusted(tol: float, reason: str) -> Certificate:
    """The certificate of a point that cannot be certified at all (non-finite, or an untrusted solver status)."""
    nan = float("nan")
    return Certificate(objective=nan, lifted_objective=nan, gap_bound=float("inf"), certified=False,
                       lambda_min_M=nan, first_order_residual=nan, rank=0, rank_tol=nan,
                       singular_values=np.empty(0), tol=tol, reason=reason, failed=FailedCondition.UNTRUSTED)


def certify_result(inst: Instance, result: SolveResult, tol: float = GAP_RTOL) -> Certificate:
    """The one trust rule: certify a solver's returned point in float64, refusing untrusted statuses.

    The factor Q is certified when the solver has one, else δ (balanced factors, Lemma 2.2). A result
    whose status is INACCURATE or FAILED is never certified: its certificate keeps the measured
    numbers (when the point is finite) but ``certified`` is False and ``failed`` is UNTRUSTED.
    """
    point = {"Q": result.Q} if result.Q is not None else {"delta": result.delta}
    finite = np.all(np.isfinite(next(iter(point.values()))))
    cert = certify(inst, **point, tol=tol) if finite else untrusted(tol, "the point contains NaN or Inf values")
    if not result.status.trusted and cert.failed is not FailedCondition.UNTRUSTED:
        cert.certified = False
        cert.failed = FailedCondition.UNTRUSTED
        cert.reason = f"solver status {result.status.value!r} is never certified ({result.message})"
    return cert
