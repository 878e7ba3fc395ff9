"""The actual network's SOSP test (verify.experiments.actual_sosp) and L-BFGS polishing (actual_training.polish) on a
tiny local BERT: the budgeted λ_min is an upper estimate of the dense Hessian's, a polished point passes, a trained
but unpolished one is not stationary, and δ = 0 with both factors zero is a proven saddle."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from verify import actual_training as at
from verify import data_text, models
from verify.experiments.actual_sosp import SOSP_LABEL, sosp_test
from verify.tolerances import SOSP_EIG_RTOL

TEXTS = data_text.load_sentiment("train").texts[:6]
LABELS = torch.tensor(data_text.load_sentiment("train").labels[:6])


@pytest.fixture(scope="module")
def clf():
    return models.PromptClassifier.build(models.tiny_bert(torch.Generator().manual_seed(1)))


def _lora(clf, init="zero", lam=0.01, point=None):
    return at.attach(clf, models.default_weight_names(clf.model),
                     at.TrainConfig(rank=2, lam=lam, steps=20, lr=0.5, init=at.InitSpec.parse(init), seed=3),
                     point=point)


def _dense_hessian(lora, batch, labels) -> np.ndarray:
    params = [p for pair in lora.adapters() for p in pair]
    prepared = lora.prepare(batch)

    g = torch.autograd.grad(at.objective(lora, prepared, labels), params, create_graph=True)
    g = torch.cat([x.reshape(-1) for x in g])
    rows = [torch.cat([h.reshape(-1) for h in torch.autograd.grad(g[i], params, retain_graph=True)])
            for i in range(g.numel())]
    return torch.stack(rows).detach().numpy()


def test_polished_point_passes_and_its_lambda_min_is_an_upper_estimate(clf):
    batch = clf.encode(TEXTS)
    lora = _lora(clf, "gaussian:0.05")
    at.train(lora, batch, LABELS)
    before = sosp_test(lora, batch, LABELS, 200, np.random.default_rng(0))
    assert before.label == "not stationary"
    grad = at.polish(lora, batch, LABELS, max_iter=300)
    test = sosp_test(lora, batch, LABELS, 400, np.random.default_rng(0))
    assert test.grad_norm == pytest.approx(grad, rel=1e-6, abs=1e-14) and test.stationary
    H = _dense_hessian(lora, batch, LABELS)
    np.testing.assert_allclose(H, H.T, atol=1e-10 * np.abs(H).max())
    w = np.linalg.eigvalsh(H)
    assert test.lambda_min_upper >= w[0] - SOSP_EIG_RTOL * np.abs(w).max() - 1e-12  # the side it is on
    assert test.lambda_min_upper <= w[0] + test.residual + 1e-9  # and close: within its residual
    assert test.hessian_norm <= np.abs(w).max() * (1 + 1e-9)  # ‖H‖ estimate from below
    assert test.label == (SOSP_LABEL if w[0] > -1e-6 * np.abs(w).max() else "saddle")


def test_zero_factors_are_a_proven_saddle(clf):
    """Both factors zero: stationary (every gradient term carries the other factor), and the Hessian has
    curvature λ − σ_1(∇f(0)) < 0 there when the gradient at 0 is larger than λ: the test proves it."""
    batch = clf.encode(TEXTS)
    ref = _lora(clf)
    u, v = ref.point()
    lora = _lora(clf, "file:zeros.npz", point=(np.zeros_like(u), np.zeros_like(v)))
    test = sosp_test(lora, batch, LABELS, 200, np.random.default_rng(0))
    assert test.grad_norm == 0.0 and test.stationary
    assert test.negative_curvature and test.label == "saddle"


@pytest.mark.gpu
def test_polish_and_sosp_test_on_cuda_match_cpu(clf):
    """L-BFGS polishing and the Hessian-vector-product SOSP test run on a CUDA copy of the classifier and agree
    with the CPU (float64)."""
    out = []
    for c, labels in ((clf, LABELS), (clf.on_device(torch.device("cuda")), LABELS.to("cuda"))):
        lora, batch = _lora(c, "gaussian:0.3"), c.encode(TEXTS)
        at.train(lora, batch, labels)
        at.polish(lora, batch, labels, 100)
        out.append((lora.delta(), sosp_test(lora, batch, labels, 40, np.random.default_rng(0))))
    (d_cpu, t_cpu), (d_gpu, t_gpu) = out
    np.testing.assert_allclose(d_gpu, d_cpu, rtol=1e-6, atol=1e-9)
    assert t_gpu.objective == pytest.approx(t_cpu.objective, rel=1e-10)
    assert t_gpu.label == t_cpu.label
