"""Lemma C.4's experiment: the empirical Rademacher complexity of {⟨G, δ⟩ : ‖δ‖_* ≤ 1}, computed exactly
per sign draw as (1/N)‖Σ ε_ij G[i, j]‖_op (the dual norm), averaged over sign draws."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from theory import generalization as gen


class RademacherEstimate(NamedTuple):
    """mean over sign draws, its standard error (0 when every sign pattern is enumerated), R = max ‖G[i, j]‖_F,
    jensen = (1/N)√(Σ_ij ‖G[i, j]‖_F²), the paper's intermediate bound (D = 1)."""

    mean: float
    se: float
    R: float
    jensen: float = float("nan")


def estimate(G: np.ndarray, rng: np.random.Generator, draws: int) -> RademacherEstimate:
    """For G (N, K, m, n): all 2^(NK) sign patterns when NK ≤ MAX_ENUMERATED_SIGNS, else ``draws``
    Monte-Carlo draws from ``rng``."""
    N, K = G.shape[:2]
    exact = N * K <= gen.MAX_ENUMERATED_SIGNS
    signs = gen.all_sign_patterns(N, K) if exact else rng.choice([-1.0, 1.0], size=(draws, N, K))
    sups = gen.rademacher_sup(G, signs, 1.0)
    se = 0.0 if exact else float(np.std(sups) / np.sqrt(sups.size))
    return RademacherEstimate(float(np.mean(sups)), se, gen.sensing_radius(G), gen.rademacher_frobenius_bound(G, 1.0))


def pool_estimates(pool_G: np.ndarray, Ns: list[int], rng: np.random.Generator,
                   draws: int) -> dict[int, RademacherEstimate]:
    """For each N, a training set of N examples drawn (with replacement) from the pool (P, K, m, n) and
    its estimate; the examples and the signs come from ``rng``, in that order."""
    out = {}
    for N in Ns:
        G = pool_G[rng.integers(0, pool_G.shape[0], N)]
        out[N] = estimate(G, rng, draws)
    return out
