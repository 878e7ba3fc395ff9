"""Second-order stationarity of the actual LoRA objective at trained peft adapters (the actual-model rows of
``entk_kim_dichotomy``): F(θ) = mean CE(f_{W₀ + s·B A}(x_i), y_i) + (λ s / 2) Σ_t (‖A_t‖² + ‖B_t‖²)
(``verify.actual_training.objective``), θ (d,) every adapter entry, d = Σ_t r (in_t + out_t).

- ∇F by reverse mode; H v = ∇²F(θ) v by double backward (``torch.autograd.grad`` with ``create_graph``), one
  forward and two backward passes of the tuned layers per product (the layers before them run once).
- λ_min(H) and ‖H‖ from ``verify.sosp.budgeted_extremes`` (lobpcg within a budget of products): λ_min is an upper
  estimate — a negative value proves negative curvature (the point is a saddle), a non-negative one is evidence,
  never proof; at weight decay λ > 0 the rotations (A, B) → (R A, B Rᵀ) leave F unchanged, so H has about
  r(r − 1)/2 zero eigenvalues per tuned matrix at a stationary point and λ_min ≈ 0 is the best a SOSP can show.
- The SOSP test is ``verify.sosp``'s: ‖∇F‖ ≤ SOSP_GRAD_RTOL·max(1, ‖θ‖)·max(1, |F|), λ_min ≥ −SOSP_HESS_RTOL·‖H‖.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg
import torch

from verify import actual_training as at
from verify.sosp import budgeted_extremes
from verify.tolerances import SOSP_GRAD_RTOL, SOSP_HESS_RTOL


#: the label of a point that passes the test (stationary, no negative curvature found within the budget)
SOSP_LABEL = "SOSP (no negative curvature found)"


@dataclass(frozen=True)
class ActualSOSP:
    """The test's numbers at one trained point: objective F, ‖∇F‖, the gradient threshold, λ_min's upper estimate
    and its residual ‖Hw − ρw‖, the ‖H‖ estimate, Hessian-vector products spent, and the two verdicts."""

    objective: float
    grad_norm: float
    grad_tol: float
    lambda_min_upper: float
    residual: float
    hessian_norm: float
    products: int

    @property
    def stationary(self) -> bool:
        return self.grad_norm <= self.grad_tol

    @property
    def negative_curvature(self) -> bool:
        """Proven: a unit direction with H[w, w] below −SOSP_HESS_RTOL·‖H‖."""
        return self.lambda_min_upper < -SOSP_HESS_RTOL * self.hessian_norm

    @property
    def label(self) -> str:
        """"not stationary", "saddle" (stationary, negative curvature proven) or "SOSP (no negative curvature
        found)"."""
        if not self.stationary:
            return "not stationary"
        return "saddle" if self.negative_curvature else SOSP_LABEL


def sosp_test(lora: at.LoraModel, batch: dict[str, torch.Tensor], labels: torch.Tensor, max_products: int,
              rng: np.random.Generator) -> ActualSOSP:
    """The SOSP test of the module docstring at the adapters' current values (not changed)."""
    params = [p for pair in lora.adapters() for p in pair]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    prepared = lora.prepare(batch)
    count = [0]

    def hvp(v: np.ndarray) -> np.ndarray:
        count[0] += 1
        parts = torch.split(torch.as_tensor(np.asarray(v).reshape(-1), dtype=params[0].dtype, device=params[0].device),
                            sizes)
        with at.deterministic():
            g = torch.autograd.grad(at.objective(lora, prepared, labels), params, create_graph=True)
            hv = torch.autograd.grad(sum(torch.sum(gi * vi.reshape(s)) for gi, vi, s in zip(g, parts, shapes)),
                                     params)
        return torch.cat([h.reshape(-1) for h in hv]).detach().cpu().numpy().astype(float)

    d = sum(sizes)
    op = scipy.sparse.linalg.LinearOperator((d, d), matvec=hvp, dtype=float)
    with at.deterministic():
        obj = at.objective(lora, prepared, labels)
        grads = torch.autograd.grad(obj, params)
    gnorm = float(torch.sqrt(sum(torch.sum(g * g) for g in grads)))
    theta = float(torch.sqrt(sum(torch.sum(p.detach() ** 2) for p in params)))
    low, hnorm = budgeted_extremes(op, rng, max_products)
    obj = float(obj.detach())
    return ActualSOSP(obj, gnorm, SOSP_GRAD_RTOL * max(1.0, theta) * max(1.0, abs(obj)), low.value,
                      low.residual, hnorm, count[0])
