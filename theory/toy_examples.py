"""The toy examples of Figure 1 (illustration of Theorem 3.1), in closed form.

Setting (Section 3, "Illustration of Theorem 3.1"): squared loss ℓ(ŷ, y) = ‖ŷ − y‖², K = 1,
λ = 0, δ = [[w, x], [y, z]] ∈ R^{2×2}, and

    (a) N = 1:  L̂₀(δ) = (x + y)²
    (b) N = 2:  L̂₀(δ) = ½(z + 4)² + ½(x + y)²
    (c) N = 3:  L̂₀(δ) = ⅓(w − 1)² + ⅓(z − 4)² + ⅓(√3 x + √3 y)²

Each is L̂(δ) = (1/N) Σ_i (⟨G[i, 0], δ⟩ + f0[i] − Y[i])²; every residual can be zeroed, so the
minimum value is 0 and the global minima are {δ : all residuals vanish}:

    (a) the 3-dimensional subspace {x + y = 0}
    (b) the plane {z = −4, y = −x}
    (c) the line {w = 1, z = 4, y = −x}

Figure 1 draws the slice w = 1 ("the space of 2 by 2 matrices [[1, x], [y, z]]"), where the
rank-1 matrices form the surface z = x y. In that slice the global minima are a plane (a), a line
(b) and a line (c), and the rank-1 global minima are

    (a) the curve x ↦ [[1, x], [−x, −x²]]
    (b) the two points x = ±2: [[1, 2], [−2, −4]] and [[1, −2], [2, −4]]
    (c) none: −x² = 4 has no real solution. The rank-2 matrix [[1, 0], [0, 4]] is a global
        minimum, and the infimum of L̂ over all rank ≤ 1 matrices (any w) is 1/3 > 0, attained at
        [[0, 0], [0, 4]].

Theorem 3.1 guarantees a global minimizer of rank r with r(r+1)/2 ≤ KN, i.e. r ≤ 1, 1, 2 for
KN = 1, 2, 3; the least ranks of a global minimizer are 0, 1, 2 — example (c) shows the bound
is attained.
"""
from __future__ import annotations

import numpy as np

#: the three examples of Figure 1
TOY_EXAMPLES = ("a", "b", "c")

_OFF = np.array([[0.0, 1.0], [1.0, 0.0]])   # ⟨_OFF, δ⟩ = x + y
_W = np.array([[1.0, 0.0], [0.0, 0.0]])     # ⟨_W, δ⟩ = w
_Z = np.array([[0.0, 0.0], [0.0, 1.0]])     # ⟨_Z, δ⟩ = z

#: (rows of G[:, 0] (N, 2, 2), targets Y (N,)); f0 = 0 for every example
_DATA = {
    "a": (np.stack([_OFF]), np.array([0.0])),
    "b": (np.stack([_Z, _OFF]), np.array([-4.0, 0.0])),
    "c": (np.stack([_W, _Z, np.sqrt(3.0) * _OFF]), np.array([1.0, 4.0, 0.0])),
}


def _check(which: str) -> str:
    if which not in TOY_EXAMPLES:
        raise ValueError(f"unknown toy example {which!r}: expected one of {TOY_EXAMPLES}")
    return which


def _entries(delta: np.ndarray) -> tuple[float, float, float, float]:
    d = np.asarray(delta, dtype=float)
    if d.shape != (2, 2):
        raise ValueError(f"δ must be a 2×2 matrix [[w, x], [y, z]], got shape {d.shape}")
    return d[0, 0], d[0, 1], d[1, 0], d[1, 1]


def toy_instance(which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(G (N, 1, 2, 2), f0 (N, 1), Y (N, 1)) with (1/N) Σ_i ‖f0[i] + A(δ)[i] − Y[i]‖² = the formula."""
    rows, targets = _DATA[_check(which)]
    n_ex = rows.shape[0]
    return rows[:, None].copy(), np.zeros((n_ex, 1)), targets[:, None].copy()


def toy_risk_formula(which: str, delta: np.ndarray) -> float:
    """L̂₀(δ) exactly as printed in the paper (independent of ``toy_instance``)."""
    w, x, y, z = _entries(delta)
    if _check(which) == "a":
        return float((x + y) ** 2)
    if which == "b":
        return float(0.5 * (z + 4.0) ** 2 + 0.5 * (x + y) ** 2)
    return float(((w - 1.0) ** 2 + (z - 4.0) ** 2 + (np.sqrt(3.0) * x + np.sqrt(3.0) * y) ** 2) / 3.0)


def toy_residuals(which: str, delta: np.ndarray) -> np.ndarray:
    """Residuals f0 + A(δ) − Y, shape (N,): L̂₀(δ) = mean of their squares."""
    rows, targets = _DATA[_check(which)]
    return np.einsum("iab,ab->i", rows, np.asarray(delta, dtype=float)) - targets


def global_min_value(which: str) -> float:
    """min_δ L̂₀(δ) = 0 for all three examples (every residual can be zeroed)."""
    _check(which)
    return 0.0


def is_global_min(which: str, delta: np.ndarray, tol: float) -> bool:
    """Whether δ lies in the set of global minima up to ``tol``: max_i |residual_i| ≤ tol."""
    return bool(np.max(np.abs(toy_residuals(which, delta))) <= tol)


def is_rank_one(delta: np.ndarray, tol: float) -> bool:
    """Whether rank δ ≤ 1 up to ``tol``: |det δ| = |w z − x y| ≤ tol."""
    w, x, y, z = _entries(delta)
    return bool(abs(w * z - x * y) <= tol)


def rank1_global_minima(which: str, x: np.ndarray | None = None) -> np.ndarray:
    """The rank-1 global minima in Figure 1's slice w = 1, shape (k, 2, 2).

    (a) a curve: pass its parameter values ``x`` (k,) to get [[1, x], [−x, −x²]];
    (b) the two points x = ±2 (``x`` must be None); (c) the empty set, shape (0, 2, 2).
    """
    if _check(which) == "a":
        if x is None:
            raise ValueError("example (a) has a curve of rank-1 global minima: pass its parameters x")
        x = np.atleast_1d(np.asarray(x, dtype=float))
        return np.stack([np.ones_like(x), x, -x, -x * x], axis=-1).reshape(-1, 2, 2)
    if x is not None:
        raise ValueError(f"example ({which}) has a finite set of rank-1 global minima: x must be None")
    if which == "b":
        return np.array([[[1.0, 2.0], [-2.0, -4.0]], [[1.0, -2.0], [2.0, -4.0]]])
    return np.zeros((0, 2, 2))


def lowest_rank_global_minimizer(which: str) -> np.ndarray:
    """A global minimizer of least rank (0, 1, 2 for (a), (b), (c)), shape (2, 2)."""
    return {"a": np.zeros((2, 2)),
            "b": np.array([[1.0, 2.0], [-2.0, -4.0]]),
            "c": np.array([[1.0, 0.0], [0.0, 4.0]])}[_check(which)]


def rank1_infimum(which: str) -> tuple[float, np.ndarray]:
    """(min of L̂₀ over all δ with rank δ ≤ 1, a minimizer (2, 2)), over the whole 2×2 space.

    (a), (b): 0, at a rank-1 global minimum of the slice w = 1. (c): 1/3 at [[0, 0], [0, 4]].
    Derivation for (c): for fixed (w, z) with p = w z, the rank-1 constraint is x y = p; the least
    (x + y)² is 0 when p ≤ 0 and 4p when p > 0 (x = y = √p). Minimising (w − 1)² + (z − 4)² + 12·max(w z, 0): on {w z ≤ 0} the nearest
    point to (1, 4) is (0, 4) (value 1); on {w, z > 0} the only stationary point
    (23/35, 2/35) is a saddle (Hessian [[2, 12], [12, 2]]), so the infimum is on the boundary,
    again 1 at (0, 4). Hence min = 1/3.
    """
    if _check(which) == "c":
        return 1.0 / 3.0, np.array([[0.0, 0.0], [0.0, 4.0]])
    return 0.0, rank1_global_minima("a", 0.0)[0] if which == "a" else rank1_global_minima("b")[0]
