"""Section 6's experiment: LoRA gradient descent at several ranks beside full fine-tuning (FISTA),
measured against a certified optimum (Figure 2 of the main paper).

All ranks run as one batch: a rank-r run is a rank-R run (R = max rank) whose last R − r columns
start at 0, and gradient descent keeps a zero column at 0 (its gradient M·0 is 0). Every rank starts
from the first r columns of one LoRA initialisation (u₀ random, v = 0) and uses one step size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from verify.certify import GAP_RTOL, certify_result
from verify.experiments.gd import local_step, training_runs
from verify.instance import Instance
from verify.results import SolveResult, SolveStatus
from verify.solvers.prox import solve_prox
from verify.tolerances import RANK_SPEED_RTOLS


@dataclass
class Run:
    """One training curve: F per iteration, the first iteration within each of RANK_SPEED_RTOLS of the
    optimum (key f"{rtol:g}", None if never), and whether its end point is certified (or converged)."""

    history: list[float]
    iterations: dict[str, int | None]
    certified: bool
    result: SolveResult = field(repr=False)


@dataclass
class RankSpeed:
    optimum: float
    optimum_certified: bool
    optimum_rank: int
    lr: float
    runs: dict[int, Run]
    prox: Run

    def iterations(self, rtol: float = RANK_SPEED_RTOLS[0]) -> dict[int, int | None]:
        """Iterations to within ``rtol`` of the optimum, per rank."""
        return {r: run.iterations[f"{rtol:g}"] for r, run in self.runs.items()}


def iterations_to_optimum(history: list[float], optimum: float, rtol: float) -> int | None:
    """First iteration whose F is within rtol·max(1, |optimum|) of the certified optimum (None if never)."""
    tol = rtol * max(1.0, abs(optimum))
    hit = np.nonzero(np.asarray(history) - optimum <= tol)[0]
    return int(hit[0]) if hit.size else None


def rank_factors(u0: np.ndarray, ranks: list[int]) -> np.ndarray:
    """Starts (len(ranks), m + n, R) from one factor u0 (m + n, R): start i keeps the first ranks[i] columns."""
    Q0 = np.zeros((len(ranks),) + u0.shape)
    for i, r in enumerate(ranks):
        Q0[i, :, :r] = u0[:, :r]
    return Q0


def rank_speed(inst: Instance, ranks: list[int], u0: np.ndarray, reference: SolveResult, steps: int, device: str,
               prox_time_limit: float | None = None) -> RankSpeed:
    """GD at every rank in ``ranks`` from u0 (m + n, max(ranks)) with step ½/λ_max(∇²F) at ``reference``
    (a solve at a rank ≥ the optimum's), and FISTA with the same iteration budget, against the
    certified optimum ``certify_result(inst, reference)``."""
    c = certify_result(inst, reference)
    lr = 0.5 * local_step(inst, reference.Q)

    def run(res: SolveResult, certified: bool) -> Run:
        its = {f"{rt:g}": iterations_to_optimum(res.history, c.objective, rt) for rt in RANK_SPEED_RTOLS}
        return Run(res.history, its, certified, res)

    results = training_runs(inst, rank_factors(u0, ranks), lr, steps, device)
    prox = solve_prox(inst, tol=GAP_RTOL, max_iter=steps, time_limit=prox_time_limit)
    return RankSpeed(c.objective, c.certified, c.rank, lr,
                     {r: run(res, certify_result(inst, res).certified) for r, res in zip(ranks, results)},
                     run(prox, prox.status is SolveStatus.CONVERGED))
