"""Kim, Kim, Ryu: provable α/β of the linearized squared loss, the null direction, the batched ratio formulas,
the dichotomy as a decision, the restricted-set sampler, the SDP-built instance and the actual-model risk."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from strategies import losses, min_outputs, seeds
from theory import fails_loudly as fl
from theory.linearized_model import apply_A, predictions
from verify import entk, models, synthetic
from verify.claims.kim_claims import optimum
from verify.experiments.kim_actual import ActualRisk, actual_estimates
from verify.experiments.kim_adversarial import adversarial_instance
from verify.experiments.kim_constants import (_Base, blocks_of, linearized_estimates, restricted_samples,
                                              rsm_direction)
from verify.real_task import RealTask
from verify.results import Verdict
from verify.sosp import classify_point
from verify.tolerances import FD_RTOL, FD_STEP, KIM_NULL_RTOL, KIM_SIDE_RTOL, exact_rtol

TOL = exact_rtol(np.float64)


@given(seed=seeds, N=st.integers(2, 6), K=st.integers(1, 2), m=st.integers(2, 3), n=st.integers(2, 3),
       r=st.integers(1, 3))
def test_provable_alpha_below_and_beta_above_every_sample(seed, N, K, m, n, r):
    """α ≥ 2σ_min(A)²/N and β ≤ 2‖A‖²_op/N are proven: every sampled RSC ratio is ≥ the first and every
    sampled RSM ratio ≤ the second, whatever the rank, radius and instance."""
    rng = np.random.default_rng(seed)
    inst = synthetic.gaussian(rng, N, K, m, n)
    X_star = rng.standard_normal((m, 1)) @ rng.standard_normal((1, n))
    est = linearized_estimates(inst, X_star, r, 2.0, 40, rng)
    a, b = fl.squared_loss_alpha_lower(inst.G), fl.squared_loss_beta_upper(inst.G)
    assert np.all(est.rsc >= a * (1 - KIM_SIDE_RTOL) - TOL)
    assert np.all(est.rsm <= b * (1 + KIM_SIDE_RTOL) + TOL)
    assert est.alpha_upper >= a * (1 - KIM_SIDE_RTOL) - TOL


def test_exact_alpha_attained_by_the_weakest_direction_of_A():
    """With r ≥ min(m, n) every direction is allowed: the right singular vector of σ_min(A) attains α exactly."""
    rng = np.random.default_rng(0)
    inst = synthetic.gaussian(rng, 2, 2, 2, 2)
    X_star = np.outer(rng.standard_normal(2), rng.standard_normal(2))
    A = inst.G.reshape(4, 4)
    weakest = np.linalg.svd(A)[2][-1].reshape(2, 2)
    ratio = fl.rsc_ratio(inst.G, inst.f0, inst.Y, "squared", X_star + 0.1 * weakest, X_star)
    assert ratio == pytest.approx(fl.squared_loss_alpha_lower(inst.G), rel=1e-10)
    strongest = np.linalg.svd(A)[2][0].reshape(2, 2)
    assert fl.loss_hessian_form(inst.G, inst.f0, inst.Y, "squared", X_star, strongest) == \
        pytest.approx(fl.squared_loss_beta_upper(inst.G), rel=1e-10)


@given(seed=seeds, loss=losses)
def test_null_direction_zeroes_the_rsc_ratio(seed, loss):
    """m > KN: a unit rank-1 Δ with A(Δ) = 0 exists, and the RSC ratio of any linearized loss along it is 0."""
    rng = np.random.default_rng(seed)
    K = min_outputs(loss)
    inst = synthetic.gaussian(rng, 2, K, 2 * K + 3, 3, loss=loss)
    d = fl.null_direction(inst.G, rng.standard_normal(3))
    assert d is not None and np.linalg.norm(d) == pytest.approx(1.0)
    assert np.linalg.matrix_rank(d) == 1
    assert np.linalg.norm(apply_A(inst.G, d)) <= KIM_NULL_RTOL * np.linalg.norm(inst.G)
    X_star = rng.standard_normal((inst.m, inst.n))
    assert abs(fl.rsc_ratio(inst.G, inst.f0, inst.Y, loss, X_star + 3 * d, X_star)) <= 1e-9


def test_no_null_direction_when_KN_covers_the_rows():
    inst = synthetic.gaussian(np.random.default_rng(1), 4, 1, 3, 3)
    assert fl.null_direction(inst.G, np.ones(3)) is None


@given(seed=seeds, loss=losses)
def test_batched_ratios_match_the_single_ones(seed, loss):
    rng = np.random.default_rng(seed)
    K = min_outputs(loss)
    inst = synthetic.gaussian(rng, 3, K, 3, 2, loss=loss)
    X_star = rng.standard_normal((3, 2))
    Xs = [X_star + rng.standard_normal((3, 2)) for _ in range(3)]
    Es = [rng.standard_normal((3, 2)) for _ in range(3)]
    yhat = np.stack([predictions(inst.G, inst.f0, X) for X in Xs])
    got = fl.rsc_ratios_from_outputs(yhat, predictions(inst.G, inst.f0, X_star), inst.Y, loss,
                                     [np.sum((X - X_star) ** 2) for X in Xs])
    want = [fl.rsc_ratio(inst.G, inst.f0, inst.Y, loss, X, X_star) for X in Xs]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    AE = np.stack([apply_A(inst.G, E) for E in Es])
    got = fl.rsm_ratios_from_outputs(yhat, AE, inst.Y, loss, [np.sum(E * E) for E in Es])
    want = [fl.loss_hessian_form(inst.G, inst.f0, inst.Y, loss, X, E) / np.sum(E * E) for X, E in zip(Xs, Es)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kim_rsc_rsm_sampled_beta_reaches_the_exact_beta_and_a_half_scale_is_caught(seed):
    """Other seeds than the report's: on the 2×2 instance with exact constants the sampled β is within
    KIM_BETA_REACH_RTOL of the exact β (HOLDS), and the ratios taken at half scale are caught."""
    from verify.claims.base import Context
    from verify.claims.kim_claims import run_kim_rsc_rsm
    out = run_kim_rsc_rsm(Context(seed=seed, device="cpu"))
    assert out.check.verdict is Verdict.HOLDS, out.check.details
    half = next(c for c in out.controls if c.id == "kim_rsm_ratio_half_convention")
    assert half.caught and half.margin < -0.4


def test_entk_kim_table_entry_says_na_where_alpha_is_refuted():
    """β/α is a lower bound on the true β/α only where α > 0; a proof of α ≤ 0 makes it N/A."""
    from verify.claims.entk_kim_claims import _table_side
    from verify.experiments.kim_constants import ConstantEstimates
    est = ConstantEstimates(8, 5.0, np.array([2e-4, 3e-4]), np.array([0.01, 0.02]), np.array([1.0, 2.0]))
    assert "β/α ≥ 100 (if α > 0)" in _table_side("actual", est, None)
    assert _table_side("actual", est, "α ≤ -3e-06 (the witness)").endswith("but α ≤ -3e-06 (the witness): β/α N/A")


def test_dichotomy_decisions_by_hand():
    """2α/β = 0.5, r* = 1, r = 2: σ = (1, 0.4) is case (i), σ = (1, 0.8) case (ii) with bound
    √(0.64 / (1 − 0.5/0.8)) − ‖X*‖."""
    assert fl.dichotomy_case([1.0, 0.4], 2, 1, 1.0, 4.0) == "global"
    assert fl.dichotomy_consistent([1.0, 0.4], 2, 1, 1.0, 4.0, is_global=True, norm_X_star=1.0)[0]
    assert not fl.dichotomy_consistent([1.0, 0.4], 2, 1, 1.0, 4.0, is_global=False, norm_X_star=1.0)[0]
    ok, slack = fl.dichotomy_consistent([1.0, 0.8], 2, 1, 1.0, 4.0, is_global=False, norm_X_star=0.1)
    bound = np.sqrt(0.64 / (1 - 0.5 / 0.8)) - 0.1
    assert ok and slack == pytest.approx(np.sqrt(1.64) - bound)
    assert not fl.dichotomy_consistent([1.0, 0.8], 2, 1, 1.0, 4.0, is_global=True, norm_X_star=0.1)[0]
    assert not fl.dichotomy_consistent([1.0, 0.8], 2, 1, 1.0, 4.0, is_global=False, norm_X_star=0.0)[0]  # 1.28 < 1.31


@given(seed=seeds, r=st.integers(1, 4))
def test_restricted_samples_stay_in_the_set_and_the_blocks(seed, r):
    rng = np.random.default_rng(seed)
    X_star = np.zeros((5, 5))
    X_star[:2, :2] = np.outer(rng.standard_normal(2), rng.standard_normal(2))
    blocks = blocks_of((5, 5), [(2, 2), (3, 3)])
    for sample, d2 in restricted_samples(rng, X_star, r, 1.5, 10, blocks):
        X = sample.dense()
        assert np.linalg.matrix_rank(X, tol=1e-10) <= r
        assert np.sum((X - X_star) ** 2) == pytest.approx(d2, rel=1e-9, abs=1e-12)
        assert np.linalg.norm(X - X_star) <= 1.5 * (1 + 1e-9)
        assert np.allclose(X[:2, 2:], 0) and np.allclose(X[2:, :2], 0)
        assert np.allclose(sample.block_entries(blocks), np.concatenate([X[:2, :2].ravel(), X[2:, 2:].ravel()]))
        E = rsm_direction(rng, sample)
        assert E.norm_squared() == pytest.approx(np.sum(E.dense() ** 2), rel=1e-12)


@given(seed=seeds, loss=losses)
def test_linearized_estimates_are_the_ratios_of_their_samples_on_a_block_instance(seed, loss):
    """On a two-block instance whose map misses some block entries (zero columns of G), the batched, factored
    ratios equal the dense per-sample definitions (fl.rsc_ratio, fl.loss_hessian_form) at the same X and E."""
    rng = np.random.default_rng(seed)
    K = min_outputs(loss)
    inst = synthetic.gaussian(rng, 3, K, 5, 5, loss=loss)
    blocks = blocks_of((5, 5), [(2, 3), (3, 2)])
    keep = np.zeros((5, 5))
    for rows, cols in blocks:
        keep[rows, cols] = 1.0
    keep[0, 1] = keep[4, 3] = 0.0
    inst = dataclasses.replace(inst, G=inst.G * keep)
    X_star = np.zeros((5, 5))
    X_star[:2, :3] = np.outer(rng.standard_normal(2), rng.standard_normal(3))
    est = linearized_estimates(inst, X_star, 2, 1.0, 4, np.random.default_rng(seed + 1), blocks)
    again = np.random.default_rng(seed + 1)
    samples = [x for x, _ in restricted_samples(again, X_star, 2, 1.0, 4, blocks)]  # a chunk's points, then its E
    for k, E in enumerate([rsm_direction(again, x).dense() for x in samples]):
        X = samples[k].dense()
        assert est.rsc[k] == pytest.approx(fl.rsc_ratio(inst.G, inst.f0, inst.Y, loss, X, X_star), rel=1e-8,
                                           abs=1e-10)
        assert est.rsm[k] == pytest.approx(fl.loss_hessian_form(inst.G, inst.f0, inst.Y, loss, X, E) / np.sum(E * E),
                                           rel=1e-8, abs=1e-10)


@given(seed=seeds, m=st.integers(1, 5), n=st.integers(1, 5), r=st.integers(1, 3), c=st.floats(-3, 3))
def test_distance_quartic_by_traces_equals_the_dense_distance(seed, m, n, r, c):
    """The sampler's quartic in c (Gram-matrix traces) is ‖(U₀ + c E_u)(V₀ + c E_v)ᵀ − X*‖²_F."""
    rng = np.random.default_rng(seed)
    U0, V0, X_star = rng.standard_normal((m, r)), rng.standard_normal((n, r)), rng.standard_normal((m, n))
    Eu, Ev = rng.standard_normal((m, r)), rng.standard_normal((n, r))
    dense = np.sum(((U0 + c * Eu) @ (V0 + c * Ev).T - X_star) ** 2)
    assert np.polyval(_Base.of(U0, V0, X_star).quartic(Eu, Ev), c) == pytest.approx(dense, rel=1e-9, abs=1e-9)


def test_sdp_instance_has_a_strict_spurious_local_minimum_in_case_ii():
    """The planted point of the SDP-built instance (KN = mn, A injective) is a strict spurious local minimum,
    and the theorem with the proven constants puts it in case (ii)."""
    inst, Q_hat, kappa = adversarial_instance(np.random.default_rng(0))
    X_star, cert = optimum(inst, np.random.default_rng(1))
    pc = classify_point(inst, Q_hat, rng=np.random.default_rng(2), optimum=cert.lifted_objective)
    assert cert.certified and cert.rank == 1 and pc.label == "spurious_local_min"
    s = np.linalg.svd(Q_hat[:3] @ Q_hat[3:].T, compute_uv=False)
    a, b = fl.squared_loss_alpha_lower(inst.G), fl.squared_loss_beta_upper(inst.G)
    assert b / a == pytest.approx(kappa, rel=1e-6)
    assert fl.dichotomy_case(s, 2, 1, a, b) == "spurious"


@pytest.fixture(scope="module")
def tiny_task():
    clf = models.PromptClassifier.build(models.tiny_bert(torch.Generator().manual_seed(0)))
    names = models.default_weight_names(clf.model)
    texts = ["Great fun.", "The plot made no sense.", "Sturdy build quality.", "I was bored."]
    inst = entk.extract_instance(clf, texts, [1, 0, 1, 0], names)
    return RealTask(clf, names, inst, None, texts)


def test_actual_risk_agrees_with_the_linearization_to_first_order(tiny_task):
    """At X = 0 the actual risk equals L̂(0) and its directional derivative ⟨∇L̂(0), Δ⟩ of the linearized
    instance (the eNTK is the actual Jacobian there); the Hessian form matches a finite difference."""
    inst = tiny_task.train
    risk = ActualRisk(tiny_task)
    rng = np.random.default_rng(0)
    blocks = blocks_of((inst.m, inst.n), inst.provenance["weight_shapes"])
    Delta = np.zeros((inst.m, inst.n))
    for rows, cols in blocks:
        Delta[rows, cols] = rng.standard_normal((rows.stop - rows.start, cols.stop - cols.start))
    zero = np.zeros_like(Delta)
    assert float(risk.value(risk.blocks(zero))) == pytest.approx(inst.risk(zero), rel=1e-10)
    assert risk.directional(zero, Delta) == pytest.approx(float(np.sum(inst.gradient(zero) * Delta)), rel=1e-8)
    fd = (risk.directional(FD_STEP * Delta, Delta) - risk.directional(-FD_STEP * Delta, Delta)) / (2 * FD_STEP)
    assert risk.hessian_form(zero, Delta) == pytest.approx(fd, rel=100 * FD_RTOL)
    g, _ = risk.gradient_and_hessian_form(FD_STEP * Delta, Delta)
    assert risk.dot(g, Delta) == pytest.approx(risk.directional(FD_STEP * Delta, Delta), rel=TOL)


def _tiny_star(inst, blocks, rng):
    X_star = np.zeros((inst.m, inst.n))
    rows, cols = blocks[0]
    X_star[rows, cols] = 0.1 * np.outer(rng.standard_normal(rows.stop - rows.start),
                                        rng.standard_normal(cols.stop - cols.start))
    return X_star


def test_actual_estimates_are_the_rsc_and_rsm_ratios_of_their_samples(tiny_task):
    """The fused pass (gradient and Hessian form from one forward-over-reverse) gives, per sample, the RSC ratio
    of ``rsc_ratio`` and the RSM ratio of ``hessian_form`` at the same sampled X and E."""
    inst = tiny_task.train
    risk = ActualRisk(tiny_task)
    blocks = blocks_of((inst.m, inst.n), inst.provenance["weight_shapes"])
    X_star = _tiny_star(inst, blocks, np.random.default_rng(3))
    est = actual_estimates(risk, X_star, 2, 1.0, 3, np.random.default_rng(4), blocks)
    again = np.random.default_rng(4)
    for k, (sample, _) in enumerate(restricted_samples(again, X_star, 2, 1.0, 3, blocks)):
        X, E = sample.dense(), rsm_direction(again, sample).dense()
        assert est.rsc[k] == pytest.approx(risk.rsc_ratio(X, X_star), rel=1e-9, abs=1e-12)
        assert est.rsm[k] == pytest.approx(risk.hessian_form(X, E) / np.sum(E * E), rel=TOL)


def test_batched_actual_estimates_equal_one_at_a_time(tiny_task):
    """The vmapped pass over a batch (here 3, with a last partial batch) gives the ratios of one sample a pass."""
    inst = tiny_task.train
    risk = ActualRisk(tiny_task)
    blocks = blocks_of((inst.m, inst.n), inst.provenance["weight_shapes"])
    X_star = _tiny_star(inst, blocks, np.random.default_rng(3))
    one = actual_estimates(risk, X_star, 2, 1.0, 5, np.random.default_rng(4), blocks, batch=1)
    many = actual_estimates(risk, X_star, 2, 1.0, 5, np.random.default_rng(4), blocks, batch=3)
    np.testing.assert_allclose(many.rsc, one.rsc, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(many.rsm, one.rsm, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(many.dist, one.dist)


def test_actual_risk_on_its_own_device_shares_the_encoder(tiny_task):
    """On the device the classifier lives on no copy is made; the sample count follows the device choice."""
    from verify.claims.entk_kim_claims import CONFIG
    clf = tiny_task.classifier
    assert clf.on_device(torch.device("cpu")) is clf
    assert ActualRisk(tiny_task, "cpu").params[tiny_task.weight_names[0]].data_ptr() == \
        clf.model.get_parameter(tiny_task.weight_names[0]).data_ptr()
    assert CONFIG.full.actual_samples_on("cpu") == CONFIG.full.actual_samples
    assert CONFIG.full.actual_samples_cuda == 1000  # the paper's count


@pytest.mark.gpu
def test_actual_estimates_on_cuda_match_cpu(tiny_task):
    """The same samples on a CUDA copy of the encoder give the CPU's ratios (float64)."""
    inst = tiny_task.train
    blocks = blocks_of((inst.m, inst.n), inst.provenance["weight_shapes"])
    X_star = _tiny_star(inst, blocks, np.random.default_rng(3))
    cuda = ActualRisk(tiny_task, "cuda")
    assert next(iter(cuda.params.values())).device.type == "cuda"
    on_gpu = actual_estimates(cuda, X_star, 2, 1.0, 5, np.random.default_rng(4), blocks)
    on_cpu = actual_estimates(ActualRisk(tiny_task, "cpu"), X_star, 2, 1.0, 5, np.random.default_rng(4), blocks)
    np.testing.assert_allclose(on_gpu.rsc, on_cpu.rsc, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(on_gpu.rsm, on_cpu.rsm, rtol=1e-8, atol=1e-12)


@given(seed=seeds, m=st.integers(1, 6), n=st.integers(1, 6), eps=st.floats(0.01, 1.5))
def test_spectral_eps_rank_is_the_least_rank_within_eps(seed, m, n, eps):
    """Lemma 1's quantity in the spectral norm: the rank-k truncation of X/‖X‖₂ is within ε, rank k − 1 is not."""
    X = np.random.default_rng(seed).standard_normal((m, n))
    U, s, Vt = np.linalg.svd(X / np.linalg.norm(X, 2), full_matrices=False)
    residual = lambda k: np.linalg.norm(X / np.linalg.norm(X, 2) - (U[:, :k] * s[:k]) @ Vt[:k], 2) if k < s.size \
        else 0.0  # noqa: E731
    k = fl.eps_rank_spectral(X, eps)
    assert residual(k) < eps
    assert k == 0 or residual(k - 1) >= eps * (1 - 1e-12)
    assert fl.eps_rank_spectral(np.zeros((m, n)), eps) == 0


@given(seed=seeds, m=st.integers(1, 6), n=st.integers(1, 6), eps=st.floats(0.01, 1.5))
def test_eps_rank_is_the_least_rank_within_eps(seed, m, n, eps):
    """Lemma 1's quantity: the truncated SVD of rank eps_rank(X, ε) is within ε of X/‖X‖_F, one rank less is not."""
    X = np.random.default_rng(seed).standard_normal((m, n))
    U, s, Vt = np.linalg.svd(X / np.linalg.norm(X), full_matrices=False)
    residual = lambda k: np.linalg.norm(X / np.linalg.norm(X) - (U[:, :k] * s[:k]) @ Vt[:k])  # noqa: E731
    k = fl.eps_rank(X, eps)
    assert residual(k) < eps
    assert k == 0 or residual(k - 1) >= eps


def test_sgd_rank_bound_values_and_domain():
    """b log(ε/4) / log(1 − µλ): 1 · log(1/8) / log(1/2) = 3; no rank needed once ε ≥ 4; µλ outside (0, 1) named."""
    assert fl.sgd_rank_bound(1, 0.5, 1.0, 0.5) == pytest.approx(3.0, rel=TOL)
    assert fl.sgd_rank_bound(32, 0.5, 0.01, 4.0) == 0.0
    assert fl.sgd_rank_bound(2, 0.5, 1.0, 0.5) == pytest.approx(2 * fl.sgd_rank_bound(1, 0.5, 1.0, 0.5), rel=TOL)
    with pytest.raises(ValueError, match="µλ"):
        fl.sgd_rank_bound(1, 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="eps"):
        fl.sgd_rank_bound(1, 0.5, 0.1, 0.0)


@given(eps=st.sampled_from([0.05, 0.1, 0.5, 2.0]), horizon=st.sampled_from([0.5, 1.0, 1.25, 3.0]),
       lam=st.sampled_from([0.1, 0.5, 2.0]))
def test_lemma_1_decay_puts_the_bound_at_b_times_the_horizon(eps, horizon, lam):
    decay = fl.lemma_1_decay(eps, horizon)
    assert fl.sgd_rank_bound(4, decay / lam, lam, eps) == pytest.approx(4 * horizon, rel=1e-12)
    with pytest.raises(ValueError, match="eps"):
        fl.lemma_1_decay(4.0, horizon)
    with pytest.raises(ValueError, match="horizon"):
        fl.lemma_1_decay(eps, 0.0)


@given(seed=seeds, N=st.integers(1, 3), K=st.integers(1, 2))
def test_orthogonal_rank_one_measurements_and_their_optimum(seed, N, K):
    """Unit rank-one measurements on orthonormal pairs: example gradients of rank ≤ K, and X* = (target − Nλ/2) Σ_j
    u_j v_jᵀ certified global."""
    from verify.certify import certify
    from theory.lemma_2_2 import balanced_factors
    lam, target = 0.5, 0.8 * N * 0.5
    inst = synthetic.orthogonal_rank_one(np.random.default_rng(seed), N, K, 6, 7, target=target, lam=lam)
    G = inst.G.reshape(N * K, -1)
    assert np.allclose(G @ G.T, np.eye(N * K), atol=1e-12)
    assert all(np.linalg.matrix_rank(inst.G[i].sum(axis=0)) <= K for i in range(N))
    X = (target - N * lam / 2) * inst.G.sum(axis=(0, 1))
    assert certify(inst, Q=np.vstack(balanced_factors(X))).certified
    with pytest.raises(synthetic.InstanceError, match="N·K"):
        synthetic.orthogonal_rank_one(np.random.default_rng(seed), 4, 2, 6, 7, target=target, lam=lam)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lemma_1_as_printed_fails_with_two_vectors_per_example(seed):
    """Other seeds than the report's, at µλ = 1 − ε/4 (bound b in both readings): converged runs with rank-two example
    gradients exceed it, rank-one ones sit at b; a run stopped early is not judged (INCONCLUSIVE)."""
    from verify.claims.base import Context
    from verify.claims.kim_lemma_1 import CONFIG, EARLY_STEPS, Lemma1Bounds, lemma_1_runs, lemma_1_verdict
    ctx, cfg = Context(seed=seed, device="cpu"), CONFIG.quick
    bounds = Lemma1Bounds.of(cfg)
    assert bounds.whole_steps == cfg.examples and bounds.printed == pytest.approx(cfg.examples, rel=1e-12)
    assert lemma_1_verdict(lemma_1_runs(ctx, cfg, 2, "two"), bounds)[0] is Verdict.VIOLATED
    one = lemma_1_runs(ctx, cfg, 1, "one")
    assert lemma_1_verdict(one, bounds)[0] is Verdict.HOLDS and all(one.certified)
    assert max(one.ranks) == max(one.eps_ranks) == cfg.examples
    early = lemma_1_runs(ctx, dataclasses.replace(cfg, steps=EARLY_STEPS), 2, "two")
    assert lemma_1_verdict(early, bounds)[0] is Verdict.INCONCLUSIVE


def test_lemma_1_verdict_is_inconclusive_where_the_reading_decides():
    """An ε-rank between the printed bound and the whole-step one depends on the unread proof's rounding."""
    from verify.claims.kim_lemma_1 import Lemma1Bounds, Lemma1Runs, lemma_1_verdict
    runs = lambda k, ks=None: Lemma1Runs("toy", [k], [k if ks is None else ks], [k], [1e-15], [k], [True])  # noqa: E731
    bounds = Lemma1Bounds(printed=5.0, whole_steps=8)
    assert lemma_1_verdict(runs(5), bounds)[0] is Verdict.HOLDS
    assert lemma_1_verdict(runs(6), bounds)[0] is Verdict.INCONCLUSIVE
    assert lemma_1_verdict(runs(9), bounds) == (Verdict.VIOLATED, pytest.approx(-1 / 8))
    assert lemma_1_verdict(runs(5, ks=6), bounds)[0] is Verdict.INCONCLUSIVE  # the norms disagree
    assert lemma_1_verdict(runs(9, ks=8), bounds)[0] is Verdict.INCONCLUSIVE
    unconverged = Lemma1Runs("toy", [9], [9], [9], [1e-3], [9], [True])
    assert lemma_1_verdict(unconverged, bounds)[0] is Verdict.INCONCLUSIVE


@given(eps=st.floats(0.01, 3.9), decay=st.floats(0.01, 0.99))
def test_decay_steps_is_the_least_whole_number_of_decays_below_eps_over_4(eps, decay):
    k = fl.decay_steps(decay, 1.0, eps)
    assert (1 - decay) ** k <= eps / 4 * (1 + 1e-8)
    assert k == 0 or (1 - decay) ** (k - 1) > eps / 4 * (1 - 1e-8)


def test_decay_steps_counts_a_ratio_of_one_as_one_step():
    """µλ = 1 − ε/4 is not exact in binary (ratio 1 + 2e-16 at ε = 0.1): one step, not two."""
    assert fl.decay_steps(0.975 / 0.5, 0.5, 0.1) == 1 and fl.decay_steps(fl.lemma_1_decay(0.1, 1.25), 1.0, 0.1) == 2


def test_lemma_1_beside_the_actual_runs_says_why_it_is_not_decided():
    from verify.claims.kim_fails_loudly import KIM, RANK, lemma_1_details
    details = lemma_1_details(KIM.full, 32)
    bound = next(v for k, v in details.items() if k.startswith("bound"))
    assert bound > RANK and "cannot fail" in details["verdict"]


def test_fails_loudly_on_the_sdp_instance_judges_failures_by_the_theorem():
    """Strict spurious minima reached on the SDP-built instance are labelled spurious (not left unlabelled) and judged
    by the theorem's case (ii) with the proven constants: rank r, norm above its (here negative) bound — loud,
    although the planted minimum is smaller than X* (the observable criterion would call it quiet)."""
    from verify.claims.base import Context
    from verify.claims.kim_fails_loudly import _adversarial_rows
    rows, info = _adversarial_rows(Context(profile="quick", seed=0, device="cpu"), 64, 8)
    spurious = [r for r in rows if r["label"] == "spurious"]
    assert spurious and all(r["failure"] == "loud" and r["rank"] == info["r"] for r in spurious)
    assert all(r["theorem's norm bound"] < 0 and not r["‖X‖_F > ‖X*‖_F"] for r in spurious)
    assert {r["label"] for r in rows} <= {"global", "spurious"}
    assert info["first spurious point with σ_r dropped"] == "quiet"  # the gross control: one rank lower is not loud
    # the near miss: the observable test of the other instances calls these failures quiet
    assert all(r["observable failure"] == "quiet" for r in spurious)


def test_fails_loudly_study_starts_from_given_points():
    """The linearized MiniLM runs start from the actual network's initial factors: given starts keep their labels,
    their number of columns (the LoRA rank over the blocks) and their order, at λ > 0 and at λ = 0."""
    from verify import synthetic
    from verify.claims.base import Context
    from verify.claims.kim_fails_loudly import LAM, _study
    rng = np.random.default_rng(0)
    inst = synthetic.gaussian(rng, 6, 2, 5, 4, loss="cross_entropy", lam=LAM)
    starts = [(("zero", 0.0), np.vstack([np.zeros((5, 3)), rng.standard_normal((4, 3))])),
              (("gaussian", 0.7), 0.7 * rng.standard_normal((9, 3)))]
    rows, info = _study(Context(profile="quick", seed=0, device="cpu"), inst, None, "t", starts, 20)
    assert info["LoRA rank (columns of the factors)"] == 3 and "actual network" in info["starts"]
    assert [(r["init"], r["scale"], r["λ"]) for r in rows] == [("zero", 0.0, LAM), ("gaussian", 0.7, LAM),
                                                              ("zero", 0.0, 0.0), ("gaussian", 0.7, 0.0)]


def test_polished_actual_points_above_the_best_objective_are_called_not_global():
    """A stationary point whose objective exceeds the best one reached by more than the tolerance is proven not
    global; one within it is 'the best point reached' (nothing more)."""
    from verify.claims.kim_fails_loudly import _polished_summaries
    from verify.tolerances import KIM_ACTUAL_OBJECTIVE_RTOL
    X = np.diag([2.0, 1.0, 0.0])
    rows = [{}, {}, {}]
    F = 0.5
    _polished_summaries([(rows[0], X, F, 1e-9, 0.8), (rows[1], X, F * (1 + 0.1 * KIM_ACTUAL_OBJECTIVE_RTOL), 1e-9, 0.8),
                         (rows[2], 2 * X, F + 10 * KIM_ACTUAL_OBJECTIVE_RTOL, 1e-9, 0.7)])
    assert rows[0]["after L-BFGS"].endswith("the best point reached (F within the tolerance)")
    assert rows[1]["after L-BFGS"].endswith("the best point reached (F within the tolerance)")
    assert "not global" in rows[2]["after L-BFGS"] and "rank 2" in rows[2]["after L-BFGS"]
