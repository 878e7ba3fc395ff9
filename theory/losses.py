"""Losses ℓ(ŷ, y) of the paper (Section 2): convex, non-negative, twice differentiable in ŷ.

Each loss keeps its value, output-space gradient, output-space Hessian and Lipschitz constant
side by side (cf. a cvxpy atom). Shapes: predictions ``yhat`` (N, K); targets ``y`` (N, K)
floats for the squared loss, (N,) integer class indices for cross-entropy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SquaredLoss:
    """ℓ(ŷ, y) = ‖ŷ − y‖² (the paper's Figure 1 examples); ∇ℓ = 2(ŷ − y); ∇²ℓ = 2 I_K."""

    name: str = "squared"
    #: upper bound on λ_max(∇²ℓ) over all ŷ (smoothness in output space)
    hessian_bound: float = 2.0

    def value(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-example loss, shape (N,)."""
        return np.sum((yhat - y) ** 2, axis=-1)

    def grad(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∂ℓ/∂ŷ, shape (N, K)."""
        return 2.0 * (yhat - y)

    def hess(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        """∇²ℓ in output space, shape (N, K, K)."""
        n, k = yhat.shape
        return np.broadcast_to(2.0 * np.eye(k), (n, k, k)).copy()

    def hess_apply(self, yhat: np.ndarray, y: np.ndarray, d: np.ndarray) -> np.ndarray:
        """∇²ℓ_i d_i for every example, shape (N, K)."""
        return 2.0 * d

    def lipschitz(self, yhat_bound: float, y_bound: float) -> float:
        """‖∇ℓ‖₂ ≤ 2(‖ŷ‖ + ‖y‖): Lipschitz only on bounded sets (input: bounds on ‖ŷ‖₂, ‖y‖₂)."""
        return 2.0 * (yhat_bound + y_bound)


@dataclass(frozen=True)
class CrossEntropyLoss:
    """ℓ(ŷ, y) = logsumexp(ŷ) − ŷ_y; ∇ℓ = softmax(ŷ) − e_y; ∇²ℓ = diag(p) − p pᵀ.

    ‖∇ℓ‖₂ ≤ √2 everywhere (Theorem 5.1 uses this Lipschitz constant), λ_max(∇²ℓ) ≤ 1/2.
    """

    name: str = "cross_entropy"
    hessian_bound: float = 0.5

    @staticmethod
    def softmax(yhat: np.ndarray) -> np.ndarray:
        z = yhat - yhat.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def _onehot(y: np.ndarray, k: int) -> np.ndarray:
        out = np.zeros((y.shape[0], k))
        out[np.arange(y.shape[0]), y.astype(np.int64)] = 1.0
        return out

    def value(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        m = yhat.max(axis=-1)
        lse = m + np.log(np.exp(yhat - m[:, None]).sum(axis=-1))
        return lse - yhat[np.arange(yhat.shape[0]), y.astype(np.int64)]

    def grad(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.softmax(yhat) - self._onehot(y, yhat.shape[1])

    def hess(self, yhat: np.ndarray, y: np.ndarray) -> np.ndarray:
        p = self.softmax(yhat)
        return np.einsum("nk,kl->nkl", p, np.eye(p.shape[1])) - p[:, :, None] * p[:, None, :]

    def hess_apply(self, yhat: np.ndarray, y: np.ndarray, d: np.ndarray) -> np.ndarray:
        p = self.softmax(yhat)
        return p * d - p * np.sum(p * d, axis=-1, keepdims=True)

    def lipschitz(self, yhat_bound: float = np.inf, y_bound: float = np.inf) -> float:
        """‖softmax(ŷ) − e_y‖₂ ≤ √2 for every ŷ (MATH.md §4: G = √2)."""
        return float(np.sqrt(2.0))


LOSSES = {"squared": SquaredLoss(), "cross_entropy": CrossEntropyLoss()}


def get_loss(name: str) -> SquaredLoss | CrossEntropyLoss:
    """The loss called ``name``; raises ValueError naming the allowed losses otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}: expected one of {sorted(LOSSES)}") from None
