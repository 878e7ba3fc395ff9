"""F_P and its gradient in torch for a batch of starts (MATH.md §2).

Batching: S starts are one tensor Q of shape (S, m + n, r) and share one copy of the sensing map. A dense G is
stored as Gmat = G as (N·K, m·n); one evaluation and one gradient read Gmat once each:
  A(δ) = δ.reshape(S, m·n) @ Gmatᵀ                      (S, N·K)    forward pass, gives F_P
  S(δ) = (V.reshape(S, N·K) @ Gmat).reshape(S, m, n)    (S, m, n)   adjoint pass, gives ∇F_P
and the gradient is the explicit ∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q, the formula of
``theory.optimality.apply_M`` (cheaper than autograd). A ``theory.sensing.BlockSensing`` is the torch twin
:class:`TorchSensing`: per block t, the same two passes on the block's rows u_t and v_t of Q (dense block), or,
for a factored block G_t[i, j] = Σ_{s ∈ tokens(i)} left[s, j] right[s]ᵀ, the products
  A_t(u_t v_tᵀ)[i, j] = Σ_{s ∈ tokens(i)} (left[s, j]ᵀ u_t)·(right[s]ᵀ v_t),
  S_t v_t = Σ_{s, j} V_{i(s) j} left[s, j] (right[s]ᵀ v_t),   S_tᵀ u_t = Σ_{s, j} V_{i(s) j} right[s] (left[s, j]ᵀ u_t),
which never form G_t, δ or S. Shared LoRA is one factor Q of the block-diagonal update (off-diagonal blocks of
u vᵀ reach no weight); per-matrix LoRA (rank r on each block, what PEFT does) is the same F_P restricted to
factors with the block pattern of :func:`per_matrix_mask` (gradient multiplied by the mask).
The loss enters only through its torch forms (``theory.losses.Loss.torch_value``, ``torch_grad``,
``torch_targets``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from theory.losses import Loss, get_loss
from theory.sensing import BlockSensing, DenseBlock, is_operator
from verify.instance import Instance


class TorchSensing:
    """The torch twin of ``theory.sensing.BlockSensing``: a list of blocks, each ("dense", Gmat_t (N·K, m_t·n_t))
    or ("factored", left (T·K, m_t), right (T, n_t), owner (T,)) with owner[s] the example of token s, and the
    row and column offsets of block t."""

    def __init__(self, op: BlockSensing, device=None, dtype=torch.float64):
        as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device)  # noqa: E731
        self.N, self.K, self.m, self.n = op.shape
        self.slices = op.slices()
        self.shapes = op.block_shapes
        self.blocks = [("dense", as_t(b.G).reshape(self.N * self.K, -1)) if isinstance(b, DenseBlock)
                       else ("factored", as_t(b.left).reshape(-1, b.shape[0]), as_t(b.right),
                             torch.as_tensor(b.owner, device=device)) for b in op.blocks]

    def outputs(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, list]:
        """(A(u vᵀ) (S, N, K), per block the factored products or None) for u (S, m, r), v (S, n, r)."""
        out, parts = 0.0, []
        for blk, (rows, cols) in zip(self.blocks, self.slices):
            ut, vt = u[:, rows], v[:, cols]
            if blk[0] == "dense":
                d = ut @ vt.transpose(1, 2)
                out = out + (d.reshape(d.shape[0], -1) @ blk[1].T).reshape(-1, self.N, self.K)
                parts.append(None)
            else:
                lu, xv = self._factor_products(blk, ut, vt)
                tok = (lu * xv.unsqueeze(2)).sum(dim=3)                                  # (S, T, K)
                out = out + tok.new_zeros(tok.shape[0], self.N, self.K).index_add_(1, blk[3], tok)
                parts.append((lu, xv))
        return out, parts

    def _factor_products(self, blk, ut, vt):
        """(left·u_t (S, T, K, r), right·v_t (S, T, r)) of a factored block."""
        S, r = ut.shape[0], ut.shape[2]
        lu = torch.matmul(blk[1], ut).reshape(S, -1, self.K, r)
        return lu, torch.matmul(blk[2], vt)

    def adjoint_blocks(self, V: torch.Tensor) -> list[torch.Tensor]:
        """The diagonal blocks S_t = A_t*(V) (S, m_t, n_t) of A*(V), for V (S, N, K)."""
        out = []
        for blk, (mt, nt) in zip(self.blocks, self.shapes):
            if blk[0] == "dense":
                out.append((V.reshape(V.shape[0], -1) @ blk[1]).reshape(-1, mt, nt))
            else:
                W = torch.einsum("stk,tka->sta", V[:, blk[3]], blk[1].reshape(-1, self.K, mt))  # (S, T, m_t)
                out.append(W.transpose(1, 2) @ blk[2])
        return out

    def products(self, V: torch.Tensor, u: torch.Tensor, v: torch.Tensor, parts: list | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """(S v (S, m, r), Sᵀ u (S, n, r)) with S = A*(V) block-diagonal, for V (S, N, K); ``parts`` from
        :meth:`outputs` at the same u, v (recomputed when None)."""
        Sv, Stu = torch.zeros_like(u), torch.zeros_like(v)
        parts = parts or [None] * len(self.blocks)
        for blk, (rows, cols), (mt, nt), part in zip(self.blocks, self.slices, self.shapes, parts):
            ut, vt = u[:, rows], v[:, cols]
            if blk[0] == "dense":
                St = (V.reshape(V.shape[0], -1) @ blk[1]).reshape(-1, mt, nt)
                Sv[:, rows], Stu[:, cols] = St @ vt, St.transpose(1, 2) @ ut
            else:
                lu, xv = part or self._factor_products(blk, ut, vt)
                Vt = V[:, blk[3], :, None]                                          # (S, T, K, 1): V of each token
                C = (Vt * xv.unsqueeze(2)).reshape(V.shape[0], -1, ut.shape[2])     # (S, T·K, r)
                Sv[:, rows] = torch.matmul(blk[1].T, C)
                Stu[:, cols] = torch.matmul(blk[2].T, (Vt * lu).sum(dim=2))         # (S, n_t, r)
        return Sv, Stu


#: the LoRA forms: one factor of the block-diagonal update (the paper's), or rank r on each tuned matrix (PEFT's)
LORA_FORMS = ("shared", "per-matrix")


def lora_mask(inst: Instance, rank: int, form: str) -> np.ndarray | None:
    """None for shared LoRA; the per-matrix pattern (m + n, T·rank) of the instance's blocks (one block for a dense
    G) for per-matrix LoRA."""
    if form not in LORA_FORMS:
        raise ValueError(f"LoRA form must be one of {LORA_FORMS}, got {form!r}")
    if form == "shared":
        return None
    return per_matrix_mask(inst.G.block_shapes if is_operator(inst.G) else [(inst.m, inst.n)], rank)


def per_matrix_mask(block_shapes: list[tuple[int, int]], rank: int) -> np.ndarray:
    """The 0/1 pattern (m + n, T·rank) of per-matrix LoRA as one factor: block t's rows of u and of v use
    columns t·rank … (t+1)·rank − 1 only, so u vᵀ = blockdiag(u_t v_tᵀ) and ‖Q‖_F² = Σ_t ‖Q_t‖_F²."""
    m = sum(s[0] for s in block_shapes)
    mask = np.zeros((m + sum(s[1] for s in block_shapes), len(block_shapes) * rank))
    r0 = c0 = 0
    for t, (mt, nt) in enumerate(block_shapes):
        mask[r0:r0 + mt, t * rank:(t + 1) * rank] = 1.0
        mask[m + c0:m + c0 + nt, t * rank:(t + 1) * rank] = 1.0
        r0, c0 = r0 + mt, c0 + nt
    return mask


class Evaluation(NamedTuple):
    """F_P at a batch of points with the by-products the gradient reuses.

    F (S,) values; yhat (S, N, K) outputs f0 + A(u vᵀ); PQ (S, m + n, r) P Q, or None when P = 0; factors the
    products of :meth:`TorchSensing.outputs` for block storage.
    """

    F: torch.Tensor
    yhat: torch.Tensor
    PQ: torch.Tensor | None
    factors: list | None = None  # per factored block, (left·u_t, right·v_t) reused by the gradient


@dataclass(frozen=True)
class TorchLoRAProblem:
    """F_P for a batch of factors on one device.

    Gmat (N·K, m·n) the dense sensing matrix, or None when ``sensing`` (a :class:`TorchSensing`, block or
    factored storage) holds the map; f0 (N, K); Y the loss's torch targets ((N, K) floats or (N,) int64
    labels); loss the ``theory.losses.Loss``; lam λ; P (m + n, m + n) or None; m rows of δ; mask
    (m + n, r) or None: the factor pattern kept fixed (per-matrix LoRA, :func:`per_matrix_mask`).
    Points are Q of shape (S, m + n, r).
    """

    Gmat: torch.Tensor | None
    f0: torch.Tensor
    Y: torch.Tensor
    loss: Loss
    lam: float
    P: torch.Tensor | None
    m: int
    sensing: TorchSensing | None = None
    mask: torch.Tensor | None = None

    @classmethod
    def from_arrays(cls, G, f0, Y, loss: str | Loss, lam: float, P=None, *, device=None, dtype=torch.float64,
                    mask=None):
        """Build from numpy arrays or tensors; a dense G (N, K, m, n) is copied at most once (not at all when it
        is already a float64 CPU array and the target is float64 on the CPU); a ``BlockSensing`` G becomes a
        :class:`TorchSensing`."""
        lossf = get_loss(loss)
        Y = lossf.torch_targets(Y, dtype, device)
        P = None if P is None else torch.as_tensor(P, dtype=dtype, device=device)
        f0 = torch.as_tensor(f0, dtype=dtype, device=device)
        mask = None if mask is None else torch.as_tensor(mask, dtype=dtype, device=device)
        if is_operator(G):
            return cls(None, f0, Y, lossf, float(lam), P, G.shape[2], TorchSensing(G, device, dtype), mask)
        G = torch.as_tensor(G, dtype=dtype, device=device)
        n_ex, k, m, n = G.shape
        return cls(G.reshape(n_ex * k, m * n), f0, Y, lossf, float(lam), P, m, None, mask)

    @classmethod
    def from_instance(cls, inst: Instance, device=None, dtype=torch.float64, mask=None) -> "TorchLoRAProblem":
        return cls.from_arrays(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, inst.P, device=device, dtype=dtype,
                               mask=mask)

    @property
    def N(self) -> int:
        return self.f0.shape[0]

    def outputs(self, Q: torch.Tensor) -> torch.Tensor:
        """ŷ = f0 + A(u vᵀ), shape (S, N, K), for Q of shape (S, m + n, r)."""
        u, v = Q[:, :self.m], Q[:, self.m:]
        if self.sensing is not None:
            return self.f0 + self.sensing.outputs(u, v)[0]
        delta = u @ v.transpose(1, 2)                                    # (S, m, n)
        A_delta = delta.reshape(Q.shape[0], -1) @ self.Gmat.T           # (S, N·K)
        return self.f0 + A_delta.reshape(Q.shape[0], *self.f0.shape)

    def evaluate(self, Q: torch.Tensor) -> Evaluation:
        """F_P(Q) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ for every start (one pass over Gmat)."""
        parts = None
        if self.sensing is not None:
            A_uv, parts = self.sensing.outputs(Q[:, :self.m], Q[:, self.m:])
            yhat = self.f0 + A_uv
        else:
            yhat = self.outputs(Q)
        F = self.loss.torch_value(yhat, self.Y).mean(dim=-1) + 0.5 * self.lam * torch.sum(Q * Q, dim=(1, 2))
        PQ = None
        if self.P is not None:
            PQ = self.P @ Q
            F = F + torch.sum(Q * PQ, dim=(1, 2))
        return Evaluation(F, yhat, PQ, parts)

    def residual_weights(self, yhat: torch.Tensor) -> torch.Tensor:
        """V = (1/N) ∂ℓ/∂ŷ, shape (S, N, K)."""
        return self.loss.torch_grad(yhat, self.Y) / self.N

    def risk_gradient(self, yhat: torch.Tensor) -> torch.Tensor:
        """S = A*(V) = ∇L̂(u vᵀ), shape (S, m, n), with V = (1/N) ∂ℓ/∂ŷ (one pass over Gmat; dense G only)."""
        if self.Gmat is None:
            raise ValueError("risk_gradient forms S densely: use the gradient (block products) with block storage")
        V = self.residual_weights(yhat)
        n = self.Gmat.shape[1] // self.m
        return (V.reshape(V.shape[0], -1) @ self.Gmat).reshape(V.shape[0], self.m, n)

    def risk_gradient_norm(self, yhat: torch.Tensor) -> torch.Tensor:
        """‖∇L̂(u vᵀ)‖_F = ‖A*(V)‖_F (S,), from the diagonal blocks with block storage (S is zero elsewhere)."""
        if self.sensing is None:
            return torch.linalg.matrix_norm(self.risk_gradient(yhat))
        blocks = self.sensing.adjoint_blocks(self.residual_weights(yhat))
        return torch.sqrt(sum(torch.sum(St * St, dim=(1, 2)) for St in blocks))

    def gradient(self, Q: torch.Tensor, ev: Evaluation) -> torch.Tensor:
        """∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q, shape (S, m + n, r): ``theory.optimality.apply_M``
        batched over starts, reusing P Q from the evaluation; times the mask for per-matrix LoRA."""
        u, v = Q[:, :self.m], Q[:, self.m:]
        if self.sensing is not None:
            Sv, Stu = self.sensing.products(self.residual_weights(ev.yhat), u, v, ev.factors)
        else:
            S = self.risk_gradient(ev.yhat)
            Sv, Stu = S @ v, S.transpose(1, 2) @ u
        g = torch.cat([Sv, Stu], dim=1) + self.lam * Q
        g = g if ev.PQ is None else g + 2.0 * ev.PQ
        return g if self.mask is None else g * self.mask


def torch_lora_objective(G, f0, Y, loss: str | Loss, lam: float, Q: torch.Tensor, P=None) -> torch.Tensor:
    """Differentiable F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ (Thm 4.1).

    G (N, K, m, n), f0 (N, K), Y as in ``Instance`` (arrays or tensors, converted to Q's dtype and
    device), Q (m + n, r) → scalar, or (S, m + n, r) → (S,). P (m + n, m + n) or None (P = 0).
    """
    batched = Q.dim() == 3
    prob = TorchLoRAProblem.from_arrays(G, f0, Y, loss, lam, P, device=Q.device, dtype=Q.dtype)
    F = prob.evaluate(Q if batched else Q.unsqueeze(0)).F
    return F if batched else F[0]
