"""Monte Carlo estimates of Kim, Kim, Ryu's restricted strong convexity α and restricted smoothness β about X*
(``theory.fails_loudly``), on the linearized risk of an instance and on the actual model's risk.

The restricted set is {X : rank X ≤ r, ‖X − X*‖_F ≤ D}, and the RSM directions are E = U X + X V with U, V of
rank 1 and unit Frobenius norm (definitions as in the ICML 2025 oral slides, "Assumption: restricted strong
convexity and restricted smoothness"). α is an infimum and β a supremum over these sets, so the minimum of the
sampled RSC ratios is an UPPER bound on α and the maximum of the sampled RSM ratios a LOWER bound on β.

Sampling (ours: the paper's own sampling distribution could not be read here, only its table — said in the
report): X = (U₀ + c E_u)(V₀ + c E_v)ᵀ with (U₀, V₀) the balanced factors of X* padded with zero columns to r,
E_u, E_v standard Gaussian, and c > 0 solving ‖X − X*‖_F = ρ for a radius ρ drawn uniformly in (0, D] (a quartic
in c). With a block layout (several tuned matrices stored block-diagonally), every factor column lives in one
block, so X stays block-diagonal (the only part the model sees). U = a bᵀ, V = c dᵀ with unit Gaussian vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory import fails_loudly as fl
from theory.lemma_2_2 import balanced_factors
from theory.linearized_model import seen_columns

#: samples formed densely at once (m·n floats each, twice)
CHUNK = 25


@dataclass
class ConstantEstimates:
    """Sampled RSC ratios (α side) and RSM ratios (β side) at one rank; ``dist`` = ‖X_s − X*‖_F."""

    rank: int
    D: float
    rsc: np.ndarray
    rsm: np.ndarray
    dist: np.ndarray

    @property
    def alpha_upper(self) -> float:
        """min of the RSC ratios: an upper bound on the true α."""
        return fl.alpha_upper_estimate(self.rsc)

    @property
    def beta_lower(self) -> float:
        """max of the RSM ratios: a lower bound on the true β."""
        return fl.beta_lower_estimate(self.rsm)

    def row(self) -> dict:
        a, b = self.alpha_upper, self.beta_lower
        return {"r": self.rank, "samples": int(self.rsc.size), "alpha_upper": a, "beta_lower": b,
                "beta_over_alpha": b / a if a > 0 else None}


def blocks_of(shape: tuple[int, int], weight_shapes=None) -> list[tuple[slice, slice]]:
    """(rows, cols) of the diagonal blocks: one per tuned matrix (``weight_shapes`` [(m_t, n_t)]), else one."""
    if not weight_shapes:
        return [(slice(0, shape[0]), slice(0, shape[1]))]
    r = np.cumsum([0] + [s[0] for s in weight_shapes])
    c = np.cumsum([0] + [s[1] for s in weight_shapes])
    return [(slice(r[t], r[t + 1]), slice(c[t], c[t + 1])) for t in range(len(weight_shapes))]


def _column_blocks(U0: np.ndarray, blocks, r: int) -> list[int]:
    """The block of each factor column: where X*'s column lives, then round-robin for the padding."""
    own = [int(np.argmax([np.linalg.norm(U0[rows, k]) for rows, _ in blocks])) for k in range(U0.shape[1])]
    return own + [k % len(blocks) for k in range(r - len(own))]


def _padded_factors(X_star: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Balanced factors (m, r), (n, r) of X*'s best rank-min(r, rank X*) part, zero-padded; and that rank."""
    s = np.linalg.svd(X_star, compute_uv=False)
    k = min(r, int(np.sum(s > s[0] * 1e-12)) if s[0] > 0 else 0)
    m, n = X_star.shape
    U0, V0 = np.zeros((m, r)), np.zeros((n, r))
    if k:
        U0[:, :k], V0[:, :k] = balanced_factors(X_star, k)
    return U0, V0, k


def _smallest_root(coef: np.ndarray) -> float | None:
    roots = np.roots(coef)
    real = roots[(np.abs(roots.imag) <= 1e-9 * np.maximum(1.0, np.abs(roots))) & (roots.real > 0)].real
    return float(real.min()) if real.size else None


def restricted_samples(rng: np.random.Generator, X_star: np.ndarray, r: int, D: float, count: int,
                       blocks=None):
    """Yield ``count`` dense X (m, n) with rank ≤ r, ‖X − X*‖_F ≤ D (block-diagonal in ``blocks``)."""
    m, n = X_star.shape
    blocks = blocks or blocks_of((m, n))
    U0, V0, k = _padded_factors(X_star, r)
    which = _column_blocks(U0[:, :k], blocks, r)
    mask_u, mask_v = np.zeros((m, r)), np.zeros((n, r))
    for col, t in enumerate(which):
        mask_u[blocks[t][0], col], mask_v[blocks[t][1], col] = 1.0, 1.0
    D0 = U0 @ V0.T - X_star
    d00 = float(np.sum(D0 * D0))
    if np.sqrt(d00) >= D:
        raise ValueError(f"no rank-{r} matrix lies within D = {D} of X* (distance {np.sqrt(d00):.3g})")
    made = 0
    while made < count:
        Eu, Ev = rng.standard_normal((m, r)) * mask_u, rng.standard_normal((n, r)) * mask_v
        D1, D2 = U0 @ Ev.T + Eu @ V0.T, Eu @ Ev.T
        rho2 = (np.sqrt(d00) + (D - np.sqrt(d00)) * (1.0 - rng.uniform())) ** 2
        coef = [np.sum(D2 * D2), 2 * np.sum(D1 * D2), np.sum(D1 * D1) + 2 * np.sum(D0 * D2),
                2 * np.sum(D0 * D1), d00 - rho2]
        c = _smallest_root(np.array(coef, dtype=float))
        if c is None:
            continue
        made += 1
        yield (U0 + c * Eu) @ (V0 + c * Ev).T


def rsm_direction_sample(rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    """E = U X + X V with U = a bᵀ, V = c dᵀ, a, b, c, d unit Gaussian vectors (‖U‖_F = ‖V‖_F = 1)."""
    m, n = X.shape
    a, b, c, d = (v / np.linalg.norm(v) for v in (rng.standard_normal(m), rng.standard_normal(m),
                                                   rng.standard_normal(n), rng.standard_normal(n)))
    return np.outer(a, X.T @ b) + np.outer(X @ c, d)


def linearized_estimates(inst, X_star: np.ndarray, r: int, D: float, count: int, rng: np.random.Generator,
                         blocks=None) -> ConstantEstimates:
    """Sampled RSC / RSM ratios of the unregularized linearized risk L̂ of ``inst`` about X* at rank r
    (``count`` points X, one direction E per point). Only the columns of A it can see are used
    (``theory.linearized_model.seen_columns``: a block-diagonal G is half zeros)."""
    A, cols = seen_columns(inst.G)
    N, K = inst.f0.shape
    y_star = inst.f0 + (A @ X_star.reshape(-1)[cols]).reshape(N, K)
    rsc, rsm, dist = [], [], []
    points = restricted_samples(rng, X_star, r, D, count, blocks)
    done = 0
    while done < count:
        batch = [next(points) for _ in range(min(CHUNK, count - done))]
        E = [rsm_direction_sample(rng, X) for X in batch]
        Xf = np.stack([X.reshape(-1)[cols] for X in batch])
        Ef = np.stack([e.reshape(-1)[cols] for e in E])
        yhat = inst.f0[None] + (Xf @ A.T).reshape(len(batch), N, K)
        AE = (Ef @ A.T).reshape(len(batch), N, K)
        d2 = np.array([np.sum((X - X_star) ** 2) for X in batch])
        rsc.append(fl.rsc_ratios_from_outputs(yhat, y_star, inst.Y, inst.loss, d2))
        rsm.append(fl.rsm_ratios_from_outputs(yhat, AE, inst.Y, inst.loss, [np.sum(e * e) for e in E]))
        dist.append(np.sqrt(d2))
        done += len(batch)
    return ConstantEstimates(r, D, np.concatenate(rsc), np.concatenate(rsm), np.concatenate(dist))
