"""The paper's real setting: prompt-based fine-tuning of a pretrained transformer in the NTK regime,
last layer's query and value tuned, N training sentences drawn by seed, and the held-out test split."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verify import data_text, entk, models
from verify.instance import Instance


@dataclass
class RealTask:
    """The classifier, the tuned weight names, the train / test instances and the training texts."""

    classifier: models.PromptClassifier
    weight_names: list[str]
    train: Instance | None
    test: Instance | None
    train_texts: list[str]


def load_text_model(model: str = "minilm", *, sha256: str | None = None, dtype: torch.dtype = torch.float64,
                    device: str = "cpu") -> models.TextModel:
    """'minilm' (the shipped all-MiniLM-L6-v2, sha256 enforced) or a local Hugging Face directory."""
    if model == "minilm":
        return models.load_minilm(dtype=dtype, device=device)
    return models.load_hf_model(model, expected_sha256=sha256, dtype=dtype, device=device)


def build_task(text_model: models.TextModel, *, n: int, seed: int, lam: float = 0.01,
               weights: list[str] | None = None, chunk: int = entk.DEFAULT_CHUNK, device: str = "cpu",
               with_test: bool = True, extract: bool = True, storage: str = "auto",
               test_storage: str = "auto") -> RealTask:
    """Extract the train instance (N = n sentences drawn with default_rng(seed)) and the test instance;
    ``extract=False`` only loads the classifier and draws the texts (instances left as None); ``storage`` and
    ``test_storage`` as in ``verify.entk.extract_instance``. By default both are kept factored where that is
    smaller (per-sample gradient hooks, each sentence its own tokens): dense, the last layer's G of 32 sentences
    takes 302 MB, half of it zeros, and the 272 held-out sentences 2.4 GiB."""
    classifier = models.PromptClassifier.build(text_model)
    names = entk.select_weights(classifier.model, weights or models.default_weight_names(classifier.model))
    train = data_text.sample_train(n, np.random.default_rng(seed))
    test = data_text.load_sentiment("test")
    prov = dict(data_file=data_text.DATA_PATH.name, data_sha256=data_text.data_sha256(), test_size=len(test),
                device=device)
    if not extract:
        return RealTask(classifier, names, None, None, train.texts)
    train_inst = entk.extract_instance(classifier, train.texts, train.labels, names, lam=lam, chunk=chunk, storage=storage,
                                       name=f"entk-n{n}-seed{seed}", provenance=dict(prov, split="train", seed=seed))
    test_inst = entk.extract_instance(classifier, test.texts, test.labels, names, lam=lam, chunk=chunk,
                                      storage=test_storage,
                                      name="entk-test", provenance=dict(prov, split="test")) if with_test else None
    return RealTask(classifier, names, train_inst, test_inst, train.texts)
