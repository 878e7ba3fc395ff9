"""The linearized (NTK-regime) fine-tuning problem of Section 2 and its two liftings.

Shapes: ``G`` (N, K, m, n) sensing tensor (a dense array, or a ``theory.sensing.BlockSensing`` that stores
only its diagonal blocks, possibly factored; every function here accepts either), ``f0`` (N, K) offsets, ``delta`` (m, n),
``Q = [u; v]`` (m + n, r), ``P`` (m + n, m + n) symmetric PSD perturbation.

- A(δ)[i, j] = ⟨G[i, j], δ⟩,  A*(V) = Σ_ij V[i, j] G[i, j]
- L̂(δ) = (1/N) Σ_i ℓ(f0[i] + A(δ)[i], Y[i])
- V(δ) = (1/N) ∂ℓ/∂ŷ,  S(δ) = A*(V(δ)) = ∇L̂(δ)
- (P)  L̂_λ(δ) = L̂(δ) + λ‖δ‖_*
- F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ = H(Q Qᵀ)   (LoRA with weight decay, Thm 4.1)
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from theory.losses import get_loss
from theory.sensing import is_operator


def sensing_matrix(G: np.ndarray) -> np.ndarray:
    """G reshaped to the (N·K, m·n) matrix of the linear map A (a view when G is a contiguous array; a
    ``BlockSensing`` is materialised densely — small sizes only)."""
    if is_operator(G):
        G = G.dense()
    n_ex, k, m, n = G.shape
    return G.reshape(n_ex * k, m * n)


def seen_columns(G) -> tuple[np.ndarray, np.ndarray]:
    """(A_c (N·K, p), c (p,)): the columns c of the flattened δ (m·n) that A can see and A restricted to them, so
    that A(δ) = A_c δ.ravel()[c]. Dense G: the columns of the sensing matrix that are not identically zero; a
    ``BlockSensing``: the entries of its diagonal blocks, each block made dense in turn (never the whole G)."""
    if not is_operator(G):
        Amat = sensing_matrix(G)
        cols = np.flatnonzero(np.any(Amat != 0, axis=0))
        return np.ascontiguousarray(Amat[:, cols]), cols
    N, K, m, n = G.shape
    nk = N * K
    cols = [(np.arange(r.start, r.stop)[:, None] * n + np.arange(c.start, c.stop)[None, :]).ravel()
            for r, c in G.slices()]
    A = np.concatenate([G.diagonal_block(t).reshape(nk, -1) for t in range(len(G.blocks))], axis=1)
    return A, np.concatenate(cols)


def sensing_norm_squared(G: np.ndarray) -> float:
    """‖A‖²_op = λ_max(A Aᵀ), from the (N·K, N·K) Gram matrix of the sensing matrix."""
    if is_operator(G):
        gram = G.gram()
    else:
        A = sensing_matrix(G)  # (NK, mn) view of G
        gram = A @ A.T
    kn = gram.shape[0]
    return float(scipy.linalg.eigvalsh(gram, subset_by_index=[kn - 1, kn - 1])[0])


def apply_A(G: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """A(δ): (m, n) → (N, K)."""
    if is_operator(G):
        return G.apply(delta)
    n_ex, k, m, n = G.shape
    return (sensing_matrix(G) @ delta.reshape(m * n)).reshape(n_ex, k)


def apply_A_adjoint(G: np.ndarray, V: np.ndarray) -> np.ndarray:
    """A*(V) = Σ_ij V[i, j] G[i, j]: (N, K) → (m, n)."""
    if is_operator(G):
        return G.adjoint(V)
    n_ex, k, m, n = G.shape
    return (V.reshape(n_ex * k) @ sensing_matrix(G)).reshape(m, n)


def predictions(G: np.ndarray, f0: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Linearized outputs ŷ = f0 + A(δ), shape (N, K)."""
    return f0 + apply_A(G, delta)


def empirical_risk(G, f0, Y, loss: str, delta) -> float:
    """L̂(δ) = (1/N) Σ_i ℓ(f0[i] + A(δ)[i], Y[i])."""
    return float(np.mean(get_loss(loss).value(predictions(G, f0, delta), Y)))


def residual_weights(G, f0, Y, loss: str, delta) -> np.ndarray:
    """V(δ)[i, j] = (1/N) ∂ℓ/∂ŷ_j at ŷ = f0[i] + A(δ)[i]; shape (N, K)."""
    return get_loss(loss).grad(predictions(G, f0, delta), Y) / G.shape[0]


def risk_gradient(G, f0, Y, loss: str, delta) -> np.ndarray:
    """S(δ) = A*(V(δ)) = ∇L̂(δ), shape (m, n)."""
    return apply_A_adjoint(G, residual_weights(G, f0, Y, loss, delta))


def nuclear_norm(delta: np.ndarray) -> float:
    """‖δ‖_* = Σ σ_i(δ)."""
    return float(np.linalg.svd(delta, compute_uv=False).sum())


def regularized_risk(G, f0, Y, loss: str, lam: float, delta) -> float:
    """Objective of (P): L̂_λ(δ) = L̂(δ) + λ‖δ‖_*."""
    return empirical_risk(G, f0, Y, loss, delta) + lam * nuclear_norm(delta)


def split_factors(Q: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Q = [u; v] → (u (m, r), v (n, r))."""
    return Q[:m], Q[m:]


def lora_objective(G, f0, Y, loss: str, lam: float, Q, P=None) -> float:
    """F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ (Theorem 4.1; P = None means P = 0)."""
    u, v = split_factors(Q, G.shape[2])
    if is_operator(G):  # A(u vᵀ) without forming u vᵀ
        risk = float(np.mean(get_loss(loss).value(f0 + G.apply_factors(u, v), Y)))
    else:
        risk = empirical_risk(G, f0, Y, loss, u @ v.T)
    value = risk + 0.5 * lam * float(np.sum(Q * Q))
    if P is not None:
        value += float(np.sum(Q * (P @ Q)))
    return value


def lifted_objective(G, f0, Y, loss: str, lam: float, Z, P=None) -> float:
    """H(Z) = L̂(Z̄) + (λ/2) tr Z + ⟨P, Z⟩ for Z ⪰ 0 of size m + n (problem (Q), Lemma A.1)."""
    m = G.shape[2]
    value = empirical_risk(G, f0, Y, loss, Z[:m, m:]) + 0.5 * lam * float(np.trace(Z))
    if P is not None:
        value += float(np.sum(P * Z))
    return value
