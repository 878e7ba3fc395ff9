"""An exact population risk for checking Theorem 5.1 / C.6 (MATH.md §4, last bullet).

The data distribution P is uniform over a finite pool of P_pool examples (each with its own
G_p (K, m, n) and f0_p (K,)); labels come from a softmax teacher,
    y | p  ~  softmax(f0_p + A_p(δ_teacher)) =: probs[p].
The population cross-entropy risk is then a finite sum, computed exactly:
    L(δ) = (1/P) Σ_p Σ_k probs[p, k] ℓ_CE(f0_p + A_p(δ), k)
         = (1/P) Σ_p [logsumexp(z_p) − ⟨probs[p], z_p⟩],   z_p = f0_p + A_p(δ),
    ∇L(δ) = (1/P) Σ_p A_p*(softmax(z_p) − probs[p]).
The model is well specified, so ∇L(δ_teacher) = 0 and δ_teacher is a population minimizer
(L is convex); L(δ_teacher) = mean entropy of the teacher's label distributions. Every δ whose
logits differ from the teacher's by a per-example constant is a minimizer too; Theorem 5.1 holds
for each choice of δ*_true, and its bound is smallest for the one of least nuclear norm.
R = max_{p, j} ‖G_p[j]‖_F bounds ‖G^{(j)}(X)‖_F surely, as the theorem requires.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import xlogy

from theory.generalization import sensing_radius
from theory.linearized_model import apply_A, apply_A_adjoint
from theory.losses import logsumexp, softmax
from verify.instance import Instance, InstanceError, check_dims


@dataclass(frozen=True)
class Pool:
    """The finite population: G (P, K, m, n), f0 (P, K), teacher δ_teacher (m, n), probs (P, K)."""

    G: np.ndarray
    f0: np.ndarray
    teacher: np.ndarray
    probs: np.ndarray

    @property
    def size(self) -> int:
        return self.G.shape[0]

    @property
    def K(self) -> int:
        return self.G.shape[1]

    @property
    def R(self) -> float:
        """max_{p, j} ‖G_p[j]‖_F."""
        return sensing_radius(self.G)


def make_pool(rng: np.random.Generator, pool_size: int, K: int, m: int, n: int,
              teacher_rank: int = 2, teacher_scale: float = 1.0) -> Pool:
    """A pool with Gaussian G (entries N(0, 1/(m n)), so ‖G_p[j]‖_F ≈ 1), f0 ~ 0.5·N(0, 1), and a
    rank-``teacher_rank`` teacher of nuclear norm exactly ``teacher_scale``."""
    check_dims(pool_size=pool_size, K=K, m=m, n=n, teacher_rank=teacher_rank)
    if K < 2:
        raise InstanceError(f"cross-entropy needs K ≥ 2 outputs, got K = {K}")
    if teacher_rank > min(m, n):
        raise InstanceError(f"teacher_rank must be ≤ min(m, n) = {min(m, n)}, got {teacher_rank}")
    if not teacher_scale > 0:
        raise InstanceError(f"teacher_scale (‖δ_teacher‖_*) must be > 0, got {teacher_scale}")
    G = rng.standard_normal((pool_size, K, m, n)) / np.sqrt(m * n)
    f0 = 0.5 * rng.standard_normal((pool_size, K))
    U = np.linalg.qr(rng.standard_normal((m, teacher_rank)))[0]
    V = np.linalg.qr(rng.standard_normal((n, teacher_rank)))[0]
    s = rng.uniform(0.5, 1.0, teacher_rank)
    teacher = (U * (teacher_scale * s / s.sum())) @ V.T
    probs = softmax(f0 + apply_A(G, teacher))
    return Pool(G, f0, teacher, probs)


def _logits(pool: Pool, delta: np.ndarray) -> np.ndarray:
    return pool.f0 + apply_A(pool.G, delta)  # (P, K)


def population_risk(pool: Pool, delta: np.ndarray) -> float:
    """L(δ) = (1/P) Σ_p Σ_k probs[p, k] ℓ_CE(z_p, k), exactly."""
    z = _logits(pool, delta)
    return float(np.mean(logsumexp(z, axis=1) - np.sum(pool.probs * z, axis=1)))


def population_gradient(pool: Pool, delta: np.ndarray) -> np.ndarray:
    """∇L(δ) = (1/P) Σ_p A_p*(softmax(z_p) − probs[p]), shape (m, n)."""
    resid = softmax(_logits(pool, delta)) - pool.probs
    return apply_A_adjoint(pool.G, resid / pool.size)


def bayes_risk(pool: Pool) -> float:
    """L(δ_teacher) = mean entropy of the teacher's label distributions = min_δ L(δ)."""
    return float(-np.mean(np.sum(xlogy(pool.probs, pool.probs), axis=1)))


def excess_risk(pool: Pool, delta: np.ndarray) -> float:
    """L(δ) − L(δ_teacher) ≥ 0."""
    return population_risk(pool, delta) - population_risk(pool, pool.teacher)


def sample_training_set(pool: Pool, N: int, rng: np.random.Generator, lam: float) -> Instance:
    """N i.i.d. examples: pool indices uniform with replacement, labels drawn from the teacher.

    Returns a cross-entropy Instance; ``provenance["pool_indices"]`` lists the drawn indices.
    """
    check_dims(N=N)
    idx = rng.integers(0, pool.size, size=N)
    cdf = np.cumsum(pool.probs[idx], axis=1)
    labels = np.minimum((rng.random(N)[:, None] >= cdf).sum(axis=1), pool.K - 1)
    return Instance(pool.G[idx], pool.f0[idx], labels.astype(np.int64), "cross_entropy", lam,
                    name="population_sample", provenance={"pool_indices": idx.tolist()})


def make_aligned_pool(rng: np.random.Generator, pool_size: int, side: int, teacher_scale: float,
                      noise: float) -> Pool:
    """A K = 2 pool whose sensing is aligned with the teacher, so that ‖∇L̂(0)‖_op is of order R and
    Theorem 5.1's λ ∝ R/√N falls below it (δ̂ ≠ 0) already at N in the low thousands:
        G_p[0] = −G_p[1] = ½ (B + noise·E_p),  f0_p = 0,  δ_teacher = teacher_scale · B,
    B a fixed rank-1 (side, side) matrix with ‖B‖_F = 1 (so ‖δ_teacher‖_* = teacher_scale), E_p i.i.d.
    Gaussian scaled to ‖E_p‖_F = 1. The logit margin of example p is ⟨B + noise·E_p, δ⟩."""
    check_dims(pool_size=pool_size, side=side)
    if not (teacher_scale > 0 and noise >= 0):
        raise InstanceError(f"need teacher_scale > 0 and noise ≥ 0, got {teacher_scale}, {noise}")
    a, b = rng.standard_normal(side), rng.standard_normal(side)
    B = np.outer(a / np.linalg.norm(a), b / np.linalg.norm(b))
    E = rng.standard_normal((pool_size, side, side))
    D = B + noise * E / np.linalg.norm(E, axis=(1, 2), keepdims=True)
    G = 0.5 * np.stack([D, -D], axis=1)  # (P, 2, side, side)
    f0 = np.zeros((pool_size, 2))
    teacher = teacher_scale * B
    return Pool(G, f0, teacher, softmax(f0 + apply_A(G, teacher)))
