"""The core formulas of MATH.md §1–§3 against autograd and brute force."""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp as scipy_logsumexp
from strategies import build_instance, instance_specs, loss_and_outputs, perturbations, seeds, sizes

from theory import linearized_model as lm
from theory import optimality
from theory.lemma_2_2 import balanced_factors, balanced_lift, factor_norm
from theory.losses import LOSSES, CrossEntropyLoss, Loss, SquaredLoss, TargetError, get_loss, logsumexp
from theory.rank_reduction import reduce_rank
from theory.thresholds import existence_rank_bound, no_spurious_rank, theorem_4_1_applies, triangular
from verify.tolerances import exact_rtol

RTOL = exact_rtol(np.float64)


def _torch_F(inst, Qt):
    """F_P(Q) written directly with torch ops (an independent implementation for autograd)."""
    G = torch.from_numpy(inst.G)
    u, v = Qt[: inst.m], Qt[inst.m:]
    yhat = torch.from_numpy(inst.f0) + torch.einsum("nkab,ab->nk", G, u @ v.T)
    if inst.loss == "squared":
        risk = ((yhat - torch.from_numpy(inst.Y)) ** 2).sum(1).mean()
    else:
        risk = (torch.logsumexp(yhat, 1) - yhat[torch.arange(inst.N), torch.from_numpy(inst.Y)]).mean()
    val = risk + 0.5 * inst.lam * (Qt ** 2).sum()
    if inst.P is not None:
        val = val + (Qt * (torch.from_numpy(inst.P) @ Qt)).sum()
    return val


@given(spec=instance_specs(perturbation=perturbations), r=sizes)
def test_gradient_and_hessian_match_autograd(spec, r):
    inst = spec.build()
    Q, W = spec.rng().standard_normal((2, inst.m + inst.n, r))
    Qt = torch.tensor(Q, requires_grad=True)
    F = _torch_F(inst, Qt)
    assert inst.lora_objective(Q) == pytest.approx(F.item(), rel=RTOL, abs=RTOL)
    (g,) = torch.autograd.grad(F, Qt, create_graph=True)
    grad = optimality.lora_gradient(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
    np.testing.assert_allclose(grad, g.detach().numpy(), rtol=RTOL, atol=RTOL)
    (hv,) = torch.autograd.grad(g, Qt, grad_outputs=torch.from_numpy(W))
    hvp = optimality.hessian_vector_product(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P)
    np.testing.assert_allclose(hvp, hv.numpy(), rtol=RTOL, atol=RTOL)
    form = optimality.hessian_quadratic_form(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P)
    assert form == pytest.approx(float(np.sum(W * hvp)), rel=RTOL, abs=RTOL)


def test_torch_reference_passes_gradcheck(rng):
    inst = build_instance(3, 3, 2, 3, 2, "cross_entropy", perturbation="full_rank")
    Qt = torch.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    assert torch.autograd.gradcheck(lambda q: _torch_F(inst, q), (Qt,))
    assert torch.autograd.gradgradcheck(lambda q: _torch_F(inst, q), (Qt,))


@given(seed=seeds, N=sizes, K=st.integers(2, 4))
def test_loss_derivatives(seed, N, K):
    rng = np.random.default_rng(seed)
    yhat = 3 * rng.standard_normal((N, K))
    for loss, y in [(SquaredLoss(), rng.standard_normal((N, K))), (CrossEntropyLoss(), rng.integers(0, K, N))]:
        t = torch.tensor(yhat, requires_grad=True)
        val = ((t - torch.from_numpy(y)) ** 2).sum(1) if loss.name == "squared" else \
            torch.logsumexp(t, 1) - t[torch.arange(N), torch.from_numpy(y)]
        np.testing.assert_allclose(loss.value(yhat, y), val.detach().numpy(), rtol=RTOL)
        (g,) = torch.autograd.grad(val.sum(), t, create_graph=True)
        np.testing.assert_allclose(loss.grad(yhat, y), g.detach().numpy(), rtol=RTOL, atol=RTOL)
        H = np.stack([torch.autograd.functional.hessian(
            lambda z: (((z - torch.from_numpy(y[i])) ** 2).sum() if loss.name == "squared"
                       else torch.logsumexp(z, 0) - z[int(y[i])]), torch.tensor(yhat[i])).numpy() for i in range(N)])
        np.testing.assert_allclose(loss.hess(yhat, y), H, rtol=RTOL, atol=RTOL)
        assert np.linalg.eigvalsh(H).max() <= loss.hessian_bound * (1 + RTOL)
    assert np.linalg.norm(CrossEntropyLoss().grad(yhat, rng.integers(0, K, N)), axis=1).max() <= np.sqrt(2)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        get_loss("hinge")
    assert all(isinstance(lossf, Loss) and lossf.name == name and get_loss(lossf) is lossf
               for name, lossf in LOSSES.items())


# --- the loss protocol: every registered loss, through its one interface -------------------------


def _loss_point(lossf: Loss, seed: int, N: int, K: int):
    """Predictions ŷ (N, K) and valid targets for ``lossf``, drawn through the protocol itself."""
    rng = np.random.default_rng(seed)
    yhat = 3 * rng.standard_normal((N, K))
    return yhat, lossf.targets(lossf.random_targets(rng, N, K), N, K)


@given(seed=seeds, N=sizes, loss_K=loss_and_outputs())
def test_loss_torch_and_cvxpy_forms_agree_with_numpy(seed, N, loss_K):
    name, K = loss_K
    lossf = get_loss(name)
    yhat, y = _loss_point(lossf, seed, N, K)
    t = torch.tensor(yhat, requires_grad=True)
    Yt = lossf.torch_targets(y, torch.float64, "cpu")
    val = lossf.torch_value(t, Yt)
    np.testing.assert_allclose(val.detach().numpy(), lossf.value(yhat, y), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(lossf.torch_grad(t.detach(), Yt).numpy(), lossf.grad(yhat, y), rtol=RTOL, atol=RTOL)
    # batched over starts: (S, N, K) predictions share the (N, ...) targets
    batch = torch.stack([t.detach(), 2 * t.detach()])
    np.testing.assert_allclose(lossf.torch_value(batch, Yt)[1].numpy(), lossf.value(2 * yhat, y), rtol=RTOL, atol=RTOL)
    x = cp.Variable(N * K)
    x.value = yhat.reshape(-1)
    assert lossf.cvxpy_risk(x, y, N, K).value == pytest.approx(float(np.mean(lossf.value(yhat, y))), rel=RTOL, abs=RTOL)


@given(seed=seeds, N=sizes, loss_K=loss_and_outputs())
def test_loss_derivatives_match_autograd_of_its_torch_value(seed, N, loss_K):
    name, K = loss_K
    """grad and hess_apply against torch autograd of the loss's own torch form (so a new loss is checked too)."""
    lossf = get_loss(name)
    yhat, y = _loss_point(lossf, seed, N, K)
    d = np.random.default_rng(seed + 1).standard_normal((N, K))
    t = torch.tensor(yhat, requires_grad=True)
    (g,) = torch.autograd.grad(lossf.torch_value(t, lossf.torch_targets(y, torch.float64, "cpu")).sum(), t,
                               create_graph=True)
    np.testing.assert_allclose(lossf.grad(yhat, y), g.detach().numpy(), rtol=RTOL, atol=RTOL)
    (hd,) = torch.autograd.grad(g, t, grad_outputs=torch.from_numpy(d))
    np.testing.assert_allclose(lossf.hess_apply(yhat, y, d), hd.numpy(), rtol=RTOL, atol=RTOL)
    np.testing.assert_allclose(np.einsum("nkl,nl->nk", lossf.hess(yhat, y), d), hd.numpy(), rtol=RTOL, atol=RTOL)


@given(seed=seeds, N=sizes, loss_K=loss_and_outputs())
def test_loss_gradient_bounds(seed, N, loss_K):
    name, K = loss_K
    """‖∇ℓ_i‖ ≤ lipschitz(max ‖ŷ_i‖, max ‖y_i‖) and ‖V‖_F = ‖∇ℓ‖_F/N ≤ residual_weights_bound(L̂, N)."""
    lossf = get_loss(name)
    yhat, y = _loss_point(lossf, seed, N, K)
    grad = lossf.grad(yhat, y)
    y_bound = float(np.linalg.norm(np.reshape(y, (N, -1)), axis=1).max())
    lip = lossf.lipschitz(float(np.linalg.norm(yhat, axis=1).max()), y_bound)
    assert np.linalg.norm(grad, axis=1).max() <= lip * (1 + RTOL)
    level = float(np.mean(lossf.value(yhat, y)))
    assert np.linalg.norm(grad / N) <= lossf.residual_weights_bound(level, N) * (1 + RTOL)


@given(seed=seeds, N=sizes, loss_K=loss_and_outputs())
def test_loss_target_draws_are_valid_and_reproducible(seed, N, loss_K):
    name, K = loss_K
    lossf = get_loss(name)
    labels = np.random.default_rng(seed).integers(0, K, N)
    lossf.targets(lossf.targets_from_labels(labels, K), N, K)
    draws = []
    for _ in range(2):
        rng = np.random.default_rng(seed)
        f0 = lossf.random_offsets(rng, N, K)
        draws.append((f0, lossf.random_targets(rng, N, K), lossf.sample_targets(rng, f0, 0.1), rng.random()))
    for a, b in zip(*draws):
        np.testing.assert_array_equal(a, b)
    for Y in draws[0][1:3]:
        lossf.targets(Y, N, K)
    assert draws[0][0].shape == (N, K)


@pytest.mark.parametrize("name, Y, match", [
    ("squared", np.zeros((3, 3)), r"Y must have shape \(N, K\) = \(3, 2\)"),
    ("squared", np.full((3, 2), np.nan), "Y contains NaN"),
    ("squared", np.full((3, 2), np.inf), "Y contains Inf"),
    ("cross_entropy", np.zeros((3, 2)), r"Y must have shape \(N,\) = \(3,\)"),
    ("cross_entropy", np.array([0.0, 1.5, 1.0]), "integer class indices"),
    ("cross_entropy", np.array([0, 2, 1]), r"out of range: must lie in \[0, K\) = \[0, 2\)"),
    ("cross_entropy", np.array([0, np.nan, 1]), "Y contains NaN"),
])
def test_loss_target_validation_names_the_defect(name, Y, match):
    with pytest.raises(TargetError, match=match):
        get_loss(name).targets(Y, 3, 2)


def test_cross_entropy_needs_two_outputs_and_normalises_labels():
    with pytest.raises(TargetError, match="K ≥ 2"):
        CrossEntropyLoss().targets(np.zeros(3), 3, 1)
    assert CrossEntropyLoss().targets(np.array([0.0, 1.0]), 2, 2).dtype == np.int64
    assert SquaredLoss().targets(np.array([[1]]), 1, 1).dtype == np.float64


@given(seed=seeds, N=sizes, K=st.integers(1, 4))
def test_logsumexp_and_unregularized_minimum(seed, N, K):
    rng = np.random.default_rng(seed)
    z = 30 * rng.standard_normal((N, K))
    np.testing.assert_allclose(logsumexp(z), scipy_logsumexp(z, axis=-1), rtol=RTOL)
    G, f0, Y = rng.standard_normal((N, K, 2, 3)), rng.standard_normal((N, K)), rng.standard_normal((N, K))
    assert SquaredLoss().unregularized_minimum(G, f0, Y) == optimality.least_squares_optimum(G, f0, Y)
    assert CrossEntropyLoss().unregularized_minimum(G, f0, Y) is None
    A = lm.sensing_matrix(G)
    assert lm.sensing_norm_squared(G) == pytest.approx(np.linalg.norm(A, 2) ** 2, rel=RTOL)


@given(seed=seeds, m=st.integers(1, 8), n=st.integers(1, 8), rank=st.integers(1, 8))
def test_lemma_2_2_balanced_factors_attain_nuclear_norm(seed, m, n, rank):
    """Lemma 2.2: ‖δ‖_* = ½ min ‖u‖² + ‖v‖², attained by balanced factors; any other factorization is larger."""
    rng = np.random.default_rng(seed)
    k = min(rank, m, n)
    delta = rng.standard_normal((m, k)) @ rng.standard_normal((k, n))
    u, v = balanced_factors(delta)
    np.testing.assert_array_equal(balanced_lift(delta), np.vstack([u, v]))
    np.testing.assert_allclose(u @ v.T, delta, atol=RTOL * max(1, np.abs(delta).max()))
    nuc = lm.nuclear_norm(delta)
    assert factor_norm(u, v) == pytest.approx(nuc, rel=RTOL)
    R = rng.standard_normal((u.shape[1], u.shape[1])) + 3 * np.eye(u.shape[1])  # invertible
    assert factor_norm(u @ R, v @ np.linalg.inv(R).T) >= nuc * (1 - RTOL)


def test_thresholds():
    assert existence_rank_bound(64) == 10 and no_spurious_rank(64) == 11
    assert triangular(11) > 64 >= triangular(10)
    assert theorem_4_1_applies(11, 64) and not theorem_4_1_applies(10, 64)
    for kn in range(1, 300):
        r = existence_rank_bound(kn)
        assert triangular(r) <= kn < triangular(r + 1)
    with pytest.raises(ValueError, match="KN"):
        existence_rank_bound(0)


def test_rank_reduction_math_md_example():
    """MATH.md §3: λ = 0, N = 6, K = 1, m = 20, n = 15: min-norm interpolant of rank 15 → rank 3."""
    rng = np.random.default_rng(0)
    G = rng.standard_normal((6, 1, 20, 15))
    f0, Y = np.zeros((6, 1)), rng.standard_normal((6, 1))
    delta = (np.linalg.pinv(G.reshape(6, -1)) @ Y.ravel()).reshape(20, 15)
    assert np.linalg.matrix_rank(delta) == 15
    u, v = balanced_factors(delta)
    Q, path = reduce_rank(G, f0, Y, "squared", 0.0, np.vstack([u, v]))
    assert Q.shape[1] == 3 and triangular(Q.shape[1]) <= 6
    np.testing.assert_allclose(lm.apply_A(G, Q[:20] @ Q[20:].T), Y, atol=RTOL * max(1, np.abs(Y).max()))
    assert [s.rank for s in path] == list(range(15, 2, -1))


def test_least_squares_optimum_matches_lstsq():
    inst = build_instance(0, 5, 2, 2, 2, lam=0.0)  # KN = 10 > mn = 4: not interpolating
    A = lm.sensing_matrix(inst.G)
    x = np.linalg.lstsq(A, (inst.Y - inst.f0).ravel(), rcond=None)[0]
    assert optimality.least_squares_optimum(inst.G, inst.f0, inst.Y) == pytest.approx(inst.risk(x.reshape(2, 2)), rel=RTOL)


def test_gap_bound_requires_positive_lambda():
    with pytest.raises(ValueError, match="λ > 0"):
        optimality.gap_bound(1.0, 0.0, 0.0, 0.0)
