"""Burer–Monteiro by SciPy's L-BFGS-B (method "lbfgsb"): each start on its own, float64, on the CPU, with F_P and
∇F_P from the same :class:`~verify.solvers.bm.problem.TorchLoRAProblem` as the batched optimizers.

For small problems (m = n = 64: one pass over G costs ≈ 0.1 ms) the batched torch iteration of
``optimizers`` spends its time in per-step overhead — dozens of small tensor operations for the compact L-BFGS
update and the line search — not in arithmetic; SciPy's compiled L-BFGS-B (Byrd, Lu, Nocedal & Zhu 1995, no
bounds here, memory ``optimizers.LBFGS_MEMORY``, its own Moré–Thuente line search) does one function-and-gradient
call per trial point and nothing else in Python. Same stopping test as the batched path,
‖∇F_P‖_F ≤ tol · max(1, ‖Q‖_F), checked after every iteration; SciPy's own tests are switched off
(ftol = gtol = 0), so it otherwise stops only when F_P no longer decreases at working precision or its line
search fails (both reported as stalled; the driver then finishes the start with the batched L-BFGS).
"""
from __future__ import annotations

import time

import numpy as np
import scipy.optimize
import torch
from threadpoolctl import threadpool_limits

from verify.solvers.bm.optimizers import LBFGS_MEMORY, Trace
from verify.solvers.bm.problem import TorchLoRAProblem


class _Start:
    """One start's objective for SciPy (x = Q flattened, (d·r,)), its counters and its recorded history."""

    def __init__(self, prob: TorchLoRAProblem, shape: tuple[int, int], tol: float, record_every: int):
        self.prob, self.shape, self.tol, self.record_every = prob, shape, tol, record_every
        self.evaluations, self.iterations = 0, 0
        self.last: tuple[np.ndarray, float, np.ndarray] | None = None
        self.history, self.grad_history, self.norm_history = [], [], []
        self.converged = self.failed = False

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        Q = torch.from_numpy(x.reshape(1, *self.shape))
        ev = self.prob.evaluate(Q)
        g = self.prob.gradient(Q, ev)[0].numpy().ravel()
        F = float(ev.F[0])
        self.evaluations += 1
        self.last = (x.copy(), F, g)
        return F, g

    def at(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """(F_P, ∇F_P) at x, from the last evaluation when it was at x."""
        if self.last is not None and np.array_equal(self.last[0], x):
            return self.last[1], self.last[2]
        F, g = self(x)
        self.evaluations -= 1  # a re-evaluation for the record, not a trial point
        return F, g

    def record(self, x: np.ndarray) -> bool:
        """Record x (every ``record_every``-th iteration) and apply the stopping test; True when it stops."""
        F, g = self.at(x)
        gnorm, qnorm = float(np.linalg.norm(g)), float(np.linalg.norm(x))
        self.failed = not (np.isfinite(F) and np.isfinite(gnorm))
        self.converged = not self.failed and gnorm <= self.tol * max(1.0, qnorm)
        if self.iterations % self.record_every == 0:
            self.history.append(F)
            self.grad_history.append(gnorm)
            self.norm_history.append(qnorm)
        return self.converged or self.failed


def _minimize(start: _Start, x: np.ndarray, max_iter: int, deadline: float | None) -> tuple[np.ndarray, bool, bool]:
    """Run SciPy's L-BFGS-B on one start from x: (end point, stalled, timed out). The callback (after every
    iteration) applies the stopping test and the deadline; raising StopIteration ends the run (SciPy ≥ 1.11)."""
    out_of_time = False

    def callback(xk: np.ndarray) -> None:
        nonlocal out_of_time
        start.iterations += 1
        if start.record(xk):
            raise StopIteration
        if deadline is not None and time.perf_counter() > deadline:
            out_of_time = True
            raise StopIteration

    res = scipy.optimize.minimize(start, x, jac=True, method="L-BFGS-B", callback=callback,
                                  options=dict(maxiter=max_iter, maxfun=50 * max_iter + 100, maxcor=LBFGS_MEMORY,
                                               ftol=0.0, gtol=0.0))
    stalled = not (start.converged or start.failed or out_of_time) and res.status != 1  # 1: iteration budget
    return res.x, stalled, out_of_time


def run_lbfgsb(prob: TorchLoRAProblem, Q: np.ndarray, tol: float, max_iter: int, time_limit: float | None,
               record_every: int, t0: float) -> Trace:
    """Minimize F_P from each start Q[s] (Q (S, d, r) float64) in turn; max_iter iterations per start, time_limit
    seconds from ``t0`` for all of them. Returns the batched path's :class:`Trace` (iterations = accepted steps,
    evaluations = trial points, stalled = SciPy stopped before the stopping test passed). Runs with one BLAS /
    OpenMP thread: the products are tiny, and the thread pools of SciPy, NumPy and torch would only contend."""
    S, d, r = Q.shape
    out_Q, gnorm = np.array(Q, dtype=np.float64), np.zeros(S)
    its, evals = np.zeros(S, dtype=np.int64), np.zeros(S, dtype=np.int64)
    converged, failed, stalled = (np.zeros(S, dtype=bool) for _ in range(3))
    histories: list[_Start] = []
    deadline = None if time_limit is None else t0 + time_limit
    timed_out = False
    with threadpool_limits(limits=1):
        for s in range(S):
            start = _Start(prob, (d, r), tol, record_every)
            x = out_Q[s].ravel().copy()
            if not start.record(x) and max_iter > 0 and not timed_out:
                x, stalled[s], timed_out = _minimize(start, x, max_iter, deadline)
            out_Q[s] = x.reshape(d, r)
            gnorm[s] = float(np.linalg.norm(start.at(x)[1]))
            its[s], evals[s], converged[s], failed[s] = start.iterations, start.evaluations, start.converged, start.failed
            histories.append(start)
    return Trace(Q=out_Q, gnorm=gnorm, iterations=its, evaluations=evals, converged=converged, failed=failed,
                 stalled=stalled, history=[h.history for h in histories],
                 grad_history=[h.grad_history for h in histories], norm_history=[h.norm_history for h in histories],
                 seconds=time.perf_counter() - t0, timed_out=timed_out)
