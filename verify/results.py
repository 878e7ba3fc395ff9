"""One result vocabulary for every solver and every check (cf. ``scipy.optimize.OptimizeResult``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np


class Verdict(str, Enum):
    """Outcome of a check. An inaccurate solve or a margin inside the tolerance is INCONCLUSIVE."""

    HOLDS = "HOLDS"
    VIOLATED = "VIOLATED"
    INCONCLUSIVE = "INCONCLUSIVE"


class SolveStatus(str, Enum):
    """Solver outcome. Only OPTIMAL may be certified; INACCURATE is never a pass."""

    OPTIMAL = "optimal"          # the solver's own stopping test passed
    INACCURATE = "inaccurate"    # e.g. cvxpy "optimal_inaccurate"
    MAX_ITER = "max_iter"        # iteration or time budget exhausted
    FAILED = "failed"            # infeasible / unbounded / numerical error


@dataclass
class SolveResult:
    """What every solver returns.

    delta: (m, n) update δ; Q: (m + n, r) LoRA factor [u; v] when the solver has one;
    objective: L̂_λ(δ) = L̂(δ) + λ‖δ‖_* of the returned δ (recomputed in float64);
    history: objective per iteration (training curve), possibly subsampled.
    """

    solver: str
    status: SolveStatus
    delta: np.ndarray
    objective: float
    solve_seconds: float
    iterations: int = 0
    Q: np.ndarray | None = None
    message: str = ""
    history: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


@dataclass
class Certificate:
    """Float64 optimality certificate of a point (MATH.md §2).

    certified: gap_bound ≤ tol · max(1, |objective|) (and, for λ = 0 squared loss, the exact gap).
    """

    objective: float            # L̂_λ(δ)
    lifted_objective: float     # H(Q Qᵀ) = F_P(Q) ≥ objective (equal for balanced factors, P = 0)
    gap_bound: float            # upper bound on H(QQᵀ) − min H (λ > 0) or exact gap (λ = 0 squared)
    certified: bool
    lambda_min_M: float
    first_order_residual: float  # ‖M Q‖_F = ‖∇F_P(Q)‖_F
    rank: int
    rank_tol: float
    singular_values: np.ndarray
    tol: float
    reason: str = ""


@dataclass
class SOSPReport:
    """Second-order stationarity of F_P at Q: ‖∇F_P‖_F and λ_min(∇²F_P) with a witness."""

    grad_norm: float
    hessian_lambda_min: float
    is_sosp: bool
    grad_tol: float
    hess_tol: float
    method: str                   # "dense" or "lanczos"
    witness: np.ndarray | None = None  # (m + n, r) unit direction with W:∇²F:W = λ_min < 0


@dataclass
class CheckResult:
    """One claim checked on a set of instances."""

    id: str
    statement: str
    reference: str
    verdict: Verdict
    margin: float
    instances: list[str]
    seconds: float
    details: dict = field(default_factory=dict)
