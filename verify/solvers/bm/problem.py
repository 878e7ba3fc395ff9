"""F_P and its gradient in torch for a batch of starts (MATH.md §2).

Batching: S starts are one tensor Q of shape (S, m + n, r) and share one copy of the sensing matrix
Gmat = G as (N·K, m·n). One evaluation and one gradient read Gmat once each:
  A(δ) = δ.reshape(S, m·n) @ Gmatᵀ                      (S, N·K)    forward pass, gives F_P
  S(δ) = (V.reshape(S, N·K) @ Gmat).reshape(S, m, n)    (S, m, n)   adjoint pass, gives ∇F_P
and the gradient is the explicit ∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q, the formula of
``theory.optimality.apply_M`` (cheaper than autograd). The loss enters only through its torch forms
(``theory.losses.Loss.torch_value``, ``torch_grad``, ``torch_targets``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch

from theory.losses import Loss, get_loss
from verify.instance import Instance


class Evaluation(NamedTuple):
    """F_P at a batch of points with the by-products the gradient reuses.

    F (S,) values; yhat (S, N, K) outputs f0 + A(u vᵀ); PQ (S, m + n, r) P Q, or None when P = 0.
    """

    F: torch.Tensor
    yhat: torch.Tensor
    PQ: torch.Tensor | None


@dataclass(frozen=True)
class TorchLoRAProblem:
    """F_P for a batch of factors on one device.

    Gmat (N·K, m·n) the sensing matrix; f0 (N, K); Y the loss's torch targets ((N, K) floats or (N,)
    int64 labels); loss the ``theory.losses.Loss``; lam λ; P (m + n, m + n) or None; m rows of δ.
    Points are Q of shape (S, m + n, r).
    """

    Gmat: torch.Tensor
    f0: torch.Tensor
    Y: torch.Tensor
    loss: Loss
    lam: float
    P: torch.Tensor | None
    m: int

    @classmethod
    def from_arrays(cls, G, f0, Y, loss: str | Loss, lam: float, P=None, *, device=None, dtype=torch.float64):
        """Build from numpy arrays or tensors; G (N, K, m, n) is copied at most once (not at all when it is
        already a float64 CPU array and the target is float64 on the CPU)."""
        lossf = get_loss(loss)
        G = torch.as_tensor(G, dtype=dtype, device=device)
        n_ex, k, m, n = G.shape
        Y = lossf.torch_targets(Y, dtype, device)
        P = None if P is None else torch.as_tensor(P, dtype=dtype, device=device)
        return cls(G.reshape(n_ex * k, m * n), torch.as_tensor(f0, dtype=dtype, device=device), Y, lossf,
                   float(lam), P, m)

    @classmethod
    def from_instance(cls, inst: Instance, device=None, dtype=torch.float64) -> "TorchLoRAProblem":
        return cls.from_arrays(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, inst.P, device=device, dtype=dtype)

    @property
    def N(self) -> int:
        return self.f0.shape[0]

    def outputs(self, Q: torch.Tensor) -> torch.Tensor:
        """ŷ = f0 + A(u vᵀ), shape (S, N, K), for Q of shape (S, m + n, r)."""
        u, v = Q[:, :self.m], Q[:, self.m:]
        delta = u @ v.transpose(1, 2)                                    # (S, m, n)
        A_delta = delta.reshape(Q.shape[0], -1) @ self.Gmat.T           # (S, N·K)
        return self.f0 + A_delta.reshape(Q.shape[0], *self.f0.shape)

    def evaluate(self, Q: torch.Tensor) -> Evaluation:
        """F_P(Q) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ for every start (one pass over Gmat)."""
        yhat = self.outputs(Q)
        F = self.loss.torch_value(yhat, self.Y).mean(dim=-1) + 0.5 * self.lam * torch.sum(Q * Q, dim=(1, 2))
        PQ = None
        if self.P is not None:
            PQ = self.P @ Q
            F = F + torch.sum(Q * PQ, dim=(1, 2))
        return Evaluation(F, yhat, PQ)

    def risk_gradient(self, yhat: torch.Tensor) -> torch.Tensor:
        """S = A*(V) = ∇L̂(u vᵀ), shape (S, m, n), with V = (1/N) ∂ℓ/∂ŷ (one pass over Gmat)."""
        V = self.loss.torch_grad(yhat, self.Y) / self.N                   # (S, N, K)
        n = self.Gmat.shape[1] // self.m
        return (V.reshape(V.shape[0], -1) @ self.Gmat).reshape(V.shape[0], self.m, n)

    def gradient(self, Q: torch.Tensor, ev: Evaluation) -> torch.Tensor:
        """∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q, shape (S, m + n, r): ``theory.optimality.apply_M``
        batched over starts, reusing P Q from the evaluation."""
        S = self.risk_gradient(ev.yhat)
        u, v = Q[:, :self.m], Q[:, self.m:]
        g = torch.cat([S @ v, S.transpose(1, 2) @ u], dim=1) + self.lam * Q
        return g if ev.PQ is None else g + 2.0 * ev.PQ


def torch_lora_objective(G, f0, Y, loss: str | Loss, lam: float, Q: torch.Tensor, P=None) -> torch.Tensor:
    """Differentiable F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ (Thm 4.1).

    G (N, K, m, n), f0 (N, K), Y as in ``Instance`` (arrays or tensors, converted to Q's dtype and
    device), Q (m + n, r) → scalar, or (S, m + n, r) → (S,). P (m + n, m + n) or None (P = 0).
    """
    batched = Q.dim() == 3
    prob = TorchLoRAProblem.from_arrays(G, f0, Y, loss, lam, P, device=Q.device, dtype=Q.dtype)
    F = prob.evaluate(Q if batched else Q.unsqueeze(0)).F
    return F if batched else F[0]
