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
    """How a solver stopped — the same meaning for every solver, and never a proof of optimality.

    CONVERGED: the solver's own stopping test passed (Burer–Monteiro: its gradient test; prox: its
    certificate check; cvxpy: the backend's "optimal"). Only ``verify.certify`` proves a point
    global; a point whose status is INACCURATE or FAILED is never certified (``certify_result``).
    """

    CONVERGED = "converged"      # the solver's own stopping test passed
    INACCURATE = "inaccurate"    # e.g. cvxpy "optimal_inaccurate", a stalled line search
    MAX_ITER = "max_iter"        # iteration or time budget exhausted
    FAILED = "failed"            # infeasible / unbounded / numerical error / non-finite iterate

    @property
    def trusted(self) -> bool:
        """Whether a point with this status may be certified (INACCURATE and FAILED never are)."""
        return self in (SolveStatus.CONVERGED, SolveStatus.MAX_ITER)


@dataclass
class SolveResult:
    """What every solver returns.

    stored_delta: the (m, n) update δ as the solver returned it, or None when the solver returned only its
    factor Q: then ``delta`` forms δ = u vᵀ from Q on each access and nothing keeps it (a block instance's δ,
    e.g. 4608 × 4608 for all layers of MiniLM, is larger than its stored G); factor_rows: m, the rows of u in
    Q, required when stored_delta is None;
    Q: (m + n, r) LoRA factor [u; v] when the solver has one;
    objective: L̂_λ(δ) = L̂(δ) + λ‖δ‖_* of the returned δ (recomputed in float64);
    lifted_objective: F_P(Q) = H(Q Qᵀ) ≥ objective when the solver has a factor Q (NaN otherwise);
    grad_norm: ‖∇F_P(Q)‖_F at the returned Q for the factored solver (NaN otherwise);
    start: index of the start in a multi-start batch;
    history: objective per iteration (training curve), possibly subsampled (bm: F_P);
    grad_history, norm_history: ‖∇F_P‖_F and ‖Q‖_F at the same iterations as history (bm only);
    extra: solver-specific diagnostics for reports — no caller decides on them.
    """

    solver: str
    status: SolveStatus
    stored_delta: np.ndarray | None
    objective: float
    solve_seconds: float
    iterations: int = 0
    Q: np.ndarray | None = None
    message: str = ""
    lifted_objective: float = float("nan")
    grad_norm: float = float("nan")
    start: int = 0
    history: list[float] = field(default_factory=list)
    grad_history: list[float] = field(default_factory=list)
    norm_history: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    factor_rows: int | None = None

    def __post_init__(self):
        if self.stored_delta is None and (self.Q is None or self.factor_rows is None):
            raise ValueError("a SolveResult without stored_delta needs its factor Q and factor_rows (m)")

    @property
    def delta(self) -> np.ndarray:
        """The (m, n) update δ: ``stored_delta``, else u vᵀ formed from Q = [u; v] (a new array each access)."""
        if self.stored_delta is not None:
            return self.stored_delta
        return self.Q[:self.factor_rows] @ self.Q[self.factor_rows:].T


class FailedCondition(str, Enum):
    """Which optimality condition of MATH.md §2 a certificate found violated beyond its tolerance."""

    NONE = ""                    # certified
    FIRST_ORDER = "first_order"  # ½ tr(QᵀMQ) (stationarity / complementarity) too large
    DUAL_CONE = "dual_cone"      # λ_min(M) < 0 costs too much: M ⪰ 0 fails
    BOTH = "both"
    NO_BOUND = "no_bound"        # no finite bound exists (λ = 0 without a closed form)
    UNTRUSTED = "untrusted"      # the solver reported INACCURATE / FAILED, or the point is not finite


@dataclass
class Certificate:
    """Float64 optimality certificate of a point (MATH.md §2).

    certified: gap_bound ≤ tol · max(1, |objective|) (and, for λ = 0 squared loss, the exact gap),
    and the solver's status (when the point came from a solver) is trusted.
    relative_slack: (tol · max(1, |objective|) − gap_bound) / max(1, |objective|), > 0 iff the bound
    is within tolerance — the signed margin claims report.
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
    failed: FailedCondition = FailedCondition.NONE
    #: which side of the true λ_min(M) ``lambda_min_M`` is on: "lower_bound" (dense float64 eigenvalues minus
    #: their rounding bound, so the gap bound is an upper bound)
    lambda_min_M_side: str = "lower_bound"

    @property
    def scale(self) -> float:
        """max(1, |objective|), the scale of every relative tolerance on this point."""
        return max(1.0, abs(self.objective)) if np.isfinite(self.objective) else 1.0

    @property
    def relative_slack(self) -> float:
        if not np.isfinite(self.gap_bound):
            return float("-inf")
        return (self.tol * self.scale - self.gap_bound) / self.scale


@dataclass
class SOSPReport:
    """Second-order stationarity of F_P at Q (``verify.sosp.sosp_test``): ‖∇F_P‖_F and λ_min(∇²F_P) with a
    witness, the side of the estimate, and the curvature restricted to the complement of the rotation tangent.

    grad_tol, hess_tol: the absolute thresholds applied (relative tolerance × scale);
    lambda_min_side: "exact" (dense) or "upper_estimate" (iterative Rayleigh quotient);
    residual: ‖Hw − λw‖ of the reported pair (restricted_residual: of the restricted pair);
    eig_converged: residual (and restricted_residual, when computed) ≤ SOSP_RESIDUAL_RTOL · hessian_norm;
    hessian_norm: max |eigenvalue| of H (estimate when iterative);
    rotation_tangent_dim: dim {QA : A skew}; sigma_r_ratio: σ_r(Q)/σ_1(Q);
    restricted_lambda_min: λ_min of H on the complement of the rotation tangent (NaN unless
    Q is an SOSP of full column rank); strict_local_min: SOSP, full rank, exact restricted_lambda_min > strict_tol.
    """

    grad_norm: float
    hessian_lambda_min: float
    is_sosp: bool
    grad_tol: float
    hess_tol: float
    method: str                   # "dense" or "iterative"
    witness: np.ndarray | None = None  # (m + n, r) unit direction with W:∇²F:W = λ_min < −hess_tol
    lambda_min_side: str = "exact"
    eigenvector: np.ndarray | None = None  # (m + n, r) unit vector of the reported λ_min, whatever its sign
    residual: float = float("nan")
    eig_converged: bool = True
    hessian_norm: float = float("nan")
    grad_scale: float = float("nan")
    rotation_tangent_dim: int = 0
    sigma_r_ratio: float = float("nan")
    full_rank: bool = False
    restricted_lambda_min: float = float("nan")
    restricted_side: str = "exact"
    restricted_residual: float = float("nan")
    strict_tol: float = float("nan")
    strict_local_min: bool = False


@dataclass
class CheckResult:
    """One claim checked on a set of instances.

    power: why the check could have failed on these instances (what a counterexample would look
    like and that the instances admit one); resolution: the smallest planted error the check
    resolves (e.g. "certificate noise ≥ 1e-5 relative", "a bound 2× too small"). Both are shown
    in the report beside the verdict.
    """

    id: str
    statement: str
    reference: str
    verdict: Verdict
    margin: float
    instances: list[str]
    seconds: float
    details: dict = field(default_factory=dict)
    power: str = ""
    resolution: str = ""
