"""Kim, Kim, Ryu's RSC / RSM ratios on the actual model's risk f(X) = (1/N) Σ_i ℓ(f_{W₀+X}(x_i), y_i) (no
linearization): the real classifier evaluated at the pretrained weights plus the diagonal blocks of X with
``torch.func.functional_call`` (``verify.models.PromptClassifier.outputs_after``: the layers before the first tuned
one run once, ``frozen_prefix``; the rest on examples grouped by length, ``models.pooled_by_length``). Gradients by
reverse mode, the Hessian quadratic form ∇²f(X)[E, E] by forward-over-reverse (``torch.func.jvp`` of
``torch.func.grad``), whose primal output is ∇f(X): one pass per Monte Carlo sample gives both ratios.
(Forward-over-forward — nested ``jvp`` — disagreed with central differences by 4 % on MiniLM here, fwd-over-rev
by 2e-7 relative: not used.)
Same sampling and same sides as ``verify.experiments.kim_constants``: min RSC ratio ≥ α, max RSM ratio ≤ β."""
from __future__ import annotations

import numpy as np
import torch

from verify import entk
from verify.experiments.kim_constants import ConstantEstimates, restricted_samples, rsm_direction


class ActualRisk:
    """f(X) of the real task's classifier on its training texts, X (m, n) block-diagonal over the tuned weights."""

    def __init__(self, task):
        clf = task.classifier
        self.layout = entk.BlockLayout.of(clf.model, task.weight_names)
        self.params = {name: clf.model.get_parameter(name).detach() for name in self.layout.names}
        self.batch = clf.encode(task.train_texts)
        self.lossf = task.train.loss_fn
        ref = next(iter(self.params.values()))
        self.Y = self.lossf.torch_targets(task.train.Y, ref.dtype, ref.device)
        self.classifier = clf
        self.prefix = clf.frozen_prefix(self.batch, self.layout.names)  # layers before the tuned ones run once
        self.dtype, self.device = ref.dtype, ref.device

    def blocks(self, X: np.ndarray) -> tuple[torch.Tensor, ...]:
        return tuple(torch.as_tensor(b, dtype=self.dtype, device=self.device) for b in self.layout.split(X))

    def value(self, blocks) -> torch.Tensor:
        moved = {name: self.params[name] + b for name, b in zip(self.layout.names, blocks)}
        clf = self.classifier
        f = clf.outputs(moved, self.batch) if self.prefix is None else clf.outputs_after(moved, self.prefix)
        return torch.mean(self.lossf.torch_value(f, self.Y))

    def directional(self, X: np.ndarray, Delta: np.ndarray) -> float:
        """⟨∇f(X), Δ⟩."""
        return self.dot(torch.func.grad(self.value)(self.blocks(X)), Delta)

    def gradient_and_hessian_form(self, X: np.ndarray, E: np.ndarray) -> tuple[tuple[torch.Tensor, ...], float]:
        """(∇f(X) as blocks, ∇²f(X)[E, E]) from one forward-over-reverse pass (the jvp's primal output is the
        gradient)."""
        e = self.blocks(E)
        g, hv = torch.func.jvp(torch.func.grad(self.value), (self.blocks(X),), (e,))
        return g, float(sum(torch.sum(h * d) for h, d in zip(hv, e)))

    def hessian_form(self, X: np.ndarray, E: np.ndarray) -> float:
        """∇²f(X)[E, E]."""
        return self.gradient_and_hessian_form(X, E)[1]

    def dot(self, blocks, Delta: np.ndarray) -> float:
        """⟨blocks, Δ⟩ over the tuned blocks of Δ (m, n)."""
        return float(sum(torch.sum(b * d) for b, d in zip(blocks, self.blocks(Delta))))

    def rsc_ratio(self, X: np.ndarray, X_star: np.ndarray) -> float:
        """(⟨∇f(X) − ∇f(X*), X − X*⟩) / ‖X − X*‖²_F (the Frobenius norm over the whole (m, n) matrix)."""
        Delta = X - X_star
        return (self.directional(X, Delta) - self.directional(X_star, Delta)) / float(np.sum(Delta * Delta))


def actual_estimates(risk: ActualRisk, X_star: np.ndarray, r: int, D: float, count: int,
                     rng: np.random.Generator, blocks=None) -> ConstantEstimates:
    """``count`` sampled RSC and RSM ratios of the actual risk about X* at rank r: per sample one forward-over-
    reverse pass gives ∇f(X) (RSC) and ∇²f(X)[E, E] (RSM)."""
    g_star = torch.func.grad(risk.value)(risk.blocks(X_star))
    rsc, rsm, dist = [], [], []
    for sample, d2 in restricted_samples(rng, X_star, r, D, count, blocks):
        E = rsm_direction(rng, sample)
        X = sample.dense()
        g, hE = risk.gradient_and_hessian_form(X, E.dense())
        Delta = X - X_star
        rsc.append((risk.dot(g, Delta) - risk.dot(g_star, Delta)) / d2)
        rsm.append(hE / E.norm_squared())
        dist.append(np.sqrt(d2))
    return ConstantEstimates(r, D, np.array(rsc), np.array(rsm), np.array(dist))
