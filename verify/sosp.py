"""Second-order stationarity test for LoRA end points (Theorems 2.3, 2.4, 4.1; MATH.md §2).

Shapes: Q = [u; v] (m + n, r); a direction W = [a; b] (m + n, r) is flattened row-major to
vec(W) of length d = (m + n)·r; H = ∇²F_P(Q) is the (d, d) Hessian.

- SOSP test: ‖∇F_P(Q)‖_F ≤ grad_rtol · max(1, ‖Q‖_F) · max(1, |F_P(Q)|) and
  λ_min(H) ≥ −hess_rtol · ‖H‖ (‖H‖ estimated by max |eigenvalue|; constants in verify.tolerances).
- λ_min(H) comes from the dense Hessian (exact up to rounding) or from an iterative solver on
  Hessian-vector products: lobpcg with a random block and eigsh from a random start, keeping the
  smaller Rayleigh quotient. A Rayleigh quotient is an *upper estimate* of λ_min: a negative value
  is a proof of negative curvature (the witness W has H[W, W] < 0), a non-negative one is evidence,
  not proof. ``lambda_min_side`` says which ("upper_estimate" or "exact"); the residual
  ‖Hw − ρw‖ of the returned pair is reported.
- Rotations: F_P(QR) = F_P(Q) for orthogonal R. Differentiating ∇F_P(QR) = ∇F_P(Q) R along
  R = exp(tA), A skew, gives H[QA] = ∇F_P(Q) A: at a stationary point H vanishes on the tangent
  T = {QA : A skew} of the orbit, of dimension r(r−1)/2 when Q has full column rank. A strict local
  minimum modulo rotations has H positive definite on T^⊥; ``restricted_lambda_min`` is λ_min of
  H restricted to T^⊥ (the projected operator). A rank-deficient Q has a larger orbit: degenerate.
- ``classify_point`` labels a point global / spurious_local_min / degenerate_sosp /
  unresolved_sosp / saddle / not_stationary (see ``LABELS``).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from theory import optimality
from theory.thresholds import no_spurious_rank
from verify import tolerances as tols
from verify.certify import GAP_RTOL, certify
from verify.instance import Instance
from verify.results import Certificate, SOSPReport

#: default relative tolerances of ``sosp_test`` (aliases of the verify.tolerances ``# sosp`` constants)
GRAD_TOL = tols.SOSP_GRAD_RTOL
HESS_TOL = tols.SOSP_HESS_RTOL
STRICT_TOL = tols.SOSP_STRICT_RTOL
#: use the dense Hessian when d = (m + n)·r is at most this
DENSE_HESSIAN_LIMIT = 600
#: block size of lobpcg (reduced for small problems) and iteration cap per unit of dimension
LOBPCG_BLOCK = 4
MAXITER_PER_DIM = 20
#: seed of the generator ``sosp_test`` uses when no ``rng`` is passed (calls without rng are deterministic)
DEFAULT_SEED = 0
METHODS = ("auto", "dense", "iterative")
SIDES = ("exact", "upper_estimate")
LABELS = ("global", "spurious_local_min", "degenerate_sosp", "unresolved_sosp", "saddle", "not_stationary")


@dataclass
class PointClassification:
    """The label of one point and the evidence: its certificate, its second-order test, and the
    certified optimal value F* it was compared with (``excess`` = F_P(Q) − F*)."""

    label: str
    certificate: Certificate
    sosp: SOSPReport
    optimum: float | None = None
    optimum_rank: int | None = None
    excess: float = float("nan")

    @property
    def witness(self) -> np.ndarray | None:
        """(m + n, r) direction with H[W, W] < −hess_tol (saddles; also non-stationary points)."""
        return self.sosp.witness


def hessian_operator(inst: Instance, Q: np.ndarray) -> scipy.sparse.linalg.LinearOperator:
    """∇²F_P(Q) as a symmetric LinearOperator on vec(W), W (m + n, r) in row-major order."""
    shape = Q.shape

    def matvec(w):
        W = np.asarray(w, dtype=float).reshape(shape)
        return optimality.hessian_vector_product(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P).reshape(-1)

    d = Q.size
    return scipy.sparse.linalg.LinearOperator((d, d), matvec=matvec, rmatvec=matvec, dtype=float)


def rotation_tangent(Q: np.ndarray) -> np.ndarray:
    """vec(Q A_ij) for the skew basis A_ij = e_i e_jᵀ − e_j e_iᵀ, i < j: shape (d, r(r−1)/2)."""
    r = Q.shape[1]
    cols = []
    for i in range(r):
        for j in range(i + 1, r):
            QA = np.zeros_like(Q)
            QA[:, j] = Q[:, i]
            QA[:, i] = -Q[:, j]
            cols.append(QA.reshape(-1))
    return np.array(cols).T if cols else np.zeros((Q.size, 0))


def rotation_tangent_basis(Q: np.ndarray, rank_rtol: float = tols.SOSP_RANK_RTOL) -> np.ndarray:
    """Orthonormal basis (d, t) of T = {QA : A skew}; t = r(r−1)/2 iff Q has full column rank."""
    T = rotation_tangent(Q)
    if T.shape[1] == 0:
        return T
    U, s, _ = np.linalg.svd(T, full_matrices=False)
    return U[:, s > rank_rtol * max(s[0], np.finfo(float).tiny)]


@dataclass
class _Eig:
    value: float
    vector: np.ndarray   # unit, (d,)
    residual: float
    side: str


def _dense_min(H: np.ndarray, C: np.ndarray | None = None) -> _Eig:
    """Exact λ_min of H, or of Cᵀ H C (C orthonormal columns) mapped back to R^d."""
    A = H if C is None else C.T @ H @ C
    w, V = scipy.linalg.eigh(A, subset_by_index=[0, 0])
    vec = V[:, 0] if C is None else C @ V[:, 0]
    Hv = H @ vec if C is None else C @ (A @ V[:, 0])
    return _Eig(float(w[0]), vec, float(np.linalg.norm(Hv - w[0] * vec)), "exact")


def _projected(op, B: np.ndarray | None):
    """x ↦ P⊥ H P⊥ x with P⊥ = I − B Bᵀ (H itself when B is None or empty)."""
    if B is None or B.shape[1] == 0:
        return op.matvec
    return lambda x: (lambda y: y - B @ (B.T @ y))(op.matvec(x - B @ (B.T @ x)))


def _rayleigh(apply, x: np.ndarray, B: np.ndarray | None) -> _Eig:
    x = np.asarray(x, dtype=float).reshape(-1)
    if B is not None and B.shape[1]:
        x = x - B @ (B.T @ x)
    x = x / np.linalg.norm(x)
    Hx = apply(x)
    rho = float(x @ Hx)
    return _Eig(rho, x, float(np.linalg.norm(Hx - rho * x)), "upper_estimate")


def _iterative_min(op, rng: np.random.Generator, scale: float, B: np.ndarray | None = None) -> _Eig:
    """Smallest Rayleigh quotient of H (on B^⊥ when B is given) found by lobpcg (random block,
    constrained to B^⊥) and eigsh (random start, B shifted out of the way): an upper estimate."""
    d = op.shape[0]
    t = 0 if B is None else B.shape[1]
    apply = _projected(op, B)
    tol = tols.SOSP_EIG_RTOL * max(scale, np.finfo(float).tiny)
    maxiter = MAXITER_PER_DIM * d
    candidates = []
    k = min(LOBPCG_BLOCK, (d - t) // 5)
    if k >= 1:
        X = rng.standard_normal((d, k))
        with warnings.catch_warnings():  # scipy's lobpcg warns when it stops short of tol ("Exited at /
            # Failed at / eigh failed at iteration ..."); non-convergence is judged by the residual below
            warnings.filterwarnings("ignore", message="(Exited|Failed|eigh failed) ", category=UserWarning)
            _, V = scipy.sparse.linalg.lobpcg(op, X, Y=B if t else None, tol=tol, maxiter=maxiter, largest=False)
        candidates += [_rayleigh(apply, V[:, i], B) for i in range(V.shape[1])]
    shift = 2.0 * scale + 1.0  # pushes the tangent directions above the spectrum of P⊥HP⊥
    shifted = scipy.sparse.linalg.LinearOperator(
        (d, d), dtype=float, matvec=apply if not t else (lambda x: apply(x) + shift * (B @ (B.T @ x))))
    try:
        _, V = scipy.sparse.linalg.eigsh(shifted, k=1, which="SA", tol=tols.SOSP_EIG_RTOL, maxiter=maxiter,
                                         v0=rng.standard_normal(d))
        candidates.append(_rayleigh(apply, V[:, 0], B))
    except scipy.sparse.linalg.ArpackNoConvergence as exc:
        if exc.eigenvectors.size:
            candidates.append(_rayleigh(apply, exc.eigenvectors[:, 0], B))
    return min(candidates, key=lambda e: e.value)


def budgeted_extremes(op, rng: np.random.Generator, max_products: int) -> tuple[_Eig, float]:
    """(smallest Rayleigh quotient of H found, estimate of ‖H‖) within about ``max_products`` products H·v, for
    operators too costly for ``_iterative_min``'s budget (the actual network's Hessian): lobpcg with a random block
    of LOBPCG_BLOCK vectors for each end of the spectrum, ``max_products / (2 · LOBPCG_BLOCK)`` iterations each.
    The smallest value is an upper estimate of λ_min (side "upper_estimate": negative proves negative curvature);
    ‖H‖ is a lower estimate (the larger modulus of the two ends' Rayleigh quotients)."""
    d = op.shape[0]
    k = min(LOBPCG_BLOCK, max(1, d // 5))
    iters = max(1, max_products // (2 * k))
    with warnings.catch_warnings():  # lobpcg warns when it stops at maxiter; the residual is reported instead
        warnings.filterwarnings("ignore", message="(Exited|Failed|eigh failed) ", category=UserWarning)
        _, low = scipy.sparse.linalg.lobpcg(op, rng.standard_normal((d, k)), tol=tols.SOSP_EIG_RTOL, maxiter=iters,
                                            largest=False)
        high, _ = scipy.sparse.linalg.lobpcg(op, rng.standard_normal((d, k)), tol=tols.SOSP_EIG_RTOL,
                                             maxiter=iters, largest=True)
    best = min((_rayleigh(op.matvec, low[:, i], None) for i in range(low.shape[1])), key=lambda e: e.value)
    return best, max(float(np.max(np.abs(high))), abs(best.value))


def _largest_magnitude(op, rng: np.random.Generator) -> float:
    """Estimate of ‖H‖ = max |eigenvalue| (Lanczos, random start; a lower estimate)."""
    d = op.shape[0]
    if d == 1:
        return abs(float(op.matvec(np.ones(1))[0]))
    w = scipy.sparse.linalg.eigsh(op, k=1, which="LM", tol=tols.SOSP_EIG_RTOL, maxiter=MAXITER_PER_DIM * d,
                                  v0=rng.standard_normal(d), return_eigenvectors=False)
    return abs(float(w[0]))


def hessian_min_eig(inst: Instance, Q: np.ndarray, method: str = "auto",
                    rng: np.random.Generator | None = None) -> tuple[float, np.ndarray, str]:
    """(λ_min(∇²F_P(Q)), unit eigenvector reshaped (m + n, r), method used: "dense" or "iterative")."""
    t = sosp_test(inst, Q, method=method, rng=rng, restricted=False)
    return t.hessian_lambda_min, t.eigenvector, t.method


def _method(method: str, d: int) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        return "dense" if d <= DENSE_HESSIAN_LIMIT else "iterative"
    return method


def sosp_test(inst: Instance, Q: np.ndarray, *, rng: np.random.Generator | None = None,
              grad_tol: float = GRAD_TOL, hess_tol: float = HESS_TOL, strict_tol: float = STRICT_TOL,
              method: str = "auto", restricted: bool = True, project_rotations: bool = True) -> SOSPReport:
    """Is Q = [u; v] (m + n, r) a (numerical) second-order stationary point of F_P, and a strict one
    modulo rotations?

    grad_tol, hess_tol, strict_tol are *relative* (see the module docstring); the report holds the
    absolute thresholds applied. rng: generator of the random start vectors of the iterative path
    (default ``numpy.random.default_rng(DEFAULT_SEED)``). restricted=False skips the restricted
    curvature (then ``strict_local_min`` is False); project_rotations=False restricts nothing (the
    flat rotation directions stay in, so no point of rank ≥ 2 is strict: a negative control). The witness is the eigenvector when
    λ_min < −hess_tol.
    """
    Q = np.asarray(Q, dtype=float)
    rng = np.random.default_rng(DEFAULT_SEED) if rng is None else rng
    used = _method(method, Q.size)
    grad = optimality.lora_gradient(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
    gnorm = float(np.linalg.norm(grad))
    gscale = max(1.0, float(np.linalg.norm(Q))) * max(1.0, abs(inst.lora_objective(Q)))
    op = hessian_operator(inst, Q)
    if used == "dense":
        H = optimality.dense_hessian(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
        hnorm = float(np.max(np.abs(scipy.linalg.eigvalsh(H, subset_by_index=[Q.size - 1, Q.size - 1]))))
        low = _dense_min(H)
        hnorm = max(hnorm, abs(low.value))
    else:
        hnorm = _largest_magnitude(op, rng)
        low = _iterative_min(op, rng, hnorm)
        hnorm = max(hnorm, abs(low.value))
    hess_abs = hess_tol * hnorm
    is_sosp = bool(gnorm <= grad_tol * gscale and low.value >= -hess_abs)
    sv = np.linalg.svd(Q, compute_uv=False)
    ratio = float(sv[-1] / sv[0]) if sv.size and sv[0] > 0 else 0.0
    full_rank = bool(ratio > tols.SOSP_RANK_RTOL)
    T = rotation_tangent_basis(Q)
    B = T if project_rotations else np.zeros((Q.size, 0))
    report = SOSPReport(grad_norm=gnorm, hessian_lambda_min=low.value, is_sosp=is_sosp, grad_tol=grad_tol * gscale,
                      hess_tol=hess_abs, method=used,
                      witness=low.vector.reshape(Q.shape) if low.value < -hess_abs else None,
                      lambda_min_side=low.side, eigenvector=low.vector.reshape(Q.shape), residual=low.residual, hessian_norm=hnorm, grad_scale=gscale,
                      rotation_tangent_dim=int(T.shape[1]), sigma_r_ratio=ratio, full_rank=full_rank,
                      strict_tol=strict_tol * hnorm)
    if restricted and is_sosp and full_rank:
        if used == "dense":
            C = scipy.linalg.null_space(B.T) if B.shape[1] else None
            res = _dense_min(H, C)
        else:
            res = _iterative_min(op, rng, hnorm, B)
        report.restricted_lambda_min, report.restricted_side, report.restricted_residual = res.value, res.side, res.residual
        # only the exact (dense) value proves strictness: an iterative Rayleigh quotient is an upper estimate
        report.strict_local_min = bool(res.side == "exact" and res.value > report.strict_tol)
    report.eig_converged = bool(np.nanmax([report.residual, report.restricted_residual])
                                <= tols.SOSP_RESIDUAL_RTOL * hnorm)
    return report


def certified_optimum(inst: Instance, rng: np.random.Generator, *, tol: float = GAP_RTOL,
                      attempts: int = 3) -> tuple[float, int] | None:
    """(F*, rank) of a float64-certified global minimizer of (Q), from Burer–Monteiro at the
    Theorem 4.1 rank ``no_spurious_rank(KN)`` (random starts, up to ``attempts`` tries); None if no
    try is certified. F* = H(Q*Q*ᵀ) ≥ min H, so F_P(Q) > F* proves Q is not a global minimizer."""
    from verify.solvers.bm import solve_bm

    rank = no_spurious_rank(inst.kn)
    for _ in range(attempts):
        res = solve_bm(inst, rank, starts=1, init="random", rng=rng, device="cpu")
        if res.Q is None or not np.all(np.isfinite(res.Q)):
            continue
        cert = certify(inst, Q=res.Q, tol=tol)
        if cert.certified:
            return cert.lifted_objective, cert.rank
    return None


def classify_point(inst: Instance, Q: np.ndarray, *, rng: np.random.Generator, optimum: float | None = None,
                   tol: float = GAP_RTOL, grad_tol: float = GRAD_TOL, hess_tol: float = HESS_TOL,
                   strict_tol: float = STRICT_TOL, method: str = "auto",
                   project_rotations: bool = True, trusted: bool = True) -> PointClassification:
    """Label Q (m + n, r):

    - ``global``: ``verify.certify.certify`` proves Q Qᵀ a global minimizer of (Q);
    - ``not_stationary``: the gradient test fails;
    - ``saddle``: stationary with λ_min(∇²F_P) < −hess_tol (witness in ``.witness``);
    - ``degenerate_sosp``: SOSP, not certified, not strict modulo rotations (or rank deficient);
    - ``spurious_local_min``: SOSP, strict modulo rotations (proved by the exact dense Hessian), F_P(Q) − F* >
      tol · max(1, |F*|) for a value F* attainable at Q's rank (``optimum`` if given — the caller vouches it
      is attained at this rank — else ``certified_optimum``, counted only when Q's rank reaches its rank);
    - ``unresolved_sosp``: strict SOSP that is neither certified nor provably above such an F*.

    ``trusted=False`` (a solver status that ``certify_result`` never certifies, e.g. INACCURATE): the certificate
    cannot label the point global; the other labels are read as for an uncertified point.
    """
    Q = np.asarray(Q, dtype=float)
    cert = certify(inst, Q=Q, tol=tol)
    s = sosp_test(inst, Q, rng=rng, grad_tol=grad_tol, hess_tol=hess_tol, strict_tol=strict_tol, method=method,
                  project_rotations=project_rotations)
    out = PointClassification(label="", certificate=cert, sosp=s)
    if cert.certified and trusted:
        out.label = "global"
    elif s.grad_norm > s.grad_tol:
        out.label = "not_stationary"
    elif not s.is_sosp:
        out.label = "saddle"
    elif not s.strict_local_min:
        out.label = "degenerate_sosp"
    else:
        if optimum is None:
            found = certified_optimum(inst, rng, tol=tol)
            if found is not None:
                out.optimum, out.optimum_rank = found
        else:
            out.optimum = float(optimum)
        if out.optimum is not None:
            out.excess = cert.lifted_objective - out.optimum
        above = out.optimum is not None and out.excess > tol * max(1.0, abs(out.optimum))
        # below the optimum's rank, F* is out of reach: the point may be the rank-r global minimum
        reachable = out.optimum_rank is None or Q.shape[1] >= out.optimum_rank
        out.label = "spurious_local_min" if above and reachable else "unresolved_sosp"
    return out
