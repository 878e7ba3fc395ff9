"""Empirical-NTK extraction (verify.entk) against a plain per-example autograd loop, and the CLI."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from theory.linearized_model import apply_A, sensing_matrix
from verify import data_text, entk, models
from verify.commands import entk as entk_command
from verify.instance import load_instance
from verify.tolerances import LINEARIZATION_RATIO_RTOL, LINEARIZATION_RTOL, LINEARIZATION_SMALL, exact_rtol


TOL = exact_rtol(np.float64)
TEXTS = ["Great fun.", "The plot made no sense and the ending was a mess.", "Sturdy build quality.",
         "I was bored within the first ten minutes.", "A delightful comedy with a surprisingly touching message."]
LABELS = [1, 0, 1, 0, 1]


@pytest.fixture(scope="module")
def clf() -> models.PromptClassifier:
    return models.PromptClassifier.build(models.tiny_bert(torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def names(clf) -> list[str]:
    return models.default_weight_names(clf.model)


@pytest.fixture(scope="module")
def ntk(clf, names):
    return entk.empirical_ntk(clf.model, clf.outputs, names, clf.encode(TEXTS), chunk=2)


def autograd_loop(clf, names, texts):
    """Reference: per example (unpadded) and per output, torch.autograd.grad → list over t of (N, K, m_t, n_t)."""
    blocks = [[] for _ in names]
    for text in texts:
        params = {n: clf.model.get_parameter(n).detach().clone().requires_grad_(True) for n in names}
        f = clf.outputs(params, clf.encode([text]))[0]
        grads = [torch.autograd.grad(f[j], list(params.values()), retain_graph=True) for j in range(f.shape[0])]
        for t in range(len(names)):
            blocks[t].append(torch.stack([g[t] for g in grads]))
    return [torch.stack(b).numpy() for b in blocks]


def assert_close(a, b):
    np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * np.abs(b).max())


def random_delta(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# extraction ---------------------------------------------------------------------------------------
def test_matches_per_example_autograd_loop(clf, names, ntk):
    G, f0 = ntk
    layout = entk.BlockLayout.of(clf.model, names)
    for (rows, cols), ref in zip(layout.slices(), autograd_loop(clf, names, TEXTS)):
        assert np.abs(ref).max() > 0
        assert_close(G[:, :, rows, cols], ref)
    with torch.no_grad():
        assert_close(f0, clf.outputs({}, clf.encode(TEXTS)).numpy())


def test_block_diagonal_structure(clf, names, ntk):
    G, _ = ntk
    assert G.shape == (len(TEXTS), 2, 64, 64) and G.dtype == np.float64
    assert np.all(G[:, :, :32, 32:] == 0) and np.all(G[:, :, 32:, :32] == 0)
    assert np.all(np.abs(G[:, :, :32, :32]).max(axis=(2, 3)) > 0)
    assert np.all(np.abs(G[:, :, 32:, 32:]).max(axis=(2, 3)) > 0)


@pytest.mark.parametrize("chunk", [1, 3, len(TEXTS)])
def test_chunk_size_does_not_change_the_result(clf, names, ntk, chunk):
    G, f0 = entk.empirical_ntk(clf.model, clf.outputs, names, clf.encode(TEXTS), chunk=chunk)
    assert_close(G, ntk[0])
    assert_close(f0, ntk[1])


def test_requires_eval_mode(clf, names):
    clf.model.train()
    try:
        with pytest.raises(ValueError, match="eval"):
            entk.empirical_ntk(clf.model, clf.outputs, names, clf.encode(TEXTS[:1]))
    finally:
        clf.model.eval()


# weight selection -------------------------------------------------------------------------------
def test_glob_patterns_select_in_parameter_order(clf):
    got = entk.select_weights(clf.model, ["encoder.layer.1.attention.self.*.weight"])
    assert got == [f"encoder.layer.1.attention.self.{w}.weight" for w in ("query", "key", "value")]


def test_unknown_pattern_is_named(clf):
    with pytest.raises(entk.WeightSelectionError, match=r"no parameter matches \['encoder.layer.9.\*'\]"):
        entk.select_weights(clf.model, ["encoder.layer.0.attention.self.query.weight", "encoder.layer.9.*"])


def test_non_matrix_parameter_is_named(clf):
    with pytest.raises(entk.WeightSelectionError, match="query.bias"):
        entk.select_weights(clf.model, ["encoder.layer.1.attention.self.query.*"])


def test_layout_needs_exact_names(clf):
    with pytest.raises(entk.WeightSelectionError, match="exact and distinct"):
        entk.BlockLayout.of(clf.model, ["encoder.layer.1.attention.self.*.weight"])


# linearization ---------------------------------------------------------------------------------
def test_linearization_error_agrees_with_G(clf, names, ntk):
    G, f0 = ntk
    delta = 0.05 * random_delta(G.shape[2:], 1)
    layout = entk.BlockLayout.of(clf.model, names)
    moved = {n: clf.model.get_parameter(n) + torch.from_numpy(d) for n, d in zip(names, layout.split(delta))}
    with torch.no_grad():
        f_moved = clf.outputs(moved, clf.encode(TEXTS)).numpy()
    expected = np.linalg.norm(f_moved - f0 - apply_A(G, delta)) / np.linalg.norm(apply_A(G, delta))
    got = entk.linearization_error(clf.model, clf.outputs, names, clf.encode(TEXTS), delta)
    np.testing.assert_allclose(got, expected, rtol=LINEARIZATION_RTOL)


def test_off_diagonal_blocks_reach_no_weight(clf, names, ntk):
    delta = 0.05 * random_delta(ntk[0].shape[2:], 2)
    diagonal = delta.copy()
    diagonal[:32, 32:] = diagonal[32:, :32] = 0.0
    batch = clf.encode(TEXTS)
    assert entk.linearization_error(clf.model, clf.outputs, names, batch, delta) == \
        entk.linearization_error(clf.model, clf.outputs, names, batch, diagonal)


def test_linearization_error_vanishes_linearly(clf, names, ntk):
    direction = random_delta(ntk[0].shape[2:], 3)
    batch = clf.encode(TEXTS)
    errors = [entk.linearization_error(clf.model, clf.outputs, names, batch, t * direction)
              for t in (1e-1, 1e-2, 1e-3, 1e-4)]
    ratios = np.array(errors[1:]) / np.array(errors[:-1])
    assert errors[-1] < LINEARIZATION_SMALL
    # second-order remainder / first-order term = O(t)
    np.testing.assert_allclose(ratios, 0.1, rtol=LINEARIZATION_RATIO_RTOL)
    assert entk.linearization_error(clf.model, clf.outputs, names, batch, 0 * direction) == 0.0


# instances ----------------------------------------------------------------------------------------
def test_extract_instance(clf, names, ntk):
    inst = entk.extract_instance(clf, TEXTS, LABELS, names, lam=0.1, chunk=2, provenance=dict(seed=5))
    assert inst.loss == "cross_entropy" and inst.lam == 0.1 and inst.shape == ntk[0].shape
    np.testing.assert_array_equal(inst.Y, LABELS)
    assert_close(inst.G, ntk[0])
    assert inst.provenance["weight_names"] == names and inst.provenance["weight_shapes"] == [[32, 32]] * 2
    assert inst.provenance["seed"] == 5 and inst.provenance["n"] == len(TEXTS)
    squared = entk.extract_instance(clf, TEXTS, LABELS, names, loss="squared")
    np.testing.assert_array_equal(squared.Y, np.eye(2)[LABELS])


def test_test_accuracy(clf, names):
    inst = entk.extract_instance(clf, TEXTS, LABELS, names)
    zero = np.zeros((inst.m, inst.n))
    assert entk.test_accuracy(inst, zero) == np.mean(inst.f0.argmax(axis=1) == inst.Y)
    # δ interpolating logits ±1 towards the labels (KN = 10 equations, mn = 4096 unknowns): accuracy 1
    target = 2.0 * np.eye(2)[inst.Y] - 1.0 - inst.f0
    delta = np.linalg.lstsq(sensing_matrix(inst.G), target.ravel(), rcond=None)[0].reshape(inst.m, inst.n)
    assert entk.test_accuracy(inst, delta) == 1.0
    assert entk.test_accuracy(inst, -delta) < 1.0
    one_hot = entk.extract_instance(clf, TEXTS, LABELS, names, loss="squared")
    assert entk.test_accuracy(one_hot, delta) == 1.0


# the command line --------------------------------------------------------------------------------
def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    entk_command.register(parser.add_subparsers())
    args = parser.parse_args(["entk", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def tiny_dir(clf, tmp_path_factory):
    return clf.text_model.save_pretrained(tmp_path_factory.mktemp("tiny-bert"))


def test_cli_writes_instance_with_provenance(tiny_dir, tmp_path, capsys):
    out, test_out = tmp_path / "train.npz", tmp_path / "test.npz"
    rc = run_cli(["--model", str(tiny_dir), "--n", "6", "--seed", "3", "--out", str(out), "--test-out", str(test_out),
                  "--lam", "0.05", "--chunk", "16", "--device", "cpu"])
    assert rc == 0
    assert "G (6, 2, 64, 64)" in capsys.readouterr().out
    inst, held_out = load_instance(out), load_instance(test_out)
    assert inst.shape == (6, 2, 64, 64) and inst.loss == "cross_entropy" and inst.lam == 0.05
    prov = inst.provenance
    assert prov["model_sha256"] == models.file_sha256(tiny_dir / models.WEIGHTS_FILE)
    assert prov["data_sha256"] == data_text.data_sha256()
    assert prov["seed"] == 3 and prov["n"] == 6 and prov["split"] == "train"
    assert prov["test_size"] == len(data_text.load_sentiment("test")) == held_out.N
    assert prov["weight_names"] == models.default_weight_names(models.tiny_bert(torch.Generator()).model)
    assert prov["label_descriptions"] == list(models.DEFAULT_LABEL_DESCRIPTIONS)
    assert prov["scale"] == models.DEFAULT_SCALE
    sample = data_text.sample_train(6, np.random.default_rng(3))
    np.testing.assert_array_equal(inst.Y, sample.labels)


def test_cli_reports_bad_weights_and_hash(tiny_dir, tmp_path, capsys):
    common = ["--model", str(tiny_dir), "--n", "2", "--out", str(tmp_path / "x.npz")]
    assert run_cli([*common, "--weights", "no.such.*"]) == 2
    assert "no.such.*" in capsys.readouterr().err
    assert run_cli([*common, "--sha256", "0" * 64]) == 2
    assert "expected 0000" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow
def test_minilm_instance_shapes():
    clf = models.PromptClassifier.build(models.load_minilm())
    names = models.default_weight_names(clf.model)
    sample = data_text.sample_train(4, np.random.default_rng(0))
    inst = entk.extract_instance(clf, sample.texts, sample.labels, names)
    assert inst.shape == (4, 2, 768, 768)
    assert np.all(inst.G[:, :, :384, 384:] == 0) and np.all(inst.G[:, :, 384:, :384] == 0)
    ref = autograd_loop(clf, names, sample.texts[:1])
    assert_close(inst.G[:1, :, :384, :384], ref[0])
    assert_close(inst.G[:1, :, 384:, 384:], ref[1])


def test_prediction_pair_gives_both_predictions_and_the_output_error(clf, names, ntk):
    batch, labels = clf.encode(TEXTS), np.array(LABELS)
    delta = 5.0 * random_delta(ntk[0].shape[2:], 5)
    actual, linear, err = entk.prediction_pair(clf.model, clf.outputs, names, batch, delta, chunk=2)
    assert actual.shape == linear.shape == labels.shape
    assert err == pytest.approx(entk.linearization_error(clf.model, clf.outputs, names, batch, delta), rel=1e-9)
    zero = entk.prediction_pair(clf.model, clf.outputs, names, batch, 0 * delta)
    assert np.array_equal(zero[0], zero[1]) and zero[2] == 0.0
