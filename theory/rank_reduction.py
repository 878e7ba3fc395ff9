"""Theorem 3.1 made constructive (proof via Lemmas A.2–A.3; MATH.md §3).

Theorem 3.1: if (P) has a global minimizer, it has one of rank r with r(r+1)/2 ≤ KN.

Reduction step on a global minimizer Z* = Q Qᵀ of (Q), Q (m + n, r) of full column rank with
r(r+1)/2 > KN:
1. a nonzero symmetric W (r, r) with ⟨G[i, j], u W vᵀ⟩ = 0 for all i, j (KN equations in
   r(r+1)/2 unknowns);
2. at an exact optimum the linear part of H is flat along Q W Qᵀ:
   ⟨(λ/2) I + P, Q W Qᵀ⟩ = 0 (for P = 0: tr(Q W Qᵀ) = 0) — a nonzero value refutes optimality;
3. μ = eigenvalue of W of largest magnitude, T = I − W/μ ⪰ 0 singular; Q ← Q T^{1/2} without its
   zero columns. A(Z̄) and tr Z are unchanged, so the objective is, and the rank drops.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.linearized_model import lifted_objective
from theory.thresholds import triangular


@dataclass(frozen=True)
class ReductionStep:
    """One point of the reduction path: rank, objective H(QQᵀ), and the step-2 residual."""

    rank: int
    objective: float
    #: |⟨(λ/2)I + P, Q W Qᵀ⟩| / ‖(λ/2)I + P‖-scaled ‖Q W Qᵀ‖ for the W used to leave this point
    #: (0.0 at the last point); a clearly nonzero value means Z* was not optimal.
    linear_term_residual: float
    #: max_ij |⟨G[i, j], u W vᵀ⟩| relative to ‖G‖·‖u W vᵀ‖ (the equations of step 1)
    sensing_residual: float


def _sym_basis_coordinates(C: np.ndarray) -> np.ndarray:
    """⟨C, E_pq⟩ for the basis E_pq (p ≤ q) of symmetric matrices; C (..., r, r) → (..., r(r+1)/2)."""
    r = C.shape[-1]
    p, q = np.triu_indices(r)
    sym = C + np.swapaxes(C, -1, -2)
    out = sym[..., p, q]
    diag = p == q
    out[..., diag] = C[..., p[diag], q[diag]]
    return out


def _from_sym_coordinates(w: np.ndarray, r: int) -> np.ndarray:
    p, q = np.triu_indices(r)
    W = np.zeros((r, r))
    W[p, q] = w
    W[q, p] = w
    return W


def compress(Q: np.ndarray, rtol: float) -> np.ndarray:
    """Q with numerically zero columns removed, same Q Qᵀ up to rtol·σ_max; shape (m + n, rank)."""
    U, s, _ = np.linalg.svd(Q, full_matrices=False)
    keep = s > rtol * max(s.max(initial=0.0), np.finfo(float).tiny)
    return U[:, keep] * s[keep]


def null_direction(G: np.ndarray, Q: np.ndarray, linear_term: np.ndarray | None) -> np.ndarray:
    """Step 1 (and the robust variant of step 2): a unit symmetric W (r, r) in the null space of
    W ↦ (⟨G[i, j], u W vᵀ⟩)_ij [and ⟨L, Q W Qᵀ⟩ when ``linear_term`` L (m+n, m+n) is given]."""
    m = G.shape[2]
    u, v = Q[:m], Q[m:]
    r = Q.shape[1]
    C = np.einsum("ar,nkab,bs->nkrs", u, G, v).reshape(-1, r, r)  # uᵀ G[i,j] v
    rows = _sym_basis_coordinates(C)
    if linear_term is not None:
        rows = np.vstack([rows, _sym_basis_coordinates(Q.T @ linear_term @ Q)[None]])
    _, _, Vt = np.linalg.svd(rows, full_matrices=True)
    return _from_sym_coordinates(Vt[-1], r)


def reduce_rank(G, f0, Y, loss: str, lam: float, Q, P=None, *, rtol: float = 1e-10,
                robust: bool = False) -> tuple[np.ndarray, list[ReductionStep]]:
    """Run the reduction until r(r+1)/2 ≤ KN (or KN + 1 with ``robust``).

    Q (m + n, r0) is the factor of a global minimizer of (Q). Returns the reduced factor
    Q' (m + n, r') with Q' Q'ᵀ a minimizer of the same objective, and the path of ranks.
    ``robust`` adds the linear-term equation to step 1 (needs r(r+1)/2 > KN + 1).
    """
    n_ex, k, m, n = G.shape
    kn = n_ex * k
    L = 0.5 * lam * np.eye(m + n) + (P if P is not None else 0.0)
    has_linear = lam > 0 or P is not None
    Q = compress(np.asarray(Q, dtype=float), rtol)
    extra = 1 if (robust and has_linear) else 0
    path: list[ReductionStep] = []
    while triangular(Q.shape[1]) > kn + extra and Q.shape[1] > 0:
        W = null_direction(G, Q, L if extra else None)
        u, v = Q[:m], Q[m:]
        dZ = Q @ W @ Q.T
        scale = max(np.linalg.norm(dZ), np.finfo(float).tiny)
        lin = abs(float(np.sum(L * dZ))) / (np.linalg.norm(L) * scale) if has_linear else 0.0
        AdZ = np.einsum("nkab,ab->nk", G, u @ W @ v.T)
        sens = float(np.abs(AdZ).max()) / (np.linalg.norm(G.reshape(kn, -1), axis=1).max() * scale)
        path.append(ReductionStep(Q.shape[1], lifted_objective(G, f0, Y, loss, lam, Q @ Q.T, P), lin, sens))
        evals, evecs = np.linalg.eigh(W)
        mu = evals[np.argmax(np.abs(evals))]
        t = np.clip(1.0 - evals / mu, 0.0, None)
        Qt = (Q @ evecs) * np.sqrt(t)
        Q = compress(Qt, rtol)
    path.append(ReductionStep(Q.shape[1], lifted_objective(G, f0, Y, loss, lam, Q @ Q.T, P), 0.0, 0.0))
    return Q, path
