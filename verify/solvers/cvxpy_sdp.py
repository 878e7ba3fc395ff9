"""The SDP oracle: problem (P) with the nuclear norm, or its lifting (Q), solved by cvxpy (MATH.md §1).

- "nuclear":  minimize over δ (m, n)        L̂(δ) + λ‖δ‖_*
- "lifted":   minimize over Z ⪰ 0 (m+n, m+n)  H(Z) = L̂(Z̄) + (λ/2) tr Z + ⟨P, Z⟩,  Z̄ = Z[:m, m:]
With P = 0 the two have equal optimal values (Lemma A.1); P ≠ 0 exists only in the lifting.

L̂(δ) = (1/N) Σ_i ℓ(f0[i] + A(δ)[i], Y[i]) with A(δ) = Gmat vec_C(δ), Gmat the (NK, mn) sensing
matrix and vec_C the row-major vectorisation (``cp.vec(δ, order="C")``, matching numpy's reshape).
The loss's own ``cvxpy_risk`` writes the sum (squared: a sum of squares; cross-entropy: log-sum-exp,
an exponential cone, minus ŷ_y).

Nothing returned is taken on the solver's word: ``objective`` is recomputed in float64 from the
returned point, the solver's own value is kept in ``extra["solver_objective"]``, and the status
maps "optimal_inaccurate" to INACCURATE, never to CONVERGED.

With ``reduce=True`` (default) and P = None, the problem is solved on the data-span core instance
(``verify.reduction``, exact: same optimum) when that is smaller, and the point is lifted back to (m, n);
the objective is recomputed on the original instance, ``extra["reduced_shape"]`` = (p, q).
"""
from __future__ import annotations

import time

import clarabel
import cvxpy as cp
import numpy as np
import scipy.linalg
import scs

from theory.linearized_model import lifted_objective, sensing_matrix
from verify.instance import Instance, InstanceError, check_int
from verify.reduction import lift, lift_factor, reduce_instance
from verify.results import SolveResult, SolveStatus

FORMULATIONS = ("nuclear", "lifted")
#: cvxpy name, module (for its version) and documented default iteration limit of each backend
BACKENDS = {"SCS": (cp.SCS, scs, 100_000), "CLARABEL": (cp.CLARABEL, clarabel, 200)}
_STATUS = {cp.OPTIMAL: SolveStatus.CONVERGED, cp.OPTIMAL_INACCURATE: SolveStatus.INACCURATE,
           cp.USER_LIMIT: SolveStatus.MAX_ITER}


def map_status(status: str | None) -> SolveStatus:
    """cvxpy's status string → SolveStatus: "optimal" → CONVERGED, "optimal_inaccurate" → INACCURATE,
    "user_limit" → MAX_ITER, anything else (infeasible, unbounded, solver_error, None) → FAILED."""
    return _STATUS.get(status, SolveStatus.FAILED)


def backend(solver: str) -> str:
    """The canonical backend name ("SCS" or "CLARABEL", case-insensitive); ValueError otherwise."""
    name = str(solver).upper()
    if name not in BACKENDS:
        raise ValueError(f"unknown cvxpy solver {solver!r}: expected one of {sorted(BACKENDS)}")
    return name


def solver_options(solver: str, eps: float, max_iters: int) -> dict:
    """Accuracy and iteration settings of the backend.

    SCS: eps_abs, eps_rel, max_iters; Clarabel: tol_gap_abs, tol_gap_rel, tol_feas, max_iter.
    """
    if solver == "SCS":
        return {"eps_abs": eps, "eps_rel": eps, "max_iters": max_iters}
    return {"tol_gap_abs": eps, "tol_gap_rel": eps, "tol_feas": eps, "max_iter": max_iters}


def sensing_expression(inst: Instance, delta: cp.Expression) -> cp.Expression:
    """A(δ) flattened row-major to (NK,): Gmat @ vec_C(δ) for an (m, n) expression δ."""
    return sensing_matrix(inst.G) @ cp.vec(delta, order="C")


def risk_expression(inst: Instance, delta: cp.Expression) -> cp.Expression:
    """L̂(δ) = (1/N) Σ_i ℓ(f0[i] + A(δ)[i], Y[i]) as a convex cvxpy expression."""
    yhat = inst.f0.reshape(-1) + sensing_expression(inst, delta)  # (NK,), row-major over (N, K)
    return inst.loss_fn.cvxpy_risk(yhat, inst.Y, inst.N, inst.K)


def nuclear_problem(inst: Instance) -> tuple[cp.Problem, cp.Variable]:
    """(P): minimize L̂(δ) + λ‖δ‖_* over δ (m, n). Returns (problem, δ)."""
    if inst.P is not None:
        raise InstanceError("P must be None for the 'nuclear' formulation: the perturbation P exists only "
                            "in the lifted problem (Q); use formulation='lifted'")
    delta = cp.Variable((inst.m, inst.n), name="delta")
    return cp.Problem(cp.Minimize(risk_expression(inst, delta) + inst.lam * cp.normNuc(delta))), delta


def lifted_problem(inst: Instance) -> tuple[cp.Problem, cp.Variable]:
    """(Q): minimize H(Z) = L̂(Z̄) + (λ/2) tr Z + ⟨P, Z⟩ over Z ⪰ 0 (m+n, m+n). Returns (problem, Z)."""
    m = inst.m
    Z = cp.Variable((m + inst.n, m + inst.n), PSD=True, name="Z")
    objective = risk_expression(inst, Z[:m, m:]) + 0.5 * inst.lam * cp.trace(Z)
    if inst.P is not None:
        objective = objective + cp.sum(cp.multiply(inst.P, Z))
    return cp.Problem(cp.Minimize(objective)), Z


def psd_factor(Z: np.ndarray) -> np.ndarray:
    """Q (m+n, r) with Q Qᵀ the PSD part of sym(Z): eigenvectors · √eigenvalue for the eigenvalues
    > 0, in decreasing order of eigenvalue (a solver's Z is PSD only up to its tolerance; the
    negative part is dropped)."""
    w, U = scipy.linalg.eigh(0.5 * (Z + Z.T))
    keep = w > 0
    return (U[:, keep] * np.sqrt(w[keep]))[:, ::-1]


def _status(problem_status: str | None, iterations: int, max_iters: int) -> SolveStatus:
    """map_status, except that a non-optimal stop at the iteration limit is MAX_ITER
    (SCS reports its iteration limit as "solved_inaccurate")."""
    status = map_status(problem_status)
    if status is SolveStatus.INACCURATE and iterations >= max_iters:
        return SolveStatus.MAX_ITER
    return status


def _failed(inst: Instance, label: str, seconds: float, message: str, extra: dict, iterations: int = 0) -> SolveResult:
    """A FAILED result: no point, so δ is all NaN and the objective is NaN."""
    return SolveResult(solver=label, status=SolveStatus.FAILED, stored_delta=np.full((inst.m, inst.n), np.nan),
                       objective=float("nan"), solve_seconds=seconds, iterations=iterations, message=message,
                       extra=extra)


def solve_cvxpy(inst: Instance, *, formulation: str = "nuclear", solver: str = "SCS", eps: float = 1e-9,
                max_iters: int | None = None, verbose: bool = False, reduce: bool = True) -> SolveResult:
    """Solve (P) ("nuclear") or its lifting (Q) ("lifted") with SCS or Clarabel through cvxpy.

    Returns a SolveResult with δ (m, n) and, for "lifted", Q (m+n, r) from the PSD part of Z
    (``psd_factor``) and δ = (Q Qᵀ)[:m, m:]. ``objective`` is recomputed in float64: L̂_λ(δ), or
    H(Q Qᵀ) when the instance has a perturbation P (then only (Q) is defined); for "lifted"
    ``extra["lifted_objective"]`` = H(Q Qᵀ) always. ``solve_seconds`` is the wall-clock time of
    the cvxpy solve call (canonicalisation included). ``max_iters`` None means the backend's
    default (SCS 100000, Clarabel 200). A solver error gives status FAILED with δ all NaN.
    Raises InstanceError for P with "nuclear", ValueError for an unknown formulation or solver.
    """
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}: expected one of {FORMULATIONS}")
    name = backend(solver)
    cp_name, module, default_iters = BACKENDS[name]
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    limit = default_iters if max_iters is None else check_int("max_iters", max_iters, error=ValueError)
    extra = {"formulation": formulation, "solver_version": module.__version__, "cvxpy_version": cp.__version__}
    original, U, V = inst, None, None
    if reduce and inst.P is None:
        core, U_, V_ = reduce_instance(inst)
        if core.m < inst.m or core.n < inst.n:
            inst, U, V = core, U_, V_
            extra["reduced_shape"] = (core.m, core.n)
    problem, var = nuclear_problem(inst) if formulation == "nuclear" else lifted_problem(inst)

    label = f"cvxpy-{name.lower()}"
    start = time.perf_counter()
    try:
        problem.solve(solver=cp_name, verbose=verbose, **solver_options(name, eps, limit))
    except cp.SolverError as exc:
        return _failed(original, label, time.perf_counter() - start, f"{name} failed: {exc}", extra)
    seconds = time.perf_counter() - start

    stats = problem.solver_stats
    iterations = int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0
    status = _status(problem.status, iterations, limit)
    extra.update(solver_status=problem.status, solver_objective=problem.value,
                 solver_seconds=None if stats is None else stats.solve_time)
    if status is SolveStatus.FAILED or var.value is None:
        return _failed(original, label, seconds, f"{name} returned status {problem.status!r}", extra, iterations)

    Q = None
    if formulation == "nuclear":
        delta = np.array(var.value, dtype=float)
        if U is not None:
            delta = lift(delta, U, V)
        inst = original
        objective = inst.objective(delta)
    else:
        Q = psd_factor(np.array(var.value, dtype=float))
        if U is not None:
            Q = lift_factor(Q, U, V)
        inst = original
        Z = Q @ Q.T
        delta = Z[:inst.m, inst.m:].copy()
        extra["lifted_objective"] = lifted_objective(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Z, inst.P)
        objective = inst.objective(delta) if inst.P is None else extra["lifted_objective"]
    return SolveResult(solver=label, status=status, stored_delta=delta, objective=objective, solve_seconds=seconds,
                       iterations=iterations, Q=Q, message=f"{name} status {problem.status!r}", extra=extra)
