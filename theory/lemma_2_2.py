"""Lemma 2.2: weight decay on LoRA factors is nuclear-norm regularization.

‖δ‖_* = ½ min {‖u‖_F² + ‖v‖_F² : u vᵀ = δ}, attained by the balanced factors
u = U Σ^{1/2}, v = V Σ^{1/2} of the SVD δ = U Σ Vᵀ. Hence L̂_λ(u vᵀ) ≤ F_0(u, v).
"""
from __future__ import annotations

import numpy as np


def balanced_factors(delta: np.ndarray, rank: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Balanced factors (u (m, r), v (n, r)) with u vᵀ = δ (truncated to ``rank`` if given).

    With ``rank`` larger than min(m, n) the factors are padded with zero columns.
    """
    U, s, Vt = np.linalg.svd(delta, full_matrices=False)
    k = s.size if rank is None else min(rank, s.size)
    root = np.sqrt(s[:k])
    u, v = U[:, :k] * root, Vt[:k].T * root
    if rank is not None and rank > k:
        u = np.hstack([u, np.zeros((u.shape[0], rank - k))])
        v = np.hstack([v, np.zeros((v.shape[0], rank - k))])
    return u, v


def balanced_lift(delta: np.ndarray, rank: int | None = None) -> np.ndarray:
    """Q = [u; v] (m + n, r) from the balanced factors of δ (``balanced_factors``), so ½‖Q‖_F² = ‖δ‖_*."""
    u, v = balanced_factors(delta, rank)
    return np.vstack([u, v])


def factor_norm(u: np.ndarray, v: np.ndarray) -> float:
    """½(‖u‖_F² + ‖v‖_F²), which is ≥ ‖u vᵀ‖_* with equality for balanced factors."""
    return 0.5 * float(np.sum(u * u) + np.sum(v * v))
