"""Actual LoRA training of the real network (not its linearization), with ``peft`` adapters.

What is trained
---------------
The prompt classifier of :mod:`verify.models` (f_k = s · cos(e(x), c_k), constant label embeddings c_k) whose
first-order model at the pretrained weights W⁰ is the eNTK instance of :mod:`verify.entk`. ``peft`` LoRA
adapters (``LoraConfig(r, lora_alpha, target_modules)``, ``inject_adapter_in_model``) are attached to the tuned
linear layers (default: the last layer's query and value) of a *copy* of the encoder; only the adapters train.

The δ convention (exact)
------------------------
peft's ``lora.Linear`` computes y = W x + s · B (A x), A (r, in) = ``lora_A.weight``, B (out, r) =
``lora_B.weight``, s = lora_alpha / r. So the update of W_t (out_t, in_t) — stored as (out, in), the layout of
the parameter and of the instance's block G_t[i, j] = ∂f_j(x_i)/∂W_t — is

    δ_t = s · B_t A_t = u_t v_tᵀ,   u_t = √s · B_t (out_t, r),   v_t = √s · A_tᵀ (in_t, r).

The instance's δ (m, n) is block-diagonal, block t at rows Σ_{t'<t} out_t' and columns Σ_{t'<t} in_t' (the order
of ``weight_names``; :class:`verify.entk.BlockLayout`). With T matrices of per-matrix rank r (what peft does),
δ = u vᵀ with block-structured factors u (m, T r), v (n, T r): columns t r … (t+1) r − 1 of u and v are u_t and
v_t in block t's rows and zero elsewhere (:func:`factors_to_point`). ``lora-verify certify`` reads this point.

Weight decay λ in the δ convention: the penalty (λ/2)(‖u‖_F² + ‖v‖_F²) = (λ s / 2)(‖A‖_F² + ‖B‖_F²), so with
balanced factors it is λ‖δ‖_* (Lemma 2.2) and the trained objective is the paper's L̂(δ) + λ‖δ‖_* on the actual
network; s = 1 (lora_alpha = r, the default here) makes it plain weight decay λ on A and B.

Loss: cross-entropy, mean over the examples (theory/losses.py, ``CrossEntropyLoss``), as in the instance.
Optimizer: full-batch gradient descent (``torch.optim.SGD``, no momentum) or minibatch SGD (batches of a fixed
size, a fresh permutation per epoch from a ``torch.Generator``). Deterministic on the CPU for a seed:
``torch.use_deterministic_algorithms(True)`` during training (restored after) and every random draw from a
generator seeded by the caller; peft's own initialisations use torch's global generator, so they run inside
``torch.random.fork_rng`` seeded from the same seed (global state is restored).
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from verify import entk, models
from verify.tolerances import POLISH_GRAD_TOL

#: initialisations: "zero" = peft's default (A kaiming-uniform, B = 0: δ = 0, the LoRA init), "peft-gaussian" =
#: peft's "gaussian" (A ~ N(0, 1/r²), B = 0), "peft-random" = peft's ``init_lora_weights=False`` (A and B keep
#: nn.Linear's kaiming-uniform init: δ ≠ 0), "gaussian:SCALE" (A and B with i.i.d. N(0, SCALE²) entries),
#: "file:POINT.npz" (explicit factors in the project's convention)
PEFT_INITS = {"zero": True, "peft-gaussian": "gaussian", "peft-random": False}
ADAPTER = "default"


class TrainingError(ValueError):
    """Bad training settings or initial factors; the message names the quantity."""


@dataclass(frozen=True)
class InitSpec:
    """A parsed ``--init``: ``kind`` in PEFT_INITS, "gaussian" (with ``scale``) or "file" (with ``path``)."""

    kind: str
    scale: float = 0.0
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> "InitSpec":
        if text in PEFT_INITS:
            return cls(text)
        kind, _, arg = text.partition(":")
        if kind == "gaussian":
            try:
                scale = float(arg)
            except ValueError:
                raise TrainingError(f"init gaussian:SCALE needs a number SCALE > 0, got {arg!r}") from None
            if not (np.isfinite(scale) and scale > 0):
                raise TrainingError(f"init gaussian:SCALE needs a finite SCALE > 0, got {arg!r}")
            return cls("gaussian", scale=scale)
        if kind == "file" and arg:
            return cls("file", path=Path(arg))
        raise TrainingError(f"unknown init {text!r}: expected one of {sorted(PEFT_INITS)}, gaussian:SCALE or "
                            "file:POINT.npz")


def peft_default_gaussian(classifier: models.PromptClassifier, weight_names: list[str], multiple: float) -> str:
    """The ``--init`` text "gaussian:SCALE" with SCALE = ``multiple`` × PEFT's default std of A, 1/√(3·fan_in)
    (kaiming-uniform with a = √5), fan_in the input size of the first tuned weight."""
    fan_in = classifier.model.get_parameter(weight_names[0]).shape[1]
    return f"gaussian:{multiple / np.sqrt(3 * fan_in):.4g}"


@dataclass(frozen=True)
class TrainConfig:
    """rank r per tuned matrix, λ, steps, step size η, batch (None = full batch), lora_alpha (None = r)."""

    rank: int
    lam: float
    steps: int
    lr: float
    batch: int | None = None
    alpha: float | None = None
    init: InitSpec = field(default_factory=lambda: InitSpec("zero"))
    seed: int = 0

    def __post_init__(self):
        for name, value, ok in (("rank", self.rank, self.rank >= 1), ("steps", self.steps, self.steps >= 1),
                                ("lam", self.lam, np.isfinite(self.lam) and self.lam >= 0),
                                ("lr", self.lr, np.isfinite(self.lr) and self.lr > 0),
                                ("batch", self.batch, self.batch is None or self.batch >= 1),
                                ("alpha", self.alpha, self.alpha is None or (np.isfinite(self.alpha) and self.alpha > 0))):
            if not ok:
                raise TrainingError(f"{name} out of range: {value!r}")

    @property
    def scaling(self) -> float:
        """s = lora_alpha / r."""
        return (self.rank if self.alpha is None else self.alpha) / self.rank


@dataclass
class LoraModel:
    """A copy of the classifier's encoder with peft adapters on ``layout.names`` (and the classifier's c_k, s)."""

    classifier: models.PromptClassifier
    model: nn.Module
    layout: entk.BlockLayout
    config: TrainConfig

    def _module(self, weight_name: str):
        return self.model.get_submodule(weight_name.removesuffix(".weight"))

    def adapters(self) -> list[tuple[nn.Parameter, nn.Parameter]]:
        """(A (r, in), B (out, r)) per tuned matrix, in block order."""
        mods = [self._module(w) for w in self.layout.names]
        return [(m.lora_A[ADAPTER].weight, m.lora_B[ADAPTER].weight) for m in mods]

    def first_tuned_layer(self) -> int | None:
        """Index k of the first encoder layer holding a tuned weight (``models.first_tuned_layer``)."""
        return models.first_tuned_layer(self.layout.names)

    def prepare(self, batch: dict[str, torch.Tensor]) -> "Prepared":
        """The frozen part of the forward pass, computed once: the hidden states (B, L, d) entering layer k (the
        first tuned one) of the pretrained encoder (``PromptClassifier.frozen_prefix``) — exact, since nothing
        before layer k changes in training."""
        prefix = self.classifier.frozen_prefix(batch, self.layout.names)
        return Prepared(batch, None if prefix is None else prefix.hidden, batch["attention_mask"])

    def outputs(self, batch) -> torch.Tensor:
        """Class scores f (B, K) of the adapted network on tokenized texts or a :class:`Prepared` batch."""
        prep = batch if isinstance(batch, Prepared) else Prepared(batch, None, batch["attention_mask"])
        if prep.hidden is None:
            hidden = models.sentence_embeddings(self.model, {}, prep.batch)
        else:
            layers = self.model.encoder.layer[self.first_tuned_layer():]

            def run(h, add):
                for layer in layers:
                    out = layer(h, attention_mask=add)
                    h = out[0] if isinstance(out, tuple) else out
                return h

            hidden = models.pooled_by_length(prep.hidden, prep.mask, models.LengthGroups.of(prep.mask), run)
        e = nn.functional.normalize(hidden, dim=-1)
        return self.classifier.scale * e @ self.classifier.label_embeddings.T

    def point(self) -> tuple[np.ndarray, np.ndarray]:
        """(u (m, T r), v (n, T r)) float64 with δ = u vᵀ (module docstring)."""
        s = self.config.scaling
        return factors_to_point([(np.sqrt(s) * B.detach().cpu().double().numpy(),
                                  np.sqrt(s) * A.detach().cpu().double().numpy().T) for A, B in self.adapters()],
                                self.layout)

    def delta(self) -> np.ndarray:
        """δ (m, n) = u vᵀ."""
        u, v = self.point()
        return u @ v.T

    def penalty(self) -> torch.Tensor:
        """(λ s / 2) Σ_t (‖A_t‖² + ‖B_t‖²) = (λ/2)(‖u‖² + ‖v‖²)."""
        total = sum((A * A).sum() + (B * B).sum() for A, B in self.adapters())
        return 0.5 * self.config.lam * self.config.scaling * total


@dataclass
class Prepared:
    """Tokenized texts with the frozen prefix of the forward pass: ``hidden`` (B, L, d) entering the first tuned
    layer (None: run the whole network), ``mask`` (B, L) the padding mask."""

    batch: dict[str, torch.Tensor]
    hidden: torch.Tensor | None
    mask: torch.Tensor

    def select(self, idx: torch.Tensor) -> "Prepared":
        """The examples ``idx`` (a minibatch)."""
        return Prepared({k: v[idx.to(v.device)] for k, v in self.batch.items()},
                        None if self.hidden is None else self.hidden[idx.to(self.hidden.device)],
                        self.mask[idx.to(self.mask.device)])


def factors_to_point(blocks: list[tuple[np.ndarray, np.ndarray]], layout: entk.BlockLayout):
    """Per-matrix factors [(u_t (m_t, r), v_t (n_t, r))] → block-structured (u (m, T r), v (n, T r))."""
    r = blocks[0][0].shape[1]
    u, v = np.zeros((layout.m, r * len(blocks))), np.zeros((layout.n, r * len(blocks)))
    for t, ((rows, cols), (ut, vt)) in enumerate(zip(layout.slices(), blocks)):
        u[rows, t * r:(t + 1) * r], v[cols, t * r:(t + 1) * r] = ut, vt
    return u, v


def point_to_factors(u: np.ndarray, v: np.ndarray, layout: entk.BlockLayout, rank: int):
    """The inverse of :func:`factors_to_point` for a point file: [(u_t (m_t, r), v_t (n_t, r))].

    Accepted: r columns (block t uses all of them: δ_t = u[rows_t] v[cols_t]ᵀ; off-diagonal blocks of u vᵀ reach
    no weight and are dropped), or T r block-structured columns (column group t nonzero only in block t).
    """
    T = len(layout.names)
    if u.shape[0] != layout.m or v.shape[0] != layout.n or u.ndim != 2 or v.ndim != 2 or u.shape[1] != v.shape[1]:
        raise TrainingError(f"initial point must hold u (m, k) = ({layout.m}, k) and v (n, k) = ({layout.n}, k), "
                            f"got u {u.shape}, v {v.shape}")
    k = u.shape[1]
    out = []
    for t, (rows, cols) in enumerate(layout.slices()):
        if k == rank:
            out.append((u[rows], v[cols]))
        elif k == T * rank:
            grp = slice(t * rank, (t + 1) * rank)
            rest_u, rest_v = np.delete(u[rows], np.s_[grp], axis=1), np.delete(v[cols], np.s_[grp], axis=1)
            if np.any(rest_u) and np.any(rest_v):
                raise TrainingError(f"initial point with k = T·r = {k} columns is not block-structured: block {t} "
                                    f"({layout.names[t]}) has nonzero columns outside group {t}")
            out.append((u[rows, grp], v[cols, grp]))
        else:
            raise TrainingError(f"initial point has k = {k} columns: expected the rank r = {rank} or T·r = {T * rank}")
    return out


@contextlib.contextmanager
def deterministic():
    """``torch.use_deterministic_algorithms(True)`` inside the block, the previous setting restored after."""
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev)


def attach(classifier: models.PromptClassifier, weight_names: list[str], config: TrainConfig,
           point: tuple[np.ndarray, np.ndarray] | None = None) -> LoraModel:
    """A deep copy of the classifier's encoder with peft LoRA on ``weight_names`` (exact 2-D names of nn.Linear
    weights), initialised by ``config.init`` (``point`` = (u, v) for init "file")."""
    layout = entk.BlockLayout.of(classifier.model, weight_names)
    model = copy.deepcopy(classifier.model)
    for name in weight_names:
        mod = model.get_submodule(name.removesuffix(".weight"))
        if not isinstance(mod, nn.Linear) or not name.endswith(".weight"):
            raise TrainingError(f"{name} is not the weight of an nn.Linear layer (peft LoRA needs one)")
    init = config.init
    lora_cfg = LoraConfig(r=config.rank, lora_alpha=config.rank if config.alpha is None else config.alpha,
                          target_modules=[w.removesuffix(".weight") for w in weight_names], lora_dropout=0.0,
                          bias="none", init_lora_weights=PEFT_INITS.get(init.kind, True))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = inject_adapter_in_model(lora_cfg, model)
    ref = next(classifier.model.parameters())
    model.to(device=ref.device, dtype=ref.dtype)
    model.eval()
    model.requires_grad_(False)
    lm = LoraModel(classifier, model, layout, config)
    gen = torch.Generator(device="cpu").manual_seed(config.seed)
    with torch.no_grad():
        if init.kind == "gaussian":
            for A, B in lm.adapters():
                A.copy_(init.scale * torch.randn(A.shape, generator=gen, dtype=A.dtype))
                B.copy_(init.scale * torch.randn(B.shape, generator=gen, dtype=B.dtype))
        elif init.kind == "file":
            if point is None:
                raise TrainingError("init file:POINT needs the point's factors (u, v)")
            s = config.scaling
            for (A, B), (ut, vt) in zip(lm.adapters(), point_to_factors(*point, layout, config.rank)):
                B.copy_(torch.as_tensor(ut / np.sqrt(s), dtype=B.dtype))
                A.copy_(torch.as_tensor(vt.T / np.sqrt(s), dtype=A.dtype))
    for A, B in lm.adapters():
        A.requires_grad_(True)
        B.requires_grad_(True)
    return lm


@dataclass
class TrainResult:
    """The trained adapters and the loss curve (objective = mean CE + (λ/2)(‖u‖² + ‖v‖²), per step)."""

    lora: LoraModel
    objective_history: list[float]
    steps: int


def _mean_ce(f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(f, labels)


def train(lora: LoraModel, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> TrainResult:
    """Gradient descent (full batch) or minibatch SGD on mean cross-entropy + (λ/2)(‖u‖² + ‖v‖²).

    ``batch``: tokenized training texts, (N, L) tensors; ``labels`` (N,) int64. Minibatches: a fresh permutation
    of the N examples per epoch from a generator seeded by ``config.seed`` (the last batch of an epoch may be
    smaller). The objective recorded at step t is the full-batch objective only for full-batch GD.
    """
    cfg = lora.config
    params = [p for pair in lora.adapters() for p in pair]
    opt = torch.optim.SGD(params, lr=cfg.lr, momentum=0.0, weight_decay=0.0)
    N = labels.shape[0]
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    history, order, pos = [], torch.arange(N), N
    prepared = lora.prepare(batch)
    with deterministic():
        for _ in range(cfg.steps):
            if cfg.batch is None or cfg.batch >= N:
                idx = None
            else:
                if pos >= N:
                    order, pos = torch.randperm(N, generator=gen), 0
                idx, pos = order[pos:pos + cfg.batch], pos + cfg.batch
            sub = prepared if idx is None else prepared.select(idx)
            lab = labels if idx is None else labels[idx.to(labels.device)]
            opt.zero_grad(set_to_none=True)
            obj = objective(lora, sub, lab)
            if not torch.isfinite(obj):
                raise TrainingError(f"the training objective became {obj.item()} (step size lr = {cfg.lr:g} too "
                                    "large?)")
            obj.backward()
            opt.step()
            history.append(float(obj.detach()))
    return TrainResult(lora, history, cfg.steps)


def objective(lora: LoraModel, prepared: "Prepared", labels: torch.Tensor) -> torch.Tensor:
    """The training objective F = mean cross-entropy + (λ/2)(‖u‖² + ‖v‖²) on a prepared batch (differentiable in
    the adapters)."""
    return _mean_ce(lora.outputs(prepared), labels) + lora.penalty()


def polish(lora: LoraModel, batch: dict[str, torch.Tensor], labels: torch.Tensor, max_iter: int) -> float:
    """Continue to a stationary point of the full-batch objective :func:`objective`: ``torch.optim.LBFGS`` (strong
    Wolfe line search, at most ``max_iter`` iterations, stopping on ‖∇F‖_∞ ≤ POLISH_GRAD_TOL). The adapters are
    changed in place; returns ‖∇F‖_F (over all adapter entries) at the end. Deterministic on the CPU."""
    params = [p for pair in lora.adapters() for p in pair]
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=max_iter, history_size=50, tolerance_grad=POLISH_GRAD_TOL,
                            tolerance_change=0.0, line_search_fn="strong_wolfe")
    prepared = lora.prepare(batch)

    def closure():
        opt.zero_grad(set_to_none=True)
        obj = objective(lora, prepared, labels)
        obj.backward()
        return obj

    with deterministic():
        opt.step(closure)
        grads = torch.autograd.grad(objective(lora, prepared, labels), params)
    return float(torch.sqrt(sum(torch.sum(g * g) for g in grads)))


@torch.no_grad()
def evaluate(lora: LoraModel, batch: dict[str, torch.Tensor], labels: torch.Tensor) -> dict:
    """Mean cross-entropy, the objective with the penalty, and accuracy of argmax_k f_k on a labelled batch."""
    f = lora.outputs(lora.prepare(batch))
    ce = float(_mean_ce(f, labels))
    return {"loss": ce, "objective": ce + float(lora.penalty()),
            "accuracy": float((f.argmax(dim=1) == labels).double().mean()), "n": int(labels.shape[0])}
