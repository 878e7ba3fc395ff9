"""Exact data-span reduction of (P) (issue 11 §4; MATH.md §1 notation).

Let U (m, p) be an orthonormal basis of span{col G[i, j]} and V (n, q) one of span{row G[i, j]} over all
i < N, j < K, with Π_U = U Uᵀ, Π_V = V Vᵀ. Then

- A(Π_U δ Π_V) = A(δ): ⟨G[i, j], Π_U δ Π_V⟩ = ⟨Π_U G[i, j] Π_V, δ⟩ = ⟨G[i, j], δ⟩, since Π_U G[i, j] = G[i, j]
  and G[i, j] Π_V = G[i, j]; so L̂(Π_U δ Π_V) = L̂(δ) for every loss.
- ‖Π_U δ Π_V‖_* ≤ ‖Π_U‖_op ‖δ‖_* ‖Π_V‖_op ≤ ‖δ‖_* (Hölder for Schatten norms; projections have norm ≤ 1).
- ‖U δ' Vᵀ‖_* = ‖δ'‖_*: U and V have orthonormal columns, so U δ' Vᵀ = (U W) Σ (V Z)ᵀ from an SVD
  δ' = W Σ Zᵀ is itself an SVD with the same singular values.

Hence L̂_λ(Π_U δ Π_V) ≤ L̂_λ(δ) for λ ≥ 0: (P) has a minimizer of the form δ = U δ' Vᵀ, and
min_δ L̂_λ(δ) = min_{δ'} L̂'_λ(δ') for the core instance G'[i, j] = Uᵀ G[i, j] V (p, q), same f0, Y, λ,
because ⟨G[i, j], U δ' Vᵀ⟩ = ⟨G'[i, j], δ'⟩. A core minimizer δ' lifts to the minimizer U δ' Vᵀ.

With a perturbation P ≠ 0 the lifted objective H(Z) = L̂(Z̄) + (λ/2) tr Z + ⟨P, Z⟩ gains a linear term
that need not vanish off the data span (⟨P, Z⟩ can be lowered by moving Z outside it), so the argument
fails in general: such instances are refused.

Bases are the left / right singular vectors of the stacked G (numpy SVD, rank-revealing) with singular
values > REDUCTION_RTOL · σ_max. Certify lifted points on the original instance (verify.certify).
"""
from __future__ import annotations

import numpy as np

from theory.sensing import is_operator
from verify.instance import Instance, InstanceError
from verify.tolerances import REDUCTION_RTOL


def span_basis(M: np.ndarray, rtol: float = REDUCTION_RTOL) -> np.ndarray:
    """Orthonormal basis (rows(M), r) of the column span of M: left singular vectors with σ > rtol · σ_max
    (r ≥ 1: a zero M keeps its first direction so that the core instance has positive sizes)."""
    W, s, _ = np.linalg.svd(M, full_matrices=False)
    rank = max(1, int(np.sum(s > rtol * s[0]))) if s.size and s[0] > 0 else 1
    return W[:, :rank]


def data_span(G: np.ndarray, rtol: float = REDUCTION_RTOL) -> tuple[np.ndarray, np.ndarray]:
    """(U (m, p), V (n, q)): orthonormal bases of span{col G[i, j]} and span{row G[i, j]} for G (N, K, m, n)."""
    N, K, m, n = G.shape
    cols = G.transpose(2, 0, 1, 3).reshape(m, N * K * n)   # [G[0,0] | G[0,1] | ...]  (m, NKn)
    rows = G.transpose(3, 0, 1, 2).reshape(n, N * K * m)   # [G[0,0]ᵀ | ...]          (n, NKm)
    return span_basis(cols, rtol), span_basis(rows, rtol)


def reduce_instance(inst: Instance, rtol: float = REDUCTION_RTOL) -> tuple[Instance, np.ndarray, np.ndarray]:
    """(core, U, V): the core instance G'[i, j] = Uᵀ G[i, j] V (N, K, p, q) with the same f0, Y, loss, λ,
    and the bases U (m, p), V (n, q). Its optimum equals that of ``inst`` (module docstring).
    Raises InstanceError for an instance with a perturbation P (the reduction is not exact there)."""
    if inst.P is not None:
        raise InstanceError("the data-span reduction needs P = None: with a perturbation P the lifted "
                            "objective's term ⟨P, Z⟩ need not vanish off the data span, so the reduction "
                            "is not exact")
    U, V = data_span(_dense(inst), rtol)
    return core_instance(inst, U, V), U, V


def _dense(inst: Instance) -> np.ndarray:
    """G (N, K, m, n) as a dense array (block storage densified: the solvers that reduce, cvxpy, are dense)."""
    return inst.G.dense() if is_operator(inst.G) else inst.G


def core_instance(inst: Instance, U: np.ndarray, V: np.ndarray) -> Instance:
    """The instance G'[i, j] = Uᵀ G[i, j] V (N, K, p, q) for orthonormal U (m, p), V (n, q), same f0, Y, loss, λ.
    Its optimum equals that of ``inst`` when U, V span the data (``reduce_instance``); for smaller bases it is
    the optimum over {U δ' Vᵀ} only, ≥ that of ``inst``."""
    core_G = np.einsum("mp,ijmn,nq->ijpq", U, _dense(inst), V, optimize=True)
    return Instance(G=core_G, f0=inst.f0, Y=inst.Y, loss=inst.loss, lam=inst.lam, name=f"{inst.name}-core",
                    provenance={**inst.provenance, "reduced_from": (inst.m, inst.n)})


def without_direction(U: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Orthonormal basis (m, p − 1) of span(U) ⊖ Π_U w: the span U (m, p) short by the one direction of w (m,)
    it contains most (the near-miss control of an inexact reduction)."""
    c = U.T @ w  # coordinates of Π_U w, (p,)
    W, _, _ = np.linalg.svd(np.eye(U.shape[1]) - np.outer(c, c) / (c @ c))
    return U @ W[:, :U.shape[1] - 1]


def lift(delta_core: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """δ = U δ' Vᵀ (m, n) from a core point δ' (p, q)."""
    return U @ delta_core @ V.T


def lift_factor(Q_core: np.ndarray, U: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Q (m+n, r) = [U Q'_top; V Q'_bottom] from a core LoRA factor Q' (p+q, r): (Q Qᵀ)[:m, m:] = U (Q'Q'ᵀ)[:p, p:] Vᵀ
    and ‖Q‖_F = ‖Q'‖_F, so F_0(Q) equals the core F_0(Q')."""
    p = U.shape[1]
    return np.vstack([U @ Q_core[:p], V @ Q_core[p:]])
