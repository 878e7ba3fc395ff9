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


@dataclass(frozen=True)
class _Base:
    """The fixed part of ‖(U₀ + c E_u)(V₀ + c E_v)ᵀ − X*‖²_F: D₀ = U₀V₀ᵀ − X*, its products with the factors and
    the factors' Gram matrices (so that each sample costs one (m, n) × (n, r) product, not dense (m, n) sums)."""

    U0: np.ndarray
    V0: np.ndarray
    D0: np.ndarray
    D0_V0: np.ndarray
    D0t_U0: np.ndarray
    G0u: np.ndarray
    G0v: np.ndarray
    d00: float

    @classmethod
    def of(cls, U0: np.ndarray, V0: np.ndarray, X_star: np.ndarray) -> "_Base":
        D0 = U0 @ V0.T - X_star
        return cls(U0, V0, D0, D0 @ V0, D0.T @ U0, U0.T @ U0, V0.T @ V0, float(np.sum(D0 * D0)))

    def quartic(self, Eu: np.ndarray, Ev: np.ndarray) -> np.ndarray:
        """Coefficients (c⁴ … c⁰) of ‖(U₀ + c E_u)(V₀ + c E_v)ᵀ − X*‖²_F = ‖D₀ + c D₁ + c² D₂‖²_F with
        D₁ = U₀E_vᵀ + E_uV₀ᵀ, D₂ = E_uE_vᵀ, by traces of (r, r) products: ‖D₂‖² = tr(G_u G_v),
        ⟨D₁, D₂⟩ = tr(P G_v) + tr(G_u Qᵀ), ‖D₁‖² = tr(G₀ᵤG_v) + tr(G_uG₀ᵥ) + 2 tr(P Q), P = U₀ᵀE_u, Q = V₀ᵀE_v."""
        Gu, Gv, P, Q = Eu.T @ Eu, Ev.T @ Ev, self.U0.T @ Eu, self.V0.T @ Ev
        d22 = np.sum(Gu * Gv)
        d12 = np.sum(P * Gv) + np.sum(Gu * Q)
        d11 = np.sum(self.G0u * Gv) + np.sum(Gu * self.G0v) + 2 * np.sum(P * Q.T)
        d02 = np.sum((self.D0 @ Ev) * Eu)
        d01 = np.sum(self.D0t_U0 * Ev) + np.sum(self.D0_V0 * Eu)
        return np.array([d22, 2 * d12, d11 + 2 * d02, 2 * d01, self.d00], dtype=float)


@dataclass(frozen=True)
class LowRank:
    """M = L Rᵀ (m, n) kept as its factors L (m, k), R (n, k)."""

    L: np.ndarray
    R: np.ndarray

    def dense(self) -> np.ndarray:
        return self.L @ self.R.T

    def norm_squared(self) -> float:
        """‖L Rᵀ‖²_F = tr((LᵀL)(RᵀR))."""
        return float(np.sum((self.L.T @ self.L) * (self.R.T @ self.R)))

    def block_entries(self, blocks, out: np.ndarray | None = None) -> np.ndarray:
        """The entries of the diagonal ``blocks`` [(rows, cols)], block after block, each row-major: (Σ m_t n_t,),
        written into ``out`` (a contiguous (Σ m_t n_t,) array) when given."""
        sizes = [(rows.stop - rows.start, cols.stop - cols.start) for rows, cols in blocks]
        if out is None:
            out = np.empty(sum(a * b for a, b in sizes))
        offset = 0
        for (rows, cols), (a, b) in zip(blocks, sizes):
            np.matmul(self.L[rows], self.R[cols].T, out=out[offset:offset + a * b].reshape(a, b))
            offset += a * b
        return out


def restricted_samples(rng: np.random.Generator, X_star: np.ndarray, r: int, D: float, count: int,
                       blocks=None):
    """Yield ``count`` pairs (X, ‖X − X*‖²_F): X a :class:`LowRank` (m, n) of rank ≤ r, block-diagonal in
    ``blocks``, with ‖X − X*‖_F ≤ D (the distance is the quartic's value at its root: the drawn radius²)."""
    m, n = X_star.shape
    blocks = blocks or blocks_of((m, n))
    U0, V0, k = _padded_factors(X_star, r)
    which = _column_blocks(U0[:, :k], blocks, r)
    mask_u, mask_v = np.zeros((m, r)), np.zeros((n, r))
    for col, t in enumerate(which):
        mask_u[blocks[t][0], col], mask_v[blocks[t][1], col] = 1.0, 1.0
    base = _Base.of(U0, V0, X_star)
    d00 = base.d00
    if np.sqrt(d00) >= D:
        raise ValueError(f"no rank-{r} matrix lies within D = {D} of X* (distance {np.sqrt(d00):.3g})")
    made = 0
    while made < count:
        Eu, Ev = rng.standard_normal((m, r)) * mask_u, rng.standard_normal((n, r)) * mask_v
        rho2 = (np.sqrt(d00) + (D - np.sqrt(d00)) * (1.0 - rng.uniform())) ** 2
        quartic = base.quartic(Eu, Ev)
        c = _smallest_root(quartic - np.array([0, 0, 0, 0, rho2]))
        if c is None:
            continue
        made += 1
        yield LowRank(U0 + c * Eu, V0 + c * Ev), float(np.polyval(quartic, c))


def rsm_direction(rng: np.random.Generator, X: LowRank) -> LowRank:
    """E = U X + X V = a (Xᵀb)ᵀ + (X c) dᵀ (rank ≤ 2) with U = a bᵀ, V = c dᵀ, a, b, c, d unit Gaussian vectors
    (‖U‖_F = ‖V‖_F = 1)."""
    m, n = X.L.shape[0], X.R.shape[0]
    a, b, c, d = (v / np.linalg.norm(v) for v in (rng.standard_normal(m), rng.standard_normal(m),
                                                   rng.standard_normal(n), rng.standard_normal(n)))
    return LowRank(np.column_stack([a, X.L @ (X.R.T @ c)]), np.column_stack([X.R @ (X.L.T @ b), d]))


def _block_columns(A: np.ndarray, cols: np.ndarray, shape: tuple[int, int], blocks) -> np.ndarray:
    """A (N·K, p) on the seen flat columns ``cols`` → A_B (N·K, Σ m_t n_t) on the entries of the diagonal blocks
    (block after block, row-major; zero where A sees nothing), so that A(X) = A_B X.block_entries(blocks) for X
    supported on the blocks. Raises ValueError if A sees an entry outside them."""
    n = shape[1]
    flat = np.concatenate([(np.arange(rw.start, rw.stop)[:, None] * n + np.arange(cl.start, cl.stop)[None, :]).ravel()
                           for rw, cl in blocks])
    if np.array_equal(flat, cols):
        return A
    where = np.full(shape[0] * n, -1)
    where[flat] = np.arange(flat.size)
    pos = where[cols]
    if np.any(pos < 0):
        raise ValueError(f"the sensing map sees {int(np.sum(pos < 0))} entries outside the diagonal blocks")
    A_B = np.zeros((A.shape[0], flat.size))
    A_B[:, pos] = A
    return A_B


def linearized_estimates(inst, X_star: np.ndarray, r: int, D: float, count: int, rng: np.random.Generator,
                         blocks=None) -> ConstantEstimates:
    """Sampled RSC / RSM ratios of the unregularized linearized risk L̂ of ``inst`` about X* at rank r
    (``count`` points X, one direction E per point). Only the columns of A it can see are used
    (``theory.linearized_model.seen_columns``: a block-diagonal G is half zeros), on the entries of the diagonal
    blocks formed from the factors of X and E (never a dense (m, n) matrix per sample)."""
    A, cols = seen_columns(inst.G)
    N, K = inst.f0.shape
    y_star = inst.f0 + (A @ X_star.reshape(-1)[cols]).reshape(N, K)
    blocks = blocks or blocks_of((inst.m, inst.n))
    A_B = _block_columns(A, cols, (inst.m, inst.n), blocks)
    rsc, rsm, dist = [], [], []
    points = restricted_samples(rng, X_star, r, D, count, blocks)
    done = 0
    while done < count:
        batch = [next(points) for _ in range(min(CHUNK, count - done))]
        E = [rsm_direction(rng, X) for X, _ in batch]
        entries = np.empty((2 * len(batch), A_B.shape[1]))  # the points' entries, then the directions'
        for k, M in enumerate([X for X, _ in batch] + E):
            M.block_entries(blocks, out=entries[k])
        images = (entries @ A_B.T).reshape(2, len(batch), N, K)  # one pass over A for both
        yhat, AE = inst.f0[None] + images[0], images[1]
        d2 = np.array([d for _, d in batch])
        rsc.append(fl.rsc_ratios_from_outputs(yhat, y_star, inst.Y, inst.loss, d2))
        rsm.append(fl.rsm_ratios_from_outputs(yhat, AE, inst.Y, inst.loss, [e.norm_squared() for e in E]))
        dist.append(np.sqrt(d2))
        done += len(batch)
    return ConstantEstimates(r, D, np.concatenate(rsc), np.concatenate(rsm), np.concatenate(dist))
