"""Accelerated proximal gradient (FISTA) with adaptive restart for problem (P) (MATH.md §1–2).

(P)  minimize over δ (m, n):  L̂(δ) + λ‖δ‖_*,   ∇L̂(δ) = S(δ) = A*(V(δ)).

One iteration from the extrapolated point y (m, n):
  x⁺ = prox_{(λ/L)‖·‖_*}(y − S(y)/L)   (singular-value thresholding, Cai–Candès–Shen 2010)
with step 1/L found by backtracking below L_max = (hessian bound of ℓ) · ‖A‖²_op / N ≥ λ_max(∇²L̂)
(``solve_prox``), then Nesterov momentum
(Beck–Teboulle 2009) and the gradient restart of O'Donoghue–Candès (2015): momentum is reset when
⟨y − x⁺, x⁺ − x⟩ > 0. A is linear, so A(y) is the same combination of A(x⁺) and A(x): each
iteration costs one pass over G for A(x⁺), one for A*(V(y)) and one SVD per diagonal block of δ (one
(m, n) SVD for a dense G), plus one more pass and SVD per backtracking step.

Stopping is a proof, not a heuristic: every ``check_every`` iterations ``verify.certify`` factors
δ = x with its balanced factors (Lemma 2.2) and bounds the optimality gap (MATH.md §2); the solve
is CONVERGED only when that bound is within ``tol``.
"""
from __future__ import annotations

import time

import numpy as np
import scipy.linalg
import scipy.sparse.linalg as sla

from theory.lemma_2_2 import balanced_lift
from theory.linearized_model import sensing_matrix, sensing_norm_squared
from theory.sensing import is_operator
from verify.certify import certify
from verify.instance import Instance, InstanceError, check_int
from verify.results import Certificate, SolveResult, SolveStatus
from verify.tolerances import GAP_RTOL


#: partial SVD in the prox: ask for (rank of the last prox + PARTIAL_SVD_EXTRA) singular triplets; use a
#: full SVD once that would exceed min(m, n) / PARTIAL_SVD_MAX_FRACTION
PARTIAL_SVD_EXTRA = 4
PARTIAL_SVD_MAX_FRACTION = 8
#: backtracking step (solve_prox): each iteration first tries L = STEP_DECREASE · (last L) and multiplies by
#: STEP_INCREASE until the sufficient-decrease test holds; L never goes below L_MIN_FRACTION · L_max
STEP_DECREASE = 0.8
STEP_INCREASE = 2.0
L_MIN_FRACTION = 1e-6
#: rounding slack of the sufficient-decrease test, relative to max(1, |L̂(y)|) (float64 evaluations of L̂)
BACKTRACK_SLACK = 1e-12


def _full_svt(Z: np.ndarray, tau: float) -> tuple[np.ndarray, float, int]:
    U, s, Vt = scipy.linalg.svd(Z, full_matrices=False, lapack_driver="gesdd", check_finite=False)
    s = s - tau
    k = int(np.count_nonzero(s > 0))  # s is sorted in decreasing order
    return (U[:, :k] * s[:k]) @ Vt[:k], float(s[:k].sum()), k


def singular_value_threshold(Z: np.ndarray, tau: float, rank_hint: int | None = None) -> tuple[np.ndarray, float]:
    """prox of τ‖·‖_* at Z (m, n): U max(Σ − τ, 0) Vᵀ, returned with its nuclear norm (``svt`` below)."""
    return svt(Z, tau, rank_hint)[:2]


def svt(Z: np.ndarray, tau: float, rank_hint: int | None = None) -> tuple[np.ndarray, float, int]:
    """prox of τ‖·‖_* at Z (m, n): U max(Σ − τ, 0) Vᵀ, returned with its nuclear norm and rank.

    With ``rank_hint`` (the rank of the previous prox), only the k = rank_hint + PARTIAL_SVD_EXTRA largest
    singular triplets are computed (ARPACK, fixed start vector); the result is exact when the k-th largest
    is ≤ τ — that is checked, and k doubles until it holds (a full SVD past min(m, n)/PARTIAL_SVD_MAX_FRACTION),
    so no singular value above τ is missed. τ = 0 is the identity (no SVD), nuclear norm reported as 0.
    """
    if tau == 0:
        return Z, 0.0, min(Z.shape)
    small = min(Z.shape)
    k = None if rank_hint is None else rank_hint + PARTIAL_SVD_EXTRA
    while k is not None and k <= small // PARTIAL_SVD_MAX_FRACTION:
        U, s, Vt = sla.svds(Z, k=k, v0=np.ones(small) / np.sqrt(small))
        order = np.argsort(s)[::-1]
        s, U, Vt = s[order], U[:, order], Vt[order]
        if s[-1] <= tau:  # the k-th largest is below the threshold: every singular value above τ is among these
            keep = int(np.count_nonzero(s > tau))
            return (U[:, :keep] * (s[:keep] - tau)) @ Vt[:keep], float((s[:keep] - tau).sum()), keep
        k *= 2
    return _full_svt(Z, tau)


def lipschitz_constant(inst: Instance) -> float:
    """L = hessian_bound(ℓ) · ‖A‖²_op / N, an upper bound on λ_max(∇²L̂) (``sensing_norm_squared``)."""
    return inst.loss_fn.hessian_bound * sensing_norm_squared(inst.G) / inst.N


def _check_options(tol, max_iter, time_limit, check_every) -> None:
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    check_int("max_iter", max_iter, minimum=0, error=ValueError)
    check_int("check_every", check_every, error=ValueError)
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be > 0 seconds or None, got {time_limit}")


def _initial_point(inst: Instance, delta0) -> np.ndarray:
    if delta0 is None:
        return np.zeros((inst.m, inst.n))
    x = np.array(delta0, dtype=float)  # a copy: the iterations never write into the caller's array
    if x.shape != (inst.m, inst.n):
        raise InstanceError(f"delta0 must have shape (m, n) = ({inst.m}, {inst.n}), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InstanceError("delta0 contains NaN or Inf values")
    return x


class _BlockMap:
    """A and A* of (P) one diagonal block of δ (m, n) at a time.

    A dense G (N, K, m, n) is one block covering δ (through its (N·K, m·n) sensing matrix, a view); a
    ``BlockSensing`` G has one block per tuned matrix, zero off its diagonal blocks, so the nuclear norm and
    its prox split over the blocks (‖diag(δ_1, …, δ_T)‖_* = Σ_t ‖δ_t‖_*).
    """

    def __init__(self, G):
        if is_operator(G):
            self.slices = G.slices()
            self.blocks = list(G.blocks)
            self.shape = G.shape[:2]
        else:
            N, K, m, n = G.shape
            self.slices = [(slice(0, m), slice(0, n))]
            self.blocks = [sensing_matrix(G)]  # (NK, mn) view, never copied
            self.shape = (N, K)

    def apply(self, parts: list[np.ndarray]) -> np.ndarray:
        """A(δ) (N, K) from the diagonal blocks δ_t (m_t, n_t)."""
        return sum(b @ p.reshape(-1) if isinstance(b, np.ndarray) else b.apply(p)
                   for b, p in zip(self.blocks, parts)).reshape(self.shape)

    def adjoint(self, V: np.ndarray) -> list[np.ndarray]:
        """The diagonal blocks A_t*(V) (m_t, n_t) for V (N, K)."""
        return [(V.reshape(-1) @ b).reshape(p.stop - p.start, q.stop - q.start) if isinstance(b, np.ndarray)
                else b.adjoint(V) for b, (p, q) in zip(self.blocks, self.slices)]

    def split(self, delta: np.ndarray) -> list[np.ndarray]:
        """The diagonal blocks of δ (m, n) (copies)."""
        return [np.array(delta[r, c]) for r, c in self.slices]

    def join(self, parts: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
        """δ (m, n) with diagonal blocks ``parts``, zero elsewhere."""
        out = np.zeros(shape)
        for p, (r, c) in zip(parts, self.slices):
            out[r, c] = p
        return out


def _inner(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return float(sum(np.vdot(p, q) for p, q in zip(a, b)))


def solve_prox(inst: Instance, *, tol: float = GAP_RTOL, max_iter: int = 5000, time_limit: float | None = None,
               delta0: np.ndarray | None = None, check_every: int = 10, history: bool = True) -> SolveResult:
    """Solve (P) by FISTA with singular-value thresholding, backtracking step and gradient restart.

    The step 1/L_k is adaptive (Scheinberg–Goldfarb–Bai 2014): each iteration first tries
    L = STEP_DECREASE · L_{k−1} and multiplies it by STEP_INCREASE until the sufficient-decrease test
    L̂(x⁺) ≤ L̂(y) + ⟨S(y), x⁺ − y⟩ + (L/2)‖x⁺ − y‖²_F holds, never above the global bound
    L_max = ``lipschitz_constant`` (where it holds by construction); the momentum uses
    t_{k+1} = (1 + √(1 + 4 t_k² L_k / L_{k−1})) / 2, which keeps FISTA's O(1/k²) rate with a decreasing L.
    With block storage the SVT is blockwise; off-diagonal blocks of ``delta0`` are dropped (the loss does
    not see them, and by the pinching inequality dropping them does not increase ‖δ‖_*).

    Returns a SolveResult with δ (m, n) the last iterate, ``objective`` = L̂_λ(δ) in float64,
    Q = [u; v] (m + n, r) the balanced factors of δ truncated to its numerical rank r
    (``Certificate.rank``), ``history`` the objective L̂_λ of every iterate (if ``history``).
    Status CONVERGED iff ``certify(inst, delta=δ, tol=tol).certified``; MAX_ITER when ``max_iter``
    iterations or ``time_limit`` seconds ran out first. For λ = 0 the prox is the identity and
    the certificate is the exact least-squares gap (squared loss only; cross-entropy with λ = 0
    cannot be certified). Raises InstanceError if the instance has a perturbation P, which
    exists only in the lifted problem (Q).
    """
    if inst.P is not None:
        raise InstanceError("P must be None for the proximal solver: the perturbation P exists only in the "
                            "lifted problem (Q) (use the cvxpy 'lifted' formulation or Burer–Monteiro)")
    _check_options(tol, max_iter, time_limit, check_every)
    start = time.perf_counter()
    loss = inst.loss_fn
    op = _BlockMap(inst.G)
    f0, Y, lam, N, shape = inst.f0, inst.Y, inst.lam, inst.N, (inst.m, inst.n)
    L_max = lipschitz_constant(inst)

    def smooth(Az: np.ndarray) -> float:
        return float(np.mean(loss.value(f0 + Az, Y)))

    x = op.split(_initial_point(inst, delta0))
    Ax = op.apply(x)  # (N, K)
    y, Ay, t, L = x, Ax, 1.0, L_max
    curve: list[float] = []
    restarts, backtracks, k = 0, 0, 0
    ranks: list[int | None] = [None] * len(x)
    cert: Certificate | None = None
    out_of_time = False
    while k < max_iter and not out_of_time:
        k += 1
        fy = smooth(Ay)
        S = op.adjoint(loss.grad(f0 + Ay, Y) / N)  # S(y) = A*(V(y)), diagonal blocks
        L_prev, L = L, max(STEP_DECREASE * L, L_MIN_FRACTION * L_max)
        while True:
            svts = [svt(yt - St / L, lam / L, r) for yt, St, r in zip(y, S, ranks)]
            x_new = [s[0] for s in svts]
            Ax_new = op.apply(x_new)
            f_new = smooth(Ax_new)
            step = [a - b for a, b in zip(x_new, y)]
            model = fy + _inner(S, step) + 0.5 * L * _inner(step, step)
            if L >= L_max or f_new <= model + BACKTRACK_SLACK * max(1.0, abs(fy)):
                break
            L, backtracks = min(STEP_INCREASE * L, L_max), backtracks + 1
        ranks = [s[2] for s in svts]
        if history:
            curve.append(f_new + lam * sum(s[1] for s in svts))
        if _inner([yt - xt for yt, xt in zip(y, x_new)], [a - b for a, b in zip(x_new, x)]) > 0:
            t, restarts = 1.0, restarts + 1  # gradient restart (O'Donoghue–Candès)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t * L / L_prev))
        beta = (t - 1.0) / t_new
        y = [a + beta * (a - b) for a, b in zip(x_new, x)]
        Ay = Ax_new + beta * (Ax_new - Ax)
        x, Ax, t = x_new, Ax_new, t_new
        out_of_time = time_limit is not None and time.perf_counter() - start > time_limit
        if k % check_every == 0 or k == max_iter or out_of_time:
            cert = certify(inst, delta=op.join(x, shape), tol=tol)
            if cert.certified:
                break
    delta = op.join(x, shape)
    if cert is None:  # no iteration ran (max_iter = 0)
        cert = certify(inst, delta=delta, tol=tol)
    seconds = time.perf_counter() - start

    if cert.certified:
        status, message = SolveStatus.CONVERGED, f"certified: gap bound {cert.gap_bound:.3g} within tol {tol:g}"
    else:
        budget = f"time limit {time_limit:g} s" if out_of_time else f"max_iter = {max_iter}"
        status, message = SolveStatus.MAX_ITER, f"{budget} reached before certification: {cert.reason}"
    return SolveResult(solver="prox", status=status, stored_delta=delta, objective=cert.objective, solve_seconds=seconds,
                       iterations=k, Q=balanced_lift(delta, cert.rank), message=message, history=curve,
                       extra={"lipschitz": L_max, "last_step_L": L, "restarts": restarts, "backtracks": backtracks,
                              "gap_bound": cert.gap_bound, "lambda_min_M": cert.lambda_min_M, "rank": cert.rank})
