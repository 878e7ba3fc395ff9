"""Empirical NTK of a pretrained network: the sensing tensor G and offsets f0 of MATH.md §1.

Tuned weights W_1, ..., W_T are 2-D parameters, W_t of shape (m_t, n_t); the network has K outputs
f(x) ∈ R^K. At the pretrained weights W⁰,

    G_t[i, j] = ∂f_j(x_i) / ∂W_t   (m_t, n_t),        f0[i] = f(x_i; W⁰)   (K,).

The update δ (m, n), m = Σ m_t, n = Σ n_t, is block-diagonal: block t (rows of W_t × columns of
W_t, in the order of ``weight_names``) is added to W_t. G (N, K, m, n) holds G_t in block t and
exact zeros elsewhere, so ⟨G[i, j], δ⟩ = Σ_t ⟨G_t[i, j], δ_t⟩ is the first-order change of f_j(x_i),
and off-diagonal blocks of δ reach no weight (neither in G nor in :func:`linearization_error`).

:func:`empirical_ntk_blocks` stores only the T blocks G_t (``theory.sensing.BlockSensing``), each dense or as
its per-token factors (per-sample gradient hooks), never the zeros; ``extract_instance(storage=...)`` picks.

Gradients of the dense G come from ``torch.func``: ``vmap`` over examples of ``jacrev`` over the K outputs of a
``functional_call``, ``chunk`` examples at a time so that memory stays bounded. The model must be
in eval mode (dropout would make f random). An ``outputs(params, batch) -> (B, K)`` function
receives ``params``: {name: tensor} for the tuned weights (pass it to ``functional_call``) and
``batch``: {key: (B, ...) tensor}.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.func import jacrev, jvp, vmap

from theory.linearized_model import predictions
from theory.sensing import BlockSensing, DenseBlock, FactoredBlock
from verify.instance import Instance, loss_named
from verify.models import PromptClassifier

Batch = dict[str, torch.Tensor]
OutputsFn = Callable[[dict[str, torch.Tensor], Batch], torch.Tensor]

#: examples per vmap call: per-call overhead dominates small chunks; 32 took ~2.5 s and ~1.1 GB peak for
#: MiniLM, N = 32, on 2 CPU cores (tests/benchmarks/test_bench_entk.py), chunk 8 ~5 s
DEFAULT_CHUNK = 32


class WeightSelectionError(ValueError):
    """A weight pattern matches no parameter, or matches a parameter that is not 2-D."""


def select_weights(model: nn.Module, patterns: list[str]) -> list[str]:
    """Parameter names matching exact names or glob patterns, in the model's parameter order.

    Raises WeightSelectionError naming every pattern that matches nothing and every matched
    parameter that is not a 2-D matrix.
    """
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    unmatched = [pat for pat in patterns if not fnmatch.filter(shapes, pat)]
    if unmatched:
        raise WeightSelectionError(f"no parameter matches {unmatched}; names look like {list(shapes)[:3]}")
    names = [n for n in shapes if any(fnmatch.fnmatchcase(n, pat) for pat in patterns)]
    not_2d = {n: shapes[n] for n in names if len(shapes[n]) != 2}
    if not_2d:
        raise WeightSelectionError(f"tuned weights must be 2-D matrices; these are not: {not_2d}")
    return names


@dataclass(frozen=True)
class BlockLayout:
    """Where each tuned weight W_t (m_t, n_t) sits in the block-diagonal δ (m, n)."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, int], ...]

    @classmethod
    def of(cls, model: nn.Module, weight_names: list[str]) -> "BlockLayout":
        names = select_weights(model, list(weight_names))
        if len(names) != len(weight_names):
            raise WeightSelectionError(f"weight names must be exact and distinct, got {list(weight_names)}")
        return cls(tuple(weight_names), tuple(tuple(model.get_parameter(n).shape) for n in weight_names))

    @property
    def m(self) -> int:
        return sum(s[0] for s in self.shapes)

    @property
    def n(self) -> int:
        return sum(s[1] for s in self.shapes)

    def slices(self) -> list[tuple[slice, slice]]:
        """(rows, columns) of block t in δ, for t = 1..T."""
        r = np.cumsum([0] + [s[0] for s in self.shapes])
        c = np.cumsum([0] + [s[1] for s in self.shapes])
        return [(slice(r[t], r[t + 1]), slice(c[t], c[t + 1])) for t in range(len(self.shapes))]

    def split(self, delta: np.ndarray) -> list[np.ndarray]:
        """Diagonal blocks δ_t (m_t, n_t) of δ (m, n)."""
        if delta.shape != (self.m, self.n):
            raise ValueError(f"δ must have shape (m, n) = ({self.m}, {self.n}), got {delta.shape}")
        return [delta[rows, cols] for rows, cols in self.slices()]


def _pretrained(model: nn.Module, layout: BlockLayout) -> dict[str, torch.Tensor]:
    if model.training:
        raise ValueError("the model is in training mode (dropout makes f random): call model.eval()")
    return {name: model.get_parameter(name).detach() for name in layout.names}


def _batch_size(batch: Batch) -> int:
    return next(iter(batch.values())).shape[0]


def _chunks(batch: Batch, chunk: int) -> Iterator[tuple[slice, Batch]]:
    """(rows, sub-batch) for consecutive runs of ``chunk`` examples."""
    if chunk < 1:
        raise ValueError(f"chunk must be ≥ 1, got {chunk}")
    size = _batch_size(batch)
    for start in range(0, size, chunk):
        rows = slice(start, min(start + chunk, size))
        yield rows, {k: v[rows] for k, v in batch.items()}


def empirical_ntk(model: nn.Module, outputs: OutputsFn, weight_names: list[str], batch: Batch, *,
                  chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Sensing tensor G (N, K, m, n) and offsets f0 (N, K), both float64, at the pretrained weights.

    ``batch``: {key: (N, ...) tensor}; ``outputs(params, batch) -> (B, K)``; ``weight_names``: exact
    names of the T tuned 2-D parameters, in block order. Memory beyond G grows with ``chunk``, not N.
    """
    layout = BlockLayout.of(model, weight_names)
    params = _pretrained(model, layout)
    size = _batch_size(batch)

    def one_example(p, x):
        y = outputs(p, {k: v.unsqueeze(0) for k, v in x.items()})[0]  # (K,)
        return y, y

    per_example = vmap(jacrev(one_example, has_aux=True), in_dims=(None, 0))
    G = f0 = None
    for rows, sub in _chunks(batch, chunk):
        jac, y = per_example(params, sub)  # jac[name]: (C, K, m_t, n_t); y: (C, K)
        if G is None:  # K is known once the first chunk is evaluated
            G, f0 = np.zeros((size, y.shape[1], layout.m, layout.n)), np.empty((size, y.shape[1]))
        for name, (r, c) in zip(layout.names, layout.slices()):
            G[rows, :, r, c] = jac[name].cpu().double().numpy()
        f0[rows] = y.cpu().double().numpy()
    return G, f0


#: storage choices of :func:`empirical_ntk_blocks` / :func:`extract_instance`
STORAGES = ("dense", "block", "factored", "auto")


def _linear_modules(model: nn.Module, layout: BlockLayout) -> list[nn.Module]:
    """The ``nn.Linear`` module owning each tuned weight (``<module>.weight``), else WeightSelectionError."""
    mods = []
    for name in layout.names:
        mod = model.get_submodule(name.removesuffix(".weight")) if name.endswith(".weight") else None
        if not isinstance(mod, nn.Linear):
            raise WeightSelectionError(f"factored or block extraction needs the weight of an nn.Linear, got {name!r}")
        mods.append(mod)
    return mods


def empirical_ntk_blocks(model: nn.Module, outputs: OutputsFn, weight_names: list[str], batch: Batch, *,
                         chunk: int = DEFAULT_CHUNK, storage: str = "auto") -> tuple[BlockSensing, np.ndarray]:
    """G as a ``theory.sensing.BlockSensing`` (one block per tuned weight, no zeros stored) and f0 (N, K).

    Per-sample gradient factors in the style of opacus: a forward hook on each tuned ``nn.Linear`` keeps its
    input x (C, L, n_t) and output y (C, L, m_t); one backward pass per output j gives g_j = ∂(Σ_i f_j(x_i))/∂y,
    and since examples do not interact (eval mode), ∂f_j(x_i)/∂W_t = Σ_s g_j[i, s] x[i, s]ᵀ: the factored block
    has one token row per position s of example i, left[s, j] = g_j[i, s] (m_t), right[s] = x[i, s] (n_t).
    Positions whose output gradients are exactly zero for every j (padding: the attention mask gives them zero
    weight) are dropped, which changes no G_t[i, j], so each example keeps only its own tokens. ``storage``:
    "factored" keeps the factors, "block" stores each G_t densely, "auto" keeps the factors of block t when
    they take fewer numbers than G_t (T·(K·m_t + n_t) < N·K·m_t·n_t, T the tokens kept). Memory beyond the
    result grows with ``chunk``. "dense" is not a block storage (use :func:`empirical_ntk`).
    """
    if storage not in ("block", "factored", "auto"):
        raise ValueError(f"storage must be 'block', 'factored' or 'auto', got {storage!r}")
    layout = BlockLayout.of(model, weight_names)
    params = {k: w.clone().requires_grad_(True) for k, w in _pretrained(model, layout).items()}
    modules = _linear_modules(model, layout)
    seen: dict[str, list] = {name: [] for name in layout.names}
    hooks = [mod.register_forward_hook(lambda _m, inp, out, name=name: seen[name].append((inp[0], out)))
             for name, mod in zip(layout.names, modules)]
    size = _batch_size(batch)
    parts: dict[str, list[FactoredBlock]] = {name: [] for name in layout.names}
    f0 = None
    try:
        for rows, sub in _chunks(batch, chunk):
            for v in seen.values():
                v.clear()
            with torch.enable_grad():
                y = outputs(params, sub)  # (C, K)
                if any(len(v) != 1 for v in seen.values()):
                    raise WeightSelectionError("each tuned nn.Linear must run exactly once per forward pass")
                outs = [seen[name][0][1] for name in layout.names]
                K = y.shape[1]
                if f0 is None:
                    f0 = np.empty((size, K))
                grads = [torch.autograd.grad(y[:, j].sum(), outs, retain_graph=j < K - 1) for j in range(K)]
            for t, name in enumerate(layout.names):
                g = torch.stack([gj[t] for gj in grads], dim=1).detach().cpu().double().numpy()  # (C, K, L, m_t)
                x = seen[name][0][0].detach().cpu().double().numpy()                              # (C, L, n_t)
                parts[name].append(FactoredBlock.padded(g, x).without_zero_tokens())
            f0[rows] = y.detach().cpu().double().numpy()
    finally:
        for h in hooks:
            h.remove()
    blocks = []
    for name in layout.names:
        fb = FactoredBlock.concatenate(parts[name])
        mt, nt = fb.shape
        keep = storage == "factored" or (storage == "auto" and fb.tokens * (fb.K * mt + nt) < size * fb.K * mt * nt)
        blocks.append(fb if keep else DenseBlock(fb.dense_rows(slice(None))))
    return BlockSensing(tuple(blocks)), f0


def _params_and_tangent(model, weight_names, delta):
    """The pretrained tuned weights {name: W⁰_t} and the blocks {name: δ_t} of ``delta`` (m, n), as tensors."""
    layout = BlockLayout.of(model, weight_names)
    params = _pretrained(model, layout)
    ref = next(iter(params.values()))
    tangent = {name: torch.as_tensor(d, dtype=ref.dtype, device=ref.device)
               for name, d in zip(layout.names, layout.split(np.asarray(delta)))}
    return params, tangent


def _taylor_terms(model, outputs, weight_names, batch, delta, chunk):
    """f(W⁰ + δ), f(W⁰) and ⟨G, δ⟩, each (N, K) float64, with ⟨G, δ⟩ from a Jacobian-vector product."""
    params, tangent = _params_and_tangent(model, weight_names, delta)
    moved = {name: params[name] + tangent[name] for name in params}
    terms = []
    with torch.no_grad():
        for _, sub in _chunks(batch, chunk):
            f_base, f_dir = jvp(lambda p: outputs(p, sub), (params,), (tangent,))
            terms.append(torch.stack([outputs(moved, sub), f_base, f_dir]).cpu().double().numpy())
    f_moved, f_base, f_dir = np.concatenate(terms, axis=1)
    return f_moved, f_base, f_dir


def linearization_error(model: nn.Module, outputs: OutputsFn, weight_names: list[str], batch: Batch,
                        delta: np.ndarray, *, chunk: int = DEFAULT_CHUNK) -> float:
    """‖f(W⁰ + δ) − (f0 + ⟨G, δ⟩)‖_F / ‖⟨G, δ⟩‖_F over the (N, K) outputs (the NTK-regime check).

    ``delta`` (m, n) is block-diagonal in the layout of ``weight_names``; block t is added to W_t.
    ⟨G, δ⟩ is a Jacobian-vector product (G is not needed). 0 when both norms vanish, inf when only
    the denominator does. For very small δ use a float64 model, else rounding dominates.
    """
    f_moved, f_base, f_dir = _taylor_terms(model, outputs, weight_names, batch, delta, chunk)
    num, den = np.linalg.norm(f_moved - f_base - f_dir), np.linalg.norm(f_dir)
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return float(num / den)


def prediction_pair(model: nn.Module, outputs: OutputsFn, weight_names: list[str], batch: Batch, delta: np.ndarray,
                    *, chunk: int = DEFAULT_CHUNK) -> tuple[np.ndarray, np.ndarray, float]:
    """(argmax_k f(W⁰ + δ)_k (N,), the linearized argmax_k (f0 + ⟨G, δ⟩)_k (N,), relative output error
    ‖f(W⁰ + δ) − (f0 + ⟨G, δ⟩)‖_F / ‖⟨G, δ⟩‖_F, 0 when ⟨G, δ⟩ = 0) on ``batch``: per-example predictions of the
    actual and the linearized model at the same δ (m, n), for paired comparisons."""
    f_moved, f_base, f_dir = _taylor_terms(model, outputs, weight_names, batch, delta, chunk)
    den = np.linalg.norm(f_dir)
    err = float(np.linalg.norm(f_moved - f_base - f_dir) / den) if den > 0 else 0.0
    return f_moved.argmax(axis=1), (f_base + f_dir).argmax(axis=1), err


# text classification instances -----------------------------------------------------------------------
def extract_instance(classifier: PromptClassifier, texts: list[str], labels: list[int], weight_names: list[str],
                     *, loss: str = "cross_entropy", lam: float = 0.01, chunk: int = DEFAULT_CHUNK,
                     name: str = "entk", provenance: dict | None = None, storage: str = "dense") -> Instance:
    """The linearized fine-tuning instance of ``classifier`` on labelled texts.

    ``storage``: "dense" (G (N, K, m, n) by ``torch.func``, :func:`empirical_ntk`), or "block", "factored",
    "auto" (a ``BlockSensing`` from per-sample gradient hooks, :func:`empirical_ntk_blocks`).

    Y is the loss's ``targets_from_labels``: the (N,) label vector for cross-entropy, the (N, K) one-hot
    labels for the squared loss.
    Provenance: the classifier's (model, model_sha256, label descriptions, scale, dtype), the
    tuned weight names and shapes, N, and the entries of ``provenance``.
    """
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {STORAGES}, got {storage!r}")
    extract = empirical_ntk if storage == "dense" else partial(empirical_ntk_blocks, storage=storage)
    G, f0 = extract(classifier.model, classifier.outputs, weight_names, classifier.encode(texts), chunk=chunk)
    y = np.asarray(labels, dtype=np.int64)
    Y = loss_named(loss).targets_from_labels(y, G.shape[1])
    shapes = [list(classifier.model.get_parameter(w).shape) for w in weight_names]
    prov = dict(classifier.provenance, weight_names=list(weight_names), weight_shapes=shapes, n=len(texts),
                storage=storage, **(provenance or {}))
    return Instance(G, f0, Y, loss, lam, name=name, provenance=prov)


def test_accuracy(instance: Instance, delta: np.ndarray) -> float:
    """Fraction of the instance's examples whose linearized prediction argmax_k (f0 + ⟨G, δ⟩)_k is the label.

    Pass the instance of held-out examples (``extract_instance`` on the test split) and a δ (m, n)
    fitted on the training instance; δ = 0 gives the pretrained (zero-shot) accuracy.
    """
    labels = instance.Y if instance.Y.ndim == 1 else instance.Y.argmax(axis=1)
    return float(np.mean(predictions(instance.G, instance.f0, delta).argmax(axis=1) == labels))


test_accuracy.__test__ = False  # not a pytest test despite its name
