"""Burer–Monteiro driver: options, the default GD step, and the multi-start solve (see the package docstring).

Start points come from ``initialisation``, the objective from ``problem``, the iteration from
``optimizers``; the driver hands back one ``SolveResult`` per start with Q, L̂_λ(u vᵀ) and F_P(Q)
recomputed in float64 numpy (δ = u vᵀ is not stored: ``SolveResult.delta`` forms it on access).
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from theory.linearized_model import sensing_norm_squared
from verify.certify import certify
from verify.device import device_for
from verify.instance import Instance, check_int
from verify.results import SolveResult, SolveStatus
from verify.solvers.bm.initialisation import initial_factors
from verify.solvers.bm.optimizers import Trace, optimize
from verify.solvers.bm.problem import TorchLoRAProblem
from verify.solvers.bm.scipy_lbfgsb import run_lbfgsb
from verify.tolerances import GRAD_RTOL, WARM_GRAD_RTOL

METHODS = ("gd", "bb", "lbfgs", "lbfgsb")
#: the torch dtypes the solver runs in, with the numpy dtype that keys GRAD_RTOL
DTYPES = {torch.float64: np.float64, torch.float32: np.float32}


def grad_rtol(dtype: torch.dtype) -> float:
    """The default relative stopping tolerance for a run in ``dtype`` (``verify.tolerances.GRAD_RTOL``)."""
    return GRAD_RTOL[np.dtype(DTYPES[dtype])]


def safe_step(inst: Instance, Q0: np.ndarray) -> np.ndarray:
    """Default GD step η = 1/L̄ per start, L̄ a smoothness estimate of F_P on {F_P ≤ F_P(Q0)}, shape (S,).

    From ∇²F_P[W, W] = (1/N) Σ A(E)ᵀ∇²ℓ A(E) + ⟨M, W Wᵀ⟩ with ‖E‖_F ≤ √2 ‖Q‖_op ‖W‖_F (MATH.md §2):
    L̄ = (2c/N) ‖A‖²_op R² + ‖A‖_op g + λ + 2‖P‖_F, where c bounds ∇²ℓ, R² = 2 F_P(Q0)/λ bounds ‖Q‖_F²
    on the sublevel set (L̂ ≥ 0, ⟨P, QQᵀ⟩ ≥ 0) and g = ``Loss.residual_weights_bound`` bounds ‖V‖_F
    there (squared: 2√(F_P(Q0)/N); cross-entropy: √(2/N)). Needs λ > 0; conservative by design (pass
    ``lr`` to train faster).
    """
    if inst.lam <= 0:
        raise ValueError("method 'gd' with λ = 0 needs an explicit lr: the sublevel set of F_P is unbounded, "
                         "so there is no safe default step")
    lossf = inst.loss_fn
    a_op2 = sensing_norm_squared(inst.G)
    F0 = np.array([inst.lora_objective(Q) for Q in Q0])
    g = lossf.residual_weights_bound(F0, inst.N)
    p = 0.0 if inst.P is None else 2.0 * float(np.linalg.norm(inst.P))
    L = 2 * lossf.hessian_bound / inst.N * a_op2 * (2 * F0 / inst.lam) + np.sqrt(a_op2) * g + inst.lam + p
    return 1.0 / L


def _status(trace: Trace, s: int, tol: float, warm_certified: bool = False) -> tuple[SolveStatus, str]:
    if warm_certified:
        return SolveStatus.CONVERGED, "the float64 certificate passed at the end of the warm phase"
    if trace.failed[s]:
        return SolveStatus.FAILED, "non-finite F_P or gradient (diverged)"
    if trace.converged[s]:
        return SolveStatus.CONVERGED, f"stopping test ‖∇F_P‖_F ≤ {tol:g}·max(1, ‖Q‖_F) passed"
    if trace.stalled[s]:
        return SolveStatus.INACCURATE, "line search stalled: the step no longer changes Q at working precision"
    return SolveStatus.MAX_ITER, "time limit reached" if trace.timed_out else "iteration budget exhausted"


def _result(inst: Instance, trace: Trace, s: int, tol: float, extra: dict, warm_certified: bool = False
            ) -> SolveResult:
    """SolveResult of start s with L̂_λ(u vᵀ) and F_P(Q) recomputed in float64 numpy; it keeps Q only (δ = u vᵀ
    is formed by ``SolveResult.delta`` when read, never here)."""
    Q = trace.Q[s]
    status, message = _status(trace, s, tol, warm_certified)
    objective = F_P = float("nan")
    if np.all(np.isfinite(Q)):
        objective, F_P = inst.factor_objective(Q), inst.lora_objective(Q)
    return SolveResult(solver="bm", status=status, stored_delta=None, factor_rows=inst.m, objective=objective,
                       solve_seconds=trace.seconds, iterations=int(trace.iterations[s]), Q=Q, message=message,
                       lifted_objective=F_P, grad_norm=float(trace.gnorm[s]), start=s, history=trace.history[s],
                       grad_history=trace.grad_history[s], norm_history=trace.norm_history[s],
                       extra={"evaluations": int(trace.evaluations[s]), **extra})


def _check_options(method, lr, max_iter, grad_tol, time_limit, dtype, record_every, warm_dtype=None) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if warm_dtype is not None and warm_dtype not in DTYPES:
        raise ValueError(f"warm_dtype must be torch.float32, torch.float64 or None, got {warm_dtype}")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite step size, got {lr!r}")
    check_int("max_iter", max_iter, minimum=0, error=ValueError)
    if grad_tol is not None and not (np.isfinite(grad_tol) and grad_tol > 0):
        raise ValueError(f"grad_tol must be a positive finite number, got {grad_tol!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds or None, got {time_limit!r}")
    check_int("record_every", record_every, error=ValueError)


def _run(inst, dev, dtype, factors, method, steps, grad_tol, max_iter, time_limit, record_every, t0, mask) -> Trace:
    prob = TorchLoRAProblem.from_instance(inst, dev, dtype, mask=mask)
    if method == "lbfgsb":
        return run_lbfgsb(prob, np.asarray(factors, dtype=np.float64), grad_tol, max_iter, time_limit,
                          int(record_every), t0)
    lr_t = None if steps is None else torch.as_tensor(steps, dtype=dtype, device=dev)
    return optimize(prob, torch.as_tensor(factors, dtype=dtype, device=dev), method, lr_t, grad_tol, max_iter,
                    time_limit, int(record_every), t0)


def _chain(first: Trace, second: Trace, record_every: int) -> Trace:
    """One trace of two consecutive phases: the end of the second, counts and histories of both. The second
    phase's history starts at the first's end point, re-evaluated in its dtype; that entry replaces the first
    phase's last one when that one is the same point (its iteration count a multiple of ``record_every``)."""
    def join(a, b):
        return [x[:-1] + y if it % record_every == 0 else x + y for x, y, it in zip(a, b, first.iterations)]

    return replace(second, iterations=first.iterations + second.iterations,
                   evaluations=first.evaluations + second.evaluations,
                   history=join(first.history, second.history), grad_history=join(first.grad_history, second.grad_history),
                   norm_history=join(first.norm_history, second.norm_history))


def _certified_warm_ends(inst: Instance, warm: Trace) -> tuple[np.ndarray, np.ndarray]:
    """(certified (S,) bool, ‖∇F_P‖_F in float64 (S,)) at the warm phase's end points, by ``verify.certify``."""
    certs = [certify(inst, Q=Q) for Q in warm.Q]
    return np.array([c.certified for c in certs]), np.array([c.first_order_residual for c in certs])


def _select(trace: Trace, idx: np.ndarray) -> Trace:
    """The trace of the starts ``idx`` only."""
    pick = lambda lists: [lists[i] for i in idx]  # noqa: E731
    return replace(trace, Q=trace.Q[idx], gnorm=trace.gnorm[idx], iterations=trace.iterations[idx],
                   evaluations=trace.evaluations[idx], converged=trace.converged[idx], failed=trace.failed[idx],
                   stalled=trace.stalled[idx], history=pick(trace.history), grad_history=pick(trace.grad_history),
                   norm_history=pick(trace.norm_history))


def _merge(whole: Trace, part: Trace, idx: np.ndarray) -> Trace:
    """``whole`` with the starts ``idx`` replaced by ``part`` (their later run); time and time-out from ``part``."""
    arrays = {k: getattr(whole, k).copy() for k in ("Q", "gnorm", "iterations", "evaluations", "converged", "failed",
                                                     "stalled")}
    lists = {k: list(getattr(whole, k)) for k in ("history", "grad_history", "norm_history")}
    for j, i in enumerate(idx):
        for k, a in arrays.items():
            a[i] = getattr(part, k)[j]
        for k, lst in lists.items():
            lst[i] = getattr(part, k)[j]
    return replace(whole, **arrays, **lists, seconds=part.seconds, timed_out=part.timed_out)


def solve_bm_multistart(inst: Instance, rank: int, *, starts: int = 1, init="lora",
                        rng: np.random.Generator | None = None, method: str = "lbfgs", lr: float | None = None,
                        max_iter: int = 20000, grad_tol: float | None = None, time_limit: float | None = None,
                        device: str = "auto", dtype: torch.dtype = torch.float64, record_every: int = 1,
                        Q0=None, mask=None, warm_dtype: torch.dtype | None = None) -> list[SolveResult]:
    """Minimize F_P over Q = [u; v] (m + n, rank) from ``starts`` starts optimized as one batch.

    init, rng: see ``initial_factors`` (rng is required for "lora" and "random"); Q0, an array of
    factors (m + n, rank) or (starts, m + n, rank), takes precedence over init.
    mask (m + n, rank) 0/1 or None: factors keep this pattern (per-matrix LoRA, ``problem.per_matrix_mask``).
    method: "lbfgs" (default), "bb", or "gd" with step ``lr`` (default ``safe_step``, one per start), all
    batched in torch; or "lbfgsb", SciPy's L-BFGS-B one start at a time (float64, CPU; ``scipy_lbfgsb``), for
    small problems, where the batched iteration's per-step overhead dominates; starts it leaves short of the
    stopping test (SciPy stops once F_P stalls at working precision) are finished by the batched "lbfgs".
    grad_tol: per-start stopping test ‖∇F_P‖_F ≤ grad_tol · max(1, ‖Q‖_F), default ``grad_rtol(dtype)``.
    max_iter: iterations of the batch (one trial evaluation per start each); time_limit: seconds or None.
    Returns one SolveResult per start: Q (m + n, r) in float64 (its ``delta`` = u vᵀ (m, n) is formed on
    access, never stored); objective
    L̂_λ(δ) and lifted_objective = F_P recomputed in float64 numpy; status CONVERGED (stopping test passed),
    MAX_ITER (budget or time limit), INACCURATE (line search stalled at working precision) or FAILED
    (non-finite values); iterations = accepted steps; history (grad_history, norm_history) = F_P
    (‖∇F_P‖_F, ‖Q‖_F) at Q0 and after every
    ``record_every``-th accepted step; solve_seconds = wall time of the whole batched run, device
    set-up and the warm phase's float64 certificates included (synchronized on cuda), float64
    post-processing excluded.
    warm_dtype: run first in this dtype (float32: half the bytes per pass over G) to the stopping test with
    ``WARM_GRAD_RTOL``; a start whose end point the float64 certificate (``verify.certify.certify``) already
    proves optimal ends there (status CONVERGED, message saying so, grad_norm recomputed in float64); the others
    continue in ``dtype`` from their end points (the budgets max_iter and time_limit cover both phases;
    iterations and histories are those of both). ``extra["warm_certified"]`` says which.
    """
    _check_options(method, lr, max_iter, grad_tol, time_limit, dtype, record_every, warm_dtype)
    grad_tol = grad_rtol(dtype) if grad_tol is None else float(grad_tol)
    dev = device_for(device)
    if method == "lbfgsb" and (dev.type != "cpu" or dtype != torch.float64 or warm_dtype not in (None, dtype)):
        raise ValueError(f"method 'lbfgsb' (SciPy) runs in float64 on the CPU, without a warm dtype: got device "
                         f"{dev}, dtype {dtype}, warm_dtype {warm_dtype}")
    factors = initial_factors(inst, rank, starts, init if Q0 is None else Q0, rng)
    if mask is not None:
        factors = factors * mask
    steps = None
    if method == "gd":
        steps = np.full(factors.shape[0], float(lr)) if lr is not None else safe_step(inst, factors)
    t0 = time.perf_counter()
    warm_certified = np.zeros(factors.shape[0], dtype=bool)
    if warm_dtype is not None and warm_dtype != dtype:
        warm = _run(inst, dev, warm_dtype, factors, method, steps, WARM_GRAD_RTOL, int(max_iter), time_limit,
                    record_every, t0, mask)
        warm_certified, g64 = _certified_warm_ends(inst, warm)
        trace = replace(warm, gnorm=np.where(warm_certified, g64, warm.gnorm), seconds=time.perf_counter() - t0)
        todo = np.flatnonzero(~warm_certified)
        if todo.size:
            rest = _run(inst, dev, dtype, warm.Q[todo], method, None if steps is None else steps[todo], grad_tol,
                        int(max_iter) - int(warm.iterations.max()), time_limit, record_every, t0, mask)
            trace = _merge(trace, _chain(_select(warm, todo), rest, int(record_every)), todo)
    else:
        trace = _run(inst, dev, dtype, factors, method, steps, grad_tol, int(max_iter), time_limit, record_every, t0,
                     mask)
    if method == "lbfgsb" and not trace.timed_out and np.any(~(trace.converged | trace.failed)):
        # SciPy stops where F_P no longer decreases at working precision, which can be short of the gradient
        # test; the batched L-BFGS (nonmonotone line search with roundoff slack) finishes those starts
        polish = _run(inst, dev, dtype, trace.Q, "lbfgs", None, grad_tol, int(max_iter) - int(trace.iterations.max()),
                      time_limit, record_every, t0, mask)
        trace = _chain(trace, polish, int(record_every))
    extra = {"device": str(dev), "method": method, "init": init if Q0 is None and isinstance(init, str) else "array",
             "dtype": str(dtype).removeprefix("torch."), "grad_tol": grad_tol,
             "warm_dtype": None if warm_dtype is None else str(warm_dtype).removeprefix("torch.")}
    results = []
    for s in range(factors.shape[0]):
        step_info = {} if steps is None else {"lr": float(steps[s])}
        warm_info = {} if warm_dtype is None else {"warm_certified": bool(warm_certified[s])}
        results.append(_result(inst, trace, s, grad_tol, {**extra, **step_info, **warm_info}, bool(warm_certified[s])))
    return results


def solve_bm(inst: Instance, rank: int, **kw) -> SolveResult:
    """The best start (smallest float64 F_P, failed starts last) of ``solve_bm_multistart``;
    extra["starts"] = number of starts."""
    results = solve_bm_multistart(inst, rank, **kw)
    best = min(results, key=lambda r: (r.status == SolveStatus.FAILED, np.nan_to_num(r.lifted_objective, nan=np.inf)))
    best.extra["starts"] = len(results)
    return best
