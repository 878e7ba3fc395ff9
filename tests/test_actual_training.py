"""Actual LoRA training with peft (verify.actual_training, lora-verify train) on a tiny local BERT: the exact
δ = s·B A mapping to the instance layout, first-order agreement with the linearized instance, determinism,
initial factors from a point file, and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from theory.linearized_model import apply_A
from verify import actual_training as at
from verify import data_text, entk, models
from verify.cli import main
from verify.tolerances import LINEARIZATION_RATIO_RTOL, LINEARIZATION_SMALL

TEXTS = data_text.load_sentiment("train").texts[:5]
LABELS = torch.tensor(data_text.load_sentiment("train").labels[:5])


@pytest.fixture(scope="module")
def clf():
    return models.PromptClassifier.build(models.tiny_bert(torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def names(clf):
    return models.default_weight_names(clf.model)


@pytest.fixture(scope="module")
def ntk(clf, names):
    return entk.empirical_ntk(clf.model, clf.outputs, names, clf.encode(TEXTS))


def _cfg(init="zero", **kw):
    return at.TrainConfig(**(dict(rank=2, lam=0.01, steps=3, lr=0.5, init=at.InitSpec.parse(init), seed=4) | kw))


@pytest.mark.parametrize("alpha", [None, 8.0])
def test_delta_is_s_times_B_A_in_the_block_layout(clf, names, alpha):
    lora = at.attach(clf, names, _cfg("gaussian:0.1", alpha=alpha))
    s = lora.config.scaling
    assert s == (1.0 if alpha is None else alpha / 2)
    delta = lora.delta()
    for (A, B), block in zip(lora.adapters(), lora.layout.split(delta)):
        np.testing.assert_allclose(block, s * (B @ A).detach().numpy(), rtol=1e-12, atol=1e-15)
    r0, c0 = lora.layout.slices()[0]
    assert not delta[r0, lora.layout.slices()[1][1]].any()  # off-diagonal blocks are zero
    # the adapted network equals the network with W_t + δ_t (peft's forward is W x + s B A x)
    moved = {n: clf.model.get_parameter(n) + torch.from_numpy(d) for n, d in zip(names, lora.layout.split(delta))}
    batch = clf.encode(TEXTS)
    with torch.no_grad():
        np.testing.assert_allclose(lora.outputs(batch).numpy(), clf.outputs(moved, batch).numpy(), rtol=1e-10)
    # the penalty is (λ/2)(‖u‖² + ‖v‖²)
    u, v = lora.point()
    assert float(lora.penalty().detach()) == pytest.approx(0.005 * (np.sum(u * u) + np.sum(v * v)), rel=1e-12)


def test_zero_init_is_delta_zero(clf, names):
    lora = at.attach(clf, names, _cfg("zero"))
    assert not lora.delta().any()
    assert all(A.abs().sum() > 0 for A, _ in lora.adapters())  # peft's A is random, B = 0


def test_first_order_agreement_with_the_linearized_instance(clf, names, ntk):
    """f(W⁰ + s B A) − (f0 + A(δ)) = O(‖δ‖²): the relative remainder shrinks 10× when δ does."""
    G, f0 = ntk
    batch = clf.encode(TEXTS)
    errors = []
    for scale in (1e-1, 10 ** -1.5, 1e-2):  # δ ∝ scale²: ‖δ‖ drops 10× per step
        lora = at.attach(clf, names, _cfg(f"gaussian:{scale}"))
        delta = lora.delta()
        with torch.no_grad():
            f = lora.outputs(batch).numpy()
        errors.append(np.linalg.norm(f - f0 - apply_A(G, delta)) / np.linalg.norm(apply_A(G, delta)))
    assert errors[-1] < LINEARIZATION_SMALL
    np.testing.assert_allclose(np.array(errors[1:]) / np.array(errors[:-1]), 0.1, rtol=LINEARIZATION_RATIO_RTOL)


def test_training_is_deterministic_and_descends(clf, names):
    batch = clf.encode(TEXTS)
    runs = [at.train(at.attach(clf, names, _cfg("zero", steps=5)), batch, LABELS) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].lora.delta(), runs[1].lora.delta())
    assert runs[0].objective_history[-1] < runs[0].objective_history[0]
    sgd = at.train(at.attach(clf, names, _cfg("zero", steps=5, batch=2)), batch, LABELS)
    assert not np.array_equal(sgd.lora.delta(), runs[0].lora.delta())


def test_point_round_trip(clf, names):
    lora = at.attach(clf, names, _cfg("gaussian:0.2"))
    u, v = lora.point()
    again = at.attach(clf, names, _cfg("file:p.npz"), point=(u, v))
    np.testing.assert_allclose(again.delta(), lora.delta(), rtol=1e-12, atol=1e-15)
    shared = at.attach(clf, names, _cfg("file:p.npz"), point=(u[:, :2] + u[:, 2:], v[:, :2] + v[:, 2:]))
    np.testing.assert_allclose(shared.delta(), lora.delta(), rtol=1e-12, atol=1e-15)  # r columns, shared
    with pytest.raises(at.TrainingError, match="block-structured"):
        at.point_to_factors(u + 1.0, v + 1.0, lora.layout, 2)
    with pytest.raises(at.TrainingError, match="k = 3 columns"):
        at.point_to_factors(u[:, :3], v[:, :3], lora.layout, 2)


@pytest.mark.parametrize("text,match", [("gaussian:-1", "SCALE"), ("gaussian:x", "SCALE"), ("pissa", "unknown init"),
                                        ("file:", "unknown init")])
def test_bad_init_is_named(text, match):
    with pytest.raises(at.TrainingError, match=match):
        at.InitSpec.parse(text)


@pytest.fixture(scope="module")
def tiny_dir(clf, tmp_path_factory):
    return clf.text_model.save_pretrained(tmp_path_factory.mktemp("tiny-bert"))


def test_cli_train_then_certify(tiny_dir, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["--model", str(tiny_dir), "--n", "4", "--seed", "1", "--device", "cpu"]
    assert main(["train", *common, "--rank", "2", "--steps", "3", "--lr", "0.5", "--out", str(out)]) == 0
    summary = json.loads((out / "train.json").read_text())
    assert {"initial", "final", "objective_history", "block_ranks", "delta_fro", "instance"} <= set(summary)
    assert summary["final"]["train"]["n"] == 4 and summary["final"]["test"]["n"] == len(data_text.load_sentiment("test"))
    assert main(["entk", *common, "--out", str(tmp_path / "inst.npz")]) == 0
    assert main(["certify", str(tmp_path / "inst.npz"), "--point", str(out / "point.npz"),
                 "--json", str(tmp_path / "c.json")]) == 0
    cert = json.loads((tmp_path / "c.json").read_text())
    assert cert["lora_rank"] == 4 and cert["objective"] > 0
    # the point file is an accepted initialisation
    assert main(["train", *common, "--rank", "2", "--steps", "1", "--lr", "0.1", "--init",
                 f"file:{out / 'point.npz'}", "--out", str(tmp_path / "again")]) == 0


@pytest.mark.parametrize("extra,match", [(["--init", "gaussian:0"], "SCALE"), (["--lr", "0"], "--lr"),
                                         (["--init", "file:/no/such.npz"], "cannot read"),
                                         (["--weights", "embeddings.LayerNorm.weight"], "2-D")])
def test_cli_train_errors(tiny_dir, tmp_path, capsys, extra, match):
    args = ["train", "--model", str(tiny_dir), "--n", "2", "--rank", "1", "--steps", "1", "--lr", "0.1",
            "--out", str(tmp_path / "x"), *extra]
    assert main(args) == 2
    assert match in capsys.readouterr().err


@pytest.mark.slow
def test_minilm_training_reduces_the_loss(tmp_path):
    assert main(["train", "--rank", "4", "--steps", "3", "--lr", "0.5", "--n", "8", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["final"]["train"]["objective"] < summary["initial"]["train"]["objective"]
    assert summary["block_ranks"] == [4, 4]


def test_prepared_prefix_is_exact(clf, names):
    """Running only the layers from the first tuned one on the cached hidden states gives the full forward."""
    lora = at.attach(clf, names, _cfg("gaussian:0.3"))
    batch = clf.encode(TEXTS)
    prep = lora.prepare(batch)
    assert prep.hidden is not None and lora.first_tuned_layer() == 1
    with torch.no_grad():
        np.testing.assert_allclose(lora.outputs(prep).numpy(), lora.outputs(batch).numpy(), rtol=1e-12)
        idx = torch.tensor([3, 0])
        np.testing.assert_allclose(lora.outputs(prep.select(idx)).numpy(), lora.outputs(batch).numpy()[[3, 0]],
                                   rtol=1e-12)


def test_peft_default_gaussian_init_is_a_multiple_of_peft_std(clf, names):
    fan_in = clf.model.get_parameter(names[0]).shape[1]
    spec = at.InitSpec.parse(at.peft_default_gaussian(clf, names, 3.0))
    assert spec.kind == "gaussian" and spec.scale == pytest.approx(3.0 / np.sqrt(3 * fan_in), rel=1e-3)


def test_cublas_workspace_is_set_for_deterministic_cuda_products():
    """verify.device sets CUBLAS_WORKSPACE_CONFIG at import (else deterministic mode raises on CUDA products) and
    keeps a user's own value."""
    import os
    import subprocess
    import sys
    code = "import os, verify.device; print(os.environ['CUBLAS_WORKSPACE_CONFIG'])"
    env = {k: v for k, v in os.environ.items() if k != "CUBLAS_WORKSPACE_CONFIG"}
    fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    kept = subprocess.run([sys.executable, "-c", code], env=env | {"CUBLAS_WORKSPACE_CONFIG": ":16:8"},
                          capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == ":4096:8" and kept.stdout.strip() == ":16:8"


@pytest.mark.gpu
def test_cuda_training_is_deterministic_and_matches_cpu(clf, names):
    """The classifier copied to CUDA (``PromptClassifier.on_device``) trains deterministically under
    ``actual_training.deterministic`` and ends where the CPU run ends (float64, 5 full-batch steps)."""
    gpu = clf.on_device(torch.device("cuda"))
    batch, labels = gpu.encode(TEXTS), LABELS.to("cuda")
    runs = [at.train(at.attach(gpu, names, _cfg("gaussian:0.2", steps=5)), batch, labels) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].lora.delta(), runs[1].lora.delta())
    cpu = at.train(at.attach(clf, names, _cfg("gaussian:0.2", steps=5)), clf.encode(TEXTS), LABELS)
    np.testing.assert_allclose(runs[0].lora.delta(), cpu.lora.delta(), rtol=1e-8, atol=1e-12)
    assert at.evaluate(runs[0].lora, batch, labels)["accuracy"] == at.evaluate(cpu.lora, clf.encode(TEXTS),
                                                                                 LABELS)["accuracy"]
