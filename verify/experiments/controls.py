"""The planted wrong answers of negative controls: each builds the input a check must reject."""
from __future__ import annotations

import numpy as np

from verify.instance import Instance
from verify.results import SolveResult
from verify.solvers.bm import solve_bm_multistart

#: relative size ‖noise‖_F/‖Q‖_F of the noise added to a certified optimum
PERTURBED_POINT_NOISE = 1e-2
#: iterations of a run stopped long before convergence
TRUNCATED_STEPS = 3
#: planted iteration count per unit of rank (counts that grow with the rank)
PLANTED_ITERATIONS_PER_RANK = 100


def perturbed_point(Q: np.ndarray, rng: np.random.Generator, noise: float = PERTURBED_POINT_NOISE) -> np.ndarray:
    """Q (m + n, r) plus i.i.d. Gaussian noise of Frobenius norm ≈ noise·‖Q‖_F: no longer an optimum."""
    return Q + noise * np.linalg.norm(Q) * rng.standard_normal(Q.shape) / np.sqrt(Q.size)


def truncated_run(inst: Instance, rank: int, rng: np.random.Generator, device: str, init: str = "lora",
                  steps: int = TRUNCATED_STEPS) -> SolveResult:
    """One start of the default LoRA solver stopped after ``steps`` iterations (trial points; at most
    ``steps`` accepted steps), status MAX_ITER."""
    return solve_bm_multistart(inst, rank, starts=1, init=init, rng=rng, max_iter=steps, device=device)[0]


def planted_counts(ranks) -> dict[int, int]:
    """Iterations to the optimum that grow with the rank (the opposite of Section 6's claim)."""
    return {r: PLANTED_ITERATIONS_PER_RANK * r for r in ranks}


def rademacher_wrong_power(R: float, K: int, N: int) -> float:
    """Lemma C.4's bound with N^(-1) in place of N^(-1/2): R D √K / N with D = 1."""
    return R * np.sqrt(K) / N


def planted_table(table: dict) -> dict:
    """Every cell of a Section 6 count table replaced by planted counts that grow with the rank."""
    return {key: planted_counts(cell) for key, cell in table.items()}


def smallest_flip(cell: dict[int, int | None], order) -> tuple[int, int] | None:
    """The smallest change of one measured count that changes ``order(cell)`` (a rank statistic, so only
    the values next to another count matter): (rank, new count), or None if no single change does."""
    base = order(cell)
    counts = [c for c in cell.values() if c is not None]
    best = None
    for r, c in cell.items():
        if c is None:
            continue
        for new in sorted({max(0, o + d) for o in counts for d in (-1, 0, 1)}, key=lambda x: abs(x - c)):
            if new != c and order({**cell, r: new}) != base:
                if best is None or abs(new - c) < abs(best[1] - cell[best[0]]):
                    best = (r, new)
                break
    return best
