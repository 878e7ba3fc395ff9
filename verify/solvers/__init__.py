"""The three solvers behind one entry point, each returning a ``verify.results.SolveResult``.

- ``bm``: Burer–Monteiro LoRA in torch (Theorem 4.1's F_P), batched multi-start;
- ``prox``: accelerated proximal gradient with singular-value thresholding for (P) (full fine-tuning);
- ``cvxpy``: the SDP oracle, (P) with the nuclear norm or the lifting (Q), SCS or Clarabel.
"""
from __future__ import annotations

import numpy as np

from verify.instance import Instance, check_rank
from verify.results import SolveResult

SOLVERS = ("bm", "prox", "cvxpy")


def run_solver(inst: Instance, solver: str, *, rank: int, starts: int = 1, seed: int = 0,
               device: str = "auto", cvxpy_solver: str = "SCS", tol: float = 1e-6, lora: str = "shared",
               method: str = "lbfgs") -> SolveResult:
    """Solve ``inst`` with ``solver``; ``rank``, ``starts`` and ``method`` are the LoRA rank, number of
    starts and optimizer for ``bm`` (rank is ignored by the convex solvers); ``lora`` "shared" (one rank-r factor
    of the block-diagonal update) or "per-matrix" (rank r on each tuned matrix; the factor has T·r columns)."""
    rank = check_rank(rank)
    if solver == "bm":
        from verify.solvers.bm import solve_bm
        from verify.solvers.bm.problem import lora_mask
        mask = lora_mask(inst, rank, lora)
        return solve_bm(inst, rank if mask is None else mask.shape[1], starts=starts, rng=np.random.default_rng(seed),
                        device=device, mask=mask, method=method)
    if solver == "prox":
        from verify.solvers.prox import solve_prox
        return solve_prox(inst, tol=tol)
    if solver == "cvxpy":
        from verify.solvers.cvxpy_sdp import solve_cvxpy
        return solve_cvxpy(inst, formulation="nuclear" if inst.P is None else "lifted", solver=cvxpy_solver)
    raise ValueError(f"unknown solver {solver!r}: expected one of {SOLVERS}")
