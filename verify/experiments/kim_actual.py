"""Kim, Kim, Ryu's RSC / RSM ratios on the actual model's risk f(X) = (1/N) Σ_i ℓ(f_{W₀+X}(x_i), y_i) (no
linearization): the real classifier evaluated at the pretrained weights plus the diagonal blocks of X with
``torch.func.functional_call`` (``verify.models.PromptClassifier.outputs_after``: the layers before the first tuned
one run once, ``frozen_prefix``; the rest on examples grouped by length, ``models.pooled_by_length``). Gradients by
reverse mode, the Hessian quadratic form ∇²f(X)[E, E] by forward-over-reverse (``torch.func.jvp`` of
``torch.func.grad``), whose primal output is ∇f(X): one pass per Monte Carlo sample gives both ratios.
(Forward-over-forward — nested ``jvp`` — is not used: torch's second-order forward rule of ``layer_norm`` is
wrong, pytorch/pytorch#196700, open; in torch 2.13.0 here it gave −34.59 against −42.68 by forward-over-reverse,
central differences and a hand-written layer norm on a 5 × 7 float64 example, and 8.669e-4 against 8.250e-4
(5 % off) on MiniLM at X = 0.)
Samples are batched with ``torch.func.vmap`` (:data:`ACTUAL_BATCH` per pass) on the device chosen (CUDA when
present with ``auto``). Same sampling and same sides as ``verify.experiments.kim_constants``: min RSC ratio ≥ α,
max RSM ratio ≤ β."""
from __future__ import annotations

import numpy as np
import torch

from verify import entk
from verify.device import device_for
from verify.experiments.kim_constants import ConstantEstimates, restricted_samples, rsm_direction

#: Monte Carlo samples per vmapped forward-over-reverse pass (the batched ratios equal the one-at-a-time ones to
#: rounding, tested); MiniLM's last layer, float64, 2-core CPU: 0.36 s a sample one at a time, 0.27 s batched by 8
#: (2026-12-03)
ACTUAL_BATCH = 8


class ActualRisk:
    """f(X) of the real task's classifier on its training texts, X (m, n) block-diagonal over the tuned weights,
    evaluated on ``device`` ("auto": CUDA when present; a copy of the encoder when it lives elsewhere)."""

    def __init__(self, task, device: str = "cpu"):
        clf = task.classifier.on_device(device_for(device))
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

    def stacked(self, Ms) -> tuple[torch.Tensor, ...]:
        """The blocks of S matrices (m, n), each stacked: (S, m_t, n_t) per tuned weight."""
        return tuple(torch.stack(c) for c in zip(*(self.blocks(M) for M in Ms)))

    def gradients_and_hessian_forms(self, Xs, Es) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """For S points X_s and directions E_s (m, n): ∇f(X_s) as stacked blocks (S, m_t, n_t) and
        ∇²f(X_s)[E_s, E_s] (S,), from one vmapped forward-over-reverse pass (the jvp's primal output is the
        gradient)."""
        es = self.stacked(Es)
        g, hv = torch.func.vmap(lambda x, e: torch.func.jvp(torch.func.grad(self.value), (x,), (e,)))(
            self.stacked(Xs), es)
        return g, sum(torch.sum(h * d, dim=(1, 2)) for h, d in zip(hv, es))

    def gradient_and_hessian_form(self, X: np.ndarray, E: np.ndarray) -> tuple[tuple[torch.Tensor, ...], float]:
        """(∇f(X) as blocks, ∇²f(X)[E, E]): :meth:`gradients_and_hessian_forms` of one point."""
        g, forms = self.gradients_and_hessian_forms([X], [E])
        return tuple(b[0] for b in g), float(forms[0])

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
                     rng: np.random.Generator, blocks=None, batch: int = ACTUAL_BATCH) -> ConstantEstimates:
    """``count`` sampled RSC and RSM ratios of the actual risk about X* at rank r: per sample, ∇f(X) (RSC) and
    ∇²f(X)[E, E] (RSM) from the forward-over-reverse pass, ``batch`` samples per pass. The generator is drawn
    as one sample at a time would draw it (the point, then its direction)."""
    g_star = torch.func.grad(risk.value)(risk.blocks(X_star))
    points = restricted_samples(rng, X_star, r, D, count, blocks)
    rsc, rsm, dist = [], [], []
    while len(dist) < count:
        chunk = []
        for _ in range(min(batch, count - len(dist))):
            sample, d2 = next(points)
            chunk.append((sample, rsm_direction(rng, sample), d2))
        Xs = [s.dense() for s, _, _ in chunk]
        g, forms = risk.gradients_and_hessian_forms(Xs, [E.dense() for _, E, _ in chunk])
        deltas = risk.stacked([X - X_star for X in Xs])
        along = sum(torch.sum((b - b_star) * d, dim=(1, 2)) for b, b_star, d in zip(g, g_star, deltas))
        d2 = np.array([d for _, _, d in chunk])
        rsc.extend(along.cpu().numpy() / d2)
        rsm.extend(forms.cpu().numpy() / np.array([E.norm_squared() for _, E, _ in chunk]))
        dist.extend(np.sqrt(d2))
    return ConstantEstimates(r, D, np.array(rsc), np.array(rsm), np.array(dist))
