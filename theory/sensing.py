"""The sensing map A stored without its zeros: block-diagonal and factored storage of G (MATH.md §1).

A tuned update of T matrices is block-diagonal: δ (m, n), m = Σ m_t, n = Σ n_t, with block t (m_t, n_t)
added to W_t and the off-diagonal blocks reaching no weight. So the dense G (N, K, m, n) is zero off the
diagonal blocks; :class:`BlockSensing` keeps only the T blocks, each stored as

- :class:`DenseBlock`: G_t (N, K, m_t, n_t), or
- :class:`FactoredBlock`: G_t[i, j] = Σ_{s ∈ tokens(i)} left[s, j] right[s]ᵀ, left (T, K, m_t), right (T, n_t),
  the T tokens of all examples in a row (example i owns tokens offsets[i] … offsets[i + 1] − 1) — a linear
  layer's per-example weight gradient is Σ over the example's L_i tokens of (output gradient)(layer input)ᵀ,
  so this is exact and smaller than G_t when L_i < min(m_t, n_t) (``verify.entk`` extracts it by hooks and
  keeps each example's own tokens, not the padding).

Operations (never forming the dense G):
  A(δ)[i, j] = Σ_t ⟨G_t[i, j], δ_t⟩                     (N, K)
  A*(V)      = blockdiag_t Σ_ij V[i, j] G_t[i, j]         (m, n), zero off the diagonal blocks
  factored: A_t(δ_t)[i, j] = Σ_{s ∈ tokens(i)} left[s, j]ᵀ δ_t right[s];  A_t*(V) = Σ_s (Σ_j V_{i(s) j} left[s, j]) right[s]ᵀ.
The functions of ``theory.linearized_model`` and ``theory.optimality`` accept a ``BlockSensing`` wherever
they accept G (``shape`` is (N, K, m, n) for both). ‖S‖_op of a block-diagonal S is the largest block's and
‖δ‖_* of a block-diagonal δ is the sum over blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse


#: the largest dense G (bytes) that ``BlockSensing.dense_rows`` / ``dense`` will build (they exist for small
#: instances and for solvers that need the matrix; beyond this the caller must use the block operations)
MAX_DENSE_BYTES = 2**31


class DenseTooLarge(MemoryError):
    """Materialising the dense G of a block instance would exceed ``MAX_DENSE_BYTES``."""


@dataclass(frozen=True)
class DenseBlock:
    """G_t (N, K, m_t, n_t) stored densely."""

    G: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.G.shape[2], self.G.shape[3]

    @property
    def nbytes(self) -> int:
        return self.G.nbytes

    def apply(self, delta: np.ndarray) -> np.ndarray:
        """A_t(δ_t) (N, K) for δ_t (m_t, n_t)."""
        N, K, m, n = self.G.shape
        return (self.G.reshape(N * K, m * n) @ delta.reshape(m * n)).reshape(N, K)

    def adjoint(self, V: np.ndarray) -> np.ndarray:
        """A_t*(V) (m_t, n_t) for V (N, K)."""
        N, K, m, n = self.G.shape
        return (V.reshape(N * K) @ self.G.reshape(N * K, m * n)).reshape(m, n)

    def row_norms_squared(self) -> np.ndarray:
        """‖G_t[i, j]‖_F² (N, K)."""
        return np.einsum("nkab,nkab->nk", self.G, self.G)

    def dense_rows(self, rows: slice) -> np.ndarray:
        """G_t[rows] (B, K, m_t, n_t)."""
        return self.G[rows]


def token_offsets(counts) -> np.ndarray:
    """The offsets (N + 1,) int64 of examples with ``counts`` (N,) tokens each: 0, c₀, c₀ + c₁, …"""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


@dataclass(frozen=True)
class FactoredBlock:
    """G_t[i, j] = Σ_{s ∈ tokens(i)} left[s, j] right[s]ᵀ, the tokens of example i being s = offsets[i] …
    offsets[i + 1] − 1: left (T, K, m_t), right (T, n_t), offsets (N + 1,) int64 non-decreasing from 0 to T
    (T tokens in all; examples of different lengths keep only their own tokens, an example may keep none).
    :meth:`padded` builds it from the padded per-example form (N, K, L, m_t), (N, L, n_t);
    :meth:`without_zero_tokens` drops the tokens whose left factors are exactly zero (padding), which changes no
    G_t[i, j]."""

    left: np.ndarray
    right: np.ndarray
    offsets: np.ndarray

    @classmethod
    def padded(cls, left: np.ndarray, right: np.ndarray) -> FactoredBlock:
        """From left (N, K, L, m_t), right (N, L, n_t): every example has L tokens."""
        N, K, L, m = left.shape
        return cls(np.ascontiguousarray(left.transpose(0, 2, 1, 3).reshape(N * L, K, m)),
                   np.ascontiguousarray(right.reshape(N * L, -1)), np.arange(N + 1, dtype=np.int64) * L)

    def without_zero_tokens(self) -> FactoredBlock:
        """The same block without the tokens s whose left[s] (K, m_t) is all zero (their terms are zero)."""
        keep = np.any(self.left != 0, axis=(1, 2))
        return FactoredBlock(np.ascontiguousarray(self.left[keep]), np.ascontiguousarray(self.right[keep]),
                             token_offsets(np.bincount(self.owner[keep], minlength=self.N)))

    @classmethod
    def concatenate(cls, parts: list[FactoredBlock]) -> FactoredBlock:
        """The examples of ``parts`` (same K, m_t, n_t) one after the other."""
        return cls(np.concatenate([p.left for p in parts]), np.concatenate([p.right for p in parts]),
                   token_offsets(np.concatenate([np.diff(p.offsets) for p in parts])))

    @property
    def N(self) -> int:
        return len(self.offsets) - 1

    @property
    def K(self) -> int:
        return self.left.shape[1]

    @property
    def tokens(self) -> int:
        return self.left.shape[0]

    @property
    def shape(self) -> tuple[int, int]:
        return self.left.shape[2], self.right.shape[1]

    @property
    def nbytes(self) -> int:
        return self.left.nbytes + self.right.nbytes + self.offsets.nbytes

    @cached_property
    def owner(self) -> np.ndarray:
        """The example of each token (T,) int64."""
        return np.repeat(np.arange(self.N), np.diff(self.offsets))

    @cached_property
    def _sum_tokens(self) -> scipy.sparse.csr_matrix:
        """The 0/1 matrix E (N, T) with E[i, s] = 1 for the tokens of example i: E @ x sums x over each example."""
        T = self.tokens
        return scipy.sparse.csr_matrix((np.ones(T), np.arange(T), self.offsets), shape=(self.N, T))

    def apply(self, delta: np.ndarray) -> np.ndarray:
        """A_t(δ_t) (N, K) for δ_t (m_t, n_t)."""
        Z = self.right @ delta.T                                            # (T, m_t): δ right[s]
        return self._sum_tokens @ np.einsum("tka,ta->tk", self.left, Z)

    def apply_factors(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """A_t(u vᵀ) (N, K) for u (m_t, r), v (n_t, r): Σ_s (left[s, j]ᵀ u)·(right[s]ᵀ v)."""
        return self._sum_tokens @ np.einsum("tkr,tr->tk", self.left @ u, self.right @ v)

    def adjoint(self, V: np.ndarray) -> np.ndarray:
        """A_t*(V) (m_t, n_t) for V (N, K)."""
        W = np.einsum("tk,tka->ta", V[self.owner], self.left)              # (T, m_t)
        return W.T @ self.right

    def row_norms_squared(self) -> np.ndarray:
        """‖G_t[i, j]‖_F² (N, K) = Σ_{s, s' ∈ tokens(i)} ⟨left[s, j], left[s', j]⟩⟨right[s], right[s']⟩."""
        out = np.zeros((self.N, self.K))
        for i in range(self.N):
            s = slice(self.offsets[i], self.offsets[i + 1])
            out[i] = np.einsum("ska,tka,st->k", self.left[s], self.left[s],
                               self.right[s] @ self.right[s].T)
        return out

    def dense_rows(self, rows: slice) -> np.ndarray:
        """G_t[rows] (B, K, m_t, n_t)."""
        idx = range(self.N)[rows]
        out = np.zeros((len(idx), self.K) + self.shape)
        for b, i in enumerate(idx):
            s = slice(self.offsets[i], self.offsets[i + 1])
            out[b] = np.einsum("tka,tb->kab", self.left[s], self.right[s])
        return out


Block = DenseBlock | FactoredBlock


@dataclass(frozen=True)
class BlockSensing:
    """The sensing map of T tuned matrices as T blocks on the diagonal of δ (module docstring).

    ``blocks``: tuple of DenseBlock / FactoredBlock, all with the same N and K. ``shape`` (N, K, m, n) is
    that of the dense G it stands for.
    """

    blocks: tuple

    def __post_init__(self):
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks:
            raise ValueError("BlockSensing needs at least one block")
        nk = {self._nk(b) for b in self.blocks}
        if len(nk) != 1:
            raise ValueError(f"every block must have the same (N, K); got {sorted(nk)}")

    @staticmethod
    def _nk(block) -> tuple[int, int]:
        return (block.G.shape[:2] if isinstance(block, DenseBlock) else (block.N, block.K))

    # shapes -------------------------------------------------------------------------------------
    @property
    def block_shapes(self) -> list[tuple[int, int]]:
        return [b.shape for b in self.blocks]

    @property
    def shape(self) -> tuple[int, int, int, int]:
        N, K = self._nk(self.blocks[0])
        return (N, K, sum(s[0] for s in self.block_shapes), sum(s[1] for s in self.block_shapes))

    @property
    def ndim(self) -> int:
        return 4

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.blocks)

    def slices(self) -> list[tuple[slice, slice]]:
        """(rows, columns) of block t in δ (m, n)."""
        r = np.cumsum([0] + [s[0] for s in self.block_shapes])
        c = np.cumsum([0] + [s[1] for s in self.block_shapes])
        return [(slice(r[t], r[t + 1]), slice(c[t], c[t + 1])) for t in range(len(self.blocks))]

    # the map ------------------------------------------------------------------------------------
    def apply(self, delta: np.ndarray) -> np.ndarray:
        """A(δ) (N, K) for δ (m, n); off-diagonal blocks of δ are ignored (G is zero there)."""
        return sum(b.apply(delta[r, c]) for b, (r, c) in zip(self.blocks, self.slices()))

    def apply_factors(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """A(u vᵀ) (N, K) for u (m, r), v (n, r), forming only the diagonal blocks u_t v_tᵀ (dense blocks) or
        nothing (factored blocks: Σ_s (left[s, j]ᵀ u_t)(right[s]ᵀ v_t))."""
        out = 0.0
        for b, (r, c) in zip(self.blocks, self.slices()):
            out = out + (b.apply(u[r] @ v[c].T) if isinstance(b, DenseBlock) else b.apply_factors(u[r], v[c]))
        return out

    def adjoint_blocks(self, V: np.ndarray) -> list[np.ndarray]:
        """The diagonal blocks S_t = A_t*(V) (m_t, n_t) of A*(V)."""
        return [b.adjoint(V) for b in self.blocks]

    def adjoint(self, V: np.ndarray) -> np.ndarray:
        """A*(V) (m, n), zero off the diagonal blocks."""
        N, K, m, n = self.shape
        S = np.zeros((m, n))
        for St, (r, c) in zip(self.adjoint_blocks(V), self.slices()):
            S[r, c] = St
        return S

    def row_norms_squared(self) -> np.ndarray:
        """‖G[i, j]‖_F² (N, K), summed over the blocks."""
        return sum(b.row_norms_squared() for b in self.blocks)

    def diagonal_block(self, t: int) -> np.ndarray:
        """Block t as a dense G_t (N, K, m_t, n_t)."""
        return self.blocks[t].dense_rows(slice(None))

    def dense_rows(self, rows: slice) -> np.ndarray:
        """The dense G[rows] (B, K, m, n) (block-diagonal, zeros elsewhere): small sizes only."""
        N, K, m, n = self.shape
        B = len(range(N)[rows])
        if B * K * m * n * 8 > MAX_DENSE_BYTES:
            raise DenseTooLarge(f"the dense G of {B} examples would take {B * K * m * n * 8 / 2**30:.1f} GiB "
                                f"(limit {MAX_DENSE_BYTES / 2**30:.0f} GiB): use the block operations")
        part = [b.dense_rows(rows) for b in self.blocks]
        out = np.zeros((B, K) + self.shape[2:])
        for p, (r, c) in zip(part, self.slices()):
            out[:, :, r, c] = p
        return out

    def dense(self) -> np.ndarray:
        """The dense G (N, K, m, n): for tests and small instances only."""
        return self.dense_rows(slice(None))

    def gram(self, chunk_bytes: int = 2**28) -> np.ndarray:
        """A Aᵀ as an (N·K, N·K) matrix, Σ_t over blocks; a factored block is made dense a chunk of examples at a
        time, each chunk at most ``chunk_bytes`` (cost N²K² Σ m_t n_t: the matrix-free operations above are what
        the solvers use)."""
        N, K = self.shape[:2]
        out = np.zeros((N * K, N * K))
        for b in self.blocks:
            if isinstance(b, DenseBlock):
                Gm = b.G.reshape(N * K, -1)
                out += Gm @ Gm.T
                continue
            chunk = max(1, chunk_bytes // (8 * K * b.shape[0] * b.shape[1]))
            starts = range(0, N, chunk)
            for i in starts:
                Di = b.dense_rows(slice(i, i + chunk)).reshape(-1, b.shape[0] * b.shape[1])
                for j in starts:
                    if j < i:
                        continue
                    Dj = Di if j == i else b.dense_rows(slice(j, j + chunk)).reshape(-1, Di.shape[1])
                    blk = Di @ Dj.T
                    out[i * K:i * K + blk.shape[0], j * K:j * K + blk.shape[1]] += blk
                    if j != i:
                        out[j * K:j * K + blk.shape[1], i * K:i * K + blk.shape[0]] += blk.T
        return out


def is_operator(G) -> bool:
    """True for a :class:`BlockSensing` (False for a dense (N, K, m, n) array)."""
    return isinstance(G, BlockSensing)


def from_dense_blocks(G: np.ndarray, block_shapes: list[tuple[int, int]]) -> BlockSensing:
    """The diagonal blocks of a dense block-diagonal G (N, K, m, n) as a BlockSensing (converting old files)."""
    G = np.asarray(G, dtype=float)
    r = np.cumsum([0] + [s[0] for s in block_shapes])
    c = np.cumsum([0] + [s[1] for s in block_shapes])
    if (r[-1], c[-1]) != G.shape[2:]:
        raise ValueError(f"block shapes {block_shapes} do not tile (m, n) = {G.shape[2:]}")
    return BlockSensing(tuple(DenseBlock(np.ascontiguousarray(G[:, :, r[t]:r[t + 1], c[t]:c[t + 1]]))
                              for t in range(len(block_shapes))))


def factor_singular_values(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Singular values of u vᵀ (u (m, r), v (n, r)) from two thin QRs, without forming u vᵀ:
    u vᵀ = Q_u (R_u R_vᵀ) Q_vᵀ, so σ(u vᵀ) = σ(R_u R_vᵀ) (r × r)."""
    if u.shape[1] == 0:
        return np.zeros(0)
    Ru = np.linalg.qr(u, mode="r")
    Rv = np.linalg.qr(v, mode="r")
    return np.linalg.svd(Ru @ Rv.T, compute_uv=False)
