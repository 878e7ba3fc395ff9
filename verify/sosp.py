"""Second-order stationarity test for LoRA end points (Theorems 2.3, 2.4, 4.1; MATH.md §2).

SOSP test = ‖∇F_P(Q)‖_F ≤ grad_tol and λ_min(∇²F_P(Q)) ≥ −hess_tol, the latter from
Hessian-vector products (scipy ``eigsh`` on a ``LinearOperator``) or, for small sizes, from the
dense Hessian (the oracle). A negative-curvature witness W is returned when λ_min < 0.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

from theory import optimality
from verify.instance import Instance
from verify.results import SOSPReport

#: default tolerances on ‖∇F_P‖_F and on −λ_min(∇²F_P) (float64)
GRAD_TOL = 1e-6
HESS_TOL = 1e-6
#: use the dense Hessian when (m + n)·r is at most this
DENSE_HESSIAN_LIMIT = 600


def hessian_operator(inst: Instance, Q: np.ndarray) -> scipy.sparse.linalg.LinearOperator:
    """∇²F_P(Q) as a symmetric LinearOperator on vec(W), W (m + n, r) in row-major order."""
    shape = Q.shape

    def matvec(w):
        W = np.asarray(w, dtype=float).reshape(shape)
        return optimality.hessian_vector_product(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P).reshape(-1)

    d = Q.size
    return scipy.sparse.linalg.LinearOperator((d, d), matvec=matvec, rmatvec=matvec, dtype=float)


def hessian_min_eig(inst: Instance, Q: np.ndarray, method: str = "auto") -> tuple[float, np.ndarray, str]:
    """(λ_min(∇²F_P(Q)), unit eigenvector reshaped (m + n, r), method used)."""
    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method must be auto, dense or lanczos, got {method!r}")
    if method == "dense" or (method == "auto" and Q.size <= DENSE_HESSIAN_LIMIT):
        H = optimality.dense_hessian(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
        w, V = scipy.linalg.eigh(H, subset_by_index=[0, 0])
        return float(w[0]), V[:, 0].reshape(Q.shape), "dense"
    op = hessian_operator(inst, Q)
    w, V = scipy.sparse.linalg.eigsh(op, k=1, which="SA", tol=1e-10, maxiter=20 * Q.size,
                                     v0=np.ones(Q.size) / np.sqrt(Q.size))
    return float(w[0]), V[:, 0].reshape(Q.shape), "lanczos"


def sosp_test(inst: Instance, Q: np.ndarray, *, grad_tol: float = GRAD_TOL, hess_tol: float = HESS_TOL,
              method: str = "auto") -> SOSPReport:
    """Is Q = [u; v] a (numerical) second-order stationary point of F_P?"""
    Q = np.asarray(Q, dtype=float)
    grad = optimality.lora_gradient(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
    gnorm = float(np.linalg.norm(grad))
    lmin, vec, used = hessian_min_eig(inst, Q, method)
    return SOSPReport(grad_norm=gnorm, hessian_lambda_min=lmin,
                      is_sosp=bool(gnorm <= grad_tol and lmin >= -hess_tol),
                      grad_tol=grad_tol, hess_tol=hess_tol, method=used,
                      witness=vec if lmin < 0 else None)
