"""The Burer–Monteiro / LoRA solver (verify/solvers/bm/): derivatives against autograd and theory/,
batching, determinism, certified end points above the Theorem 4.1 rank, result fields, bad inputs."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import build_instance, instance_specs, losses, min_outputs, perturbations, seeds, sizes

from theory import optimality
from theory.losses import LOSS_NAMES
from theory.thresholds import theorem_4_1_applies
from verify.certify import certify
from verify.device import describe, device_for, resolve
from verify.results import SolveStatus
from verify.solvers.bm import (
    TorchLoRAProblem,
    grad_rtol,
    initial_factors,
    safe_step,
    solve_bm,
    solve_bm_multistart,
    torch_lora_objective,
)
from verify.tolerances import (
    BELOW_FLOAT32_GRAD_RTOL,
    FLOAT32_GAP_RTOL,
    FLOAT32_OBJECTIVE_RTOL,
    INIT_STD_RTOL,
    SOLVER_AGREEMENT_RTOL,
    exact_rtol,
)

RTOL = exact_rtol(np.float64)


def _objective(inst, Q):
    return torch_lora_objective(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)


def _small_above_threshold(seed, loss="squared"):
    """m = n = 4, λ = 0.1 and rank 3 with r(r+1)/2 = 6 > KN = 4 (Theorem 4.1 applies): K the fewest
    outputs the loss accepts (1 for the squared loss, 2 for cross-entropy), N = 4 / K."""
    K = min_outputs(loss)
    inst = build_instance(seed, 4 // K, K, 4, 4, loss=loss, lam=0.1)
    assert inst.kn == 4 and theorem_4_1_applies(3, inst.kn)
    return inst


# --- derivatives ------------------------------------------------------------------------------


@given(spec=instance_specs(perturbation=perturbations), r=sizes)
def test_torch_objective_matches_numpy_batched_and_not(spec, r):
    inst = spec.build()
    Qs = spec.rng().standard_normal((3, inst.m + inst.n, r))
    batched = _objective(inst, torch.from_numpy(Qs)).numpy()
    for Q, value in zip(Qs, batched):
        expected = inst.lora_objective(Q)
        assert value == pytest.approx(expected, rel=RTOL, abs=RTOL)
        assert _objective(inst, torch.from_numpy(Q)).item() == pytest.approx(expected, rel=RTOL, abs=RTOL)


@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("perturbation", [None, "full_rank"])
def test_torch_objective_passes_gradcheck_and_gradgradcheck(rng, loss, perturbation):
    inst = build_instance(7, 3, 2, 3, 2, loss, perturbation=perturbation)
    for shape in [(5, 2), (2, 5, 2)]:
        Qt = torch.tensor(rng.standard_normal(shape), requires_grad=True)
        assert torch.autograd.gradcheck(lambda q: _objective(inst, q), (Qt,))
        assert torch.autograd.gradgradcheck(lambda q: _objective(inst, q), (Qt,))


@given(spec=instance_specs(perturbation=perturbations), r=sizes)
def test_explicit_gradient_MQ_matches_autograd_and_theory(spec, r):
    """∇F_P(Q) = M Q (MATH.md §2), batched, against torch autograd and theory.optimality.lora_gradient."""
    inst = spec.build()
    Qs = spec.rng().standard_normal((2, inst.m + inst.n, r))
    prob = TorchLoRAProblem.from_instance(inst)
    Qt = torch.tensor(Qs, requires_grad=True)
    explicit = prob.gradient(Qt.detach(), prob.evaluate(Qt.detach())).numpy()
    (auto,) = torch.autograd.grad(_objective(inst, Qt).sum(), Qt)
    np.testing.assert_allclose(explicit, auto.numpy(), rtol=RTOL, atol=RTOL)
    for Q, g in zip(Qs, explicit):
        theory = optimality.lora_gradient(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
        np.testing.assert_allclose(g, theory, rtol=RTOL, atol=RTOL)


@given(spec=instance_specs(perturbation=perturbations), r=sizes)
def test_theory_hessian_vector_product_matches_double_backward(spec, r):
    """theory.optimality.hessian_vector_product and hessian_quadratic_form against autograd of
    torch_lora_objective (double backward)."""
    inst = spec.build()
    Q, W = spec.rng().standard_normal((2, inst.m + inst.n, r))
    Qt = torch.tensor(Q, requires_grad=True)
    (g,) = torch.autograd.grad(_objective(inst, Qt), Qt, create_graph=True)
    (hv,) = torch.autograd.grad(g, Qt, grad_outputs=torch.from_numpy(W))
    hvp = optimality.hessian_vector_product(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P)
    np.testing.assert_allclose(hvp, hv.numpy(), rtol=RTOL, atol=RTOL)
    form = optimality.hessian_quadratic_form(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P)
    assert form == pytest.approx(float(np.sum(W * hv.numpy())), rel=RTOL, abs=RTOL)


# --- initialisation ---------------------------------------------------------------------------


@given(seed=seeds, m=sizes, n=sizes, r=sizes, starts=st.integers(1, 3))
def test_lora_init_has_zero_update_and_random_init_does_not(seed, m, n, r, starts):
    inst = build_instance(seed, 2, 1, m, n)
    Q0 = initial_factors(inst, r, starts, "lora", np.random.default_rng(seed))
    assert Q0.shape == (starts, m + n, r)
    assert np.all(Q0[:, m:] == 0) and np.all(np.any(Q0[:, :m] != 0, axis=(1, 2)))   # v = 0, u ≠ 0: δ = 0
    for Q in Q0:
        expected = inst.risk(np.zeros((m, n))) + 0.5 * inst.lam * np.sum(Q * Q)
        assert inst.lora_objective(Q) == pytest.approx(expected, rel=RTOL)
    Qr = initial_factors(inst, r, starts, "random", np.random.default_rng(seed))
    assert np.all(np.any(Qr[:, m:] != 0, axis=(1, 2)))


def test_lora_init_scale_is_kaiming_like():
    inst = build_instance(0, 2, 1, 400, 3)
    Q0 = initial_factors(inst, 50, 1, "lora", np.random.default_rng(0))[0]
    assert np.std(Q0[:400]) == pytest.approx(1 / np.sqrt(400), rel=INIT_STD_RTOL)   # columns of u have norm ≈ 1


def test_init_does_not_touch_global_rng():
    inst = build_instance(0, 2, 1, 3, 3)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    solve_bm(inst, 2, starts=2, init="random", rng=np.random.default_rng(0), device="cpu")
    assert np.array_equal(np.random.get_state()[1], np_state) and torch.equal(torch.get_rng_state(), torch_state)


# --- the solver -------------------------------------------------------------------------------


@given(seed=seeds, loss=losses, init=st.sampled_from(["lora", "random"]),
       method=st.sampled_from(["lbfgs", "bb", "lbfgsb"]))
def test_all_starts_certified_above_the_theorem_4_1_rank(seed, loss, init, method):
    """r(r+1)/2 > KN: every start ends at a point the float64 certificate proves global."""
    inst = _small_above_threshold(seed, loss)
    results = solve_bm_multistart(inst, 3, starts=4, init=init, rng=np.random.default_rng(seed), method=method,
                                  device="cpu")
    for res in results:
        assert res.status == SolveStatus.CONVERGED, res.message
        cert = certify(inst, Q=res.Q)
        assert cert.certified, cert.reason
        assert res.objective == pytest.approx(cert.objective, rel=RTOL, abs=RTOL)


@pytest.mark.parametrize("method", ["lbfgs", "bb", "gd"])
def test_batched_starts_equal_starts_run_one_by_one(method):
    """Starts never interact: the batch follows each start's own trajectory (up to BLAS roundoff),
    and the end points agree."""
    inst = build_instance(3, 4, 2, 6, 5, lam=0.05)
    Q0 = initial_factors(inst, 4, 3, "random", np.random.default_rng(0))
    few = solve_bm_multistart(inst, 4, starts=3, Q0=Q0, method=method, max_iter=10, device="cpu")
    full = solve_bm_multistart(inst, 4, starts=3, Q0=Q0, method=method, max_iter=400, device="cpu")
    for s in range(3):
        one = solve_bm_multistart(inst, 4, Q0=Q0[s], method=method, max_iter=10, device="cpu")[0]
        np.testing.assert_allclose(few[s].Q, one.Q, rtol=RTOL, atol=RTOL)
        assert few[s].iterations == one.iterations
        np.testing.assert_allclose(few[s].history, one.history, rtol=RTOL)
        one = solve_bm_multistart(inst, 4, Q0=Q0[s], method=method, max_iter=400, device="cpu")[0]
        assert one.status == full[s].status
        assert one.lifted_objective == pytest.approx(full[s].lifted_objective, rel=SOLVER_AGREEMENT_RTOL)
        np.testing.assert_allclose(one.delta, full[s].delta, atol=SOLVER_AGREEMENT_RTOL * np.abs(one.delta).max())


@given(seed=seeds, method=st.sampled_from(["lbfgs", "bb", "gd", "lbfgsb"]))
def test_same_seed_gives_identical_output(seed, method):
    inst = build_instance(seed, 3, 2, 4, 3)
    runs = [solve_bm_multistart(inst, 3, starts=2, rng=np.random.default_rng(seed), method=method, max_iter=300,
                                device="cpu") for _ in range(2)]
    for a, b in zip(*runs):
        assert np.array_equal(a.Q, b.Q) and a.history == b.history and a.iterations == b.iterations


def test_solve_result_fields(rng):
    inst = _small_above_threshold(1)
    Q0 = initial_factors(inst, 3, 2, "lora", rng)
    results = solve_bm_multistart(inst, 3, starts=2, Q0=Q0, record_every=5, device="cpu")
    for s, res in enumerate(results):
        m = inst.m
        assert res.solver == "bm" and res.status == SolveStatus.CONVERGED and res.message
        assert res.Q.shape == (m + inst.n, 3) and res.Q.dtype == np.float64
        np.testing.assert_array_equal(res.delta, res.Q[:m] @ res.Q[m:].T)
        assert res.objective == pytest.approx(inst.objective(res.delta), rel=RTOL)
        assert res.lifted_objective == pytest.approx(inst.lora_objective(res.Q), rel=RTOL)
        assert res.lifted_objective >= res.objective - RTOL                      # Lemma 2.2: F_0(u, v) ≥ L̂_λ(u vᵀ)
        assert res.grad_norm <= grad_rtol(torch.float64) * max(1.0, np.linalg.norm(res.Q))
        assert {"start": res.start} | {k: res.extra[k] for k in ("device", "method", "init", "dtype")} == \
            {"start": s, "device": "cpu", "method": "lbfgs", "init": "array", "dtype": "float64"}
        assert res.extra["evaluations"] >= res.iterations > 0 and res.solve_seconds > 0
        assert res.history[0] == pytest.approx(inst.lora_objective(Q0[s]), rel=RTOL)
        assert len(res.history) == 1 + res.iterations // 5
    assert results[0].solve_seconds == results[1].solve_seconds          # one batched run
    best = solve_bm(inst, 3, starts=2, Q0=Q0, device="cpu")
    assert best.extra["starts"] == 2
    assert best.lifted_objective == min(r.lifted_objective for r in results)


def test_scipy_lbfgsb_agrees_with_the_batched_solver_and_records_like_it(rng):
    """Method "lbfgsb" (SciPy, one start at a time): the same certified optimum as the batched L-BFGS, the same
    result fields and history conventions (Q0 first, every record_every-th iteration, the end point's norms)."""
    inst = build_instance(5, 8, 2, 7, 6, loss="cross_entropy", lam=0.05)
    Q0 = initial_factors(inst, 4, 3, "lora", rng)
    ref = solve_bm_multistart(inst, 4, starts=3, Q0=Q0, device="cpu")
    got = solve_bm_multistart(inst, 4, starts=3, Q0=Q0, method="lbfgsb", record_every=3, device="cpu")
    for a, b in zip(ref, got):
        assert b.status == SolveStatus.CONVERGED and b.extra["method"] == "lbfgsb", b.message
        assert certify(inst, Q=b.Q).certified
        assert b.objective == pytest.approx(a.objective, rel=SOLVER_AGREEMENT_RTOL)
        assert b.grad_norm <= grad_rtol(torch.float64) * max(1.0, np.linalg.norm(b.Q))
        assert b.history[0] == pytest.approx(inst.lora_objective(Q0[b.start]), rel=RTOL)
        assert len(b.history) == len(b.grad_history) == len(b.norm_history) == 1 + b.iterations // 3
        assert b.extra["evaluations"] >= b.iterations > 0


def test_scipy_lbfgsb_budgets_mask_and_domain(rng):
    inst = build_instance(0, 3, 1, 4, 4)
    res = solve_bm(inst, 3, rng=rng, method="lbfgsb", max_iter=3, device="cpu")
    assert res.status == SolveStatus.MAX_ITER and res.iterations == 3
    res = solve_bm(inst, 3, rng=rng, method="lbfgsb", time_limit=1e-9, device="cpu")
    assert res.status == SolveStatus.MAX_ITER and "time limit" in res.message and res.iterations <= 1
    mask = np.ones((8, 3))
    mask[:4, 2] = 0.0
    res = solve_bm(inst, 3, rng=rng, method="lbfgsb", mask=mask, device="cpu")
    assert np.all(res.Q[:4, 2] == 0.0)
    with pytest.raises(ValueError, match="lbfgsb.*float64 on the CPU"):
        solve_bm(inst, 3, rng=rng, method="lbfgsb", dtype=torch.float32, device="cpu")
    with pytest.raises(ValueError, match="lbfgsb.*float64 on the CPU"):
        solve_bm(inst, 3, rng=rng, method="lbfgsb", warm_dtype=torch.float32, device="cpu")


def test_gradient_descent_with_the_safe_step_is_monotone(rng):
    """The default GD step 1/L̄ (L̄ bounds ∇²F_P on the sublevel set) gives a non-increasing curve."""
    inst = build_instance(2, 4, 2, 5, 4, loss="cross_entropy", lam=0.05)
    Q0 = initial_factors(inst, 3, 2, "random", rng)
    results = solve_bm_multistart(inst, 3, starts=2, Q0=Q0, method="gd", max_iter=500, device="cpu")
    for res, eta in zip(results, safe_step(inst, Q0)):
        assert res.extra["lr"] == eta and len(res.history) == len(res.grad_history) == len(res.norm_history) == 501
        assert np.all(np.diff(res.history) <= RTOL * abs(res.history[0]))
        assert res.history[-1] < res.history[0]
        # the recorded gradient and factor norms are those of the iterates: first Q0, last the end point
        assert res.norm_history[0] == pytest.approx(np.linalg.norm(Q0[res.start]), rel=RTOL)
        assert res.norm_history[-1] == pytest.approx(np.linalg.norm(res.Q), rel=RTOL)
        assert res.grad_history[-1] == pytest.approx(res.grad_norm, rel=RTOL)


def test_divergence_is_reported_as_failed(rng):
    inst = build_instance(0, 3, 1, 4, 4)
    res = solve_bm(inst, 3, rng=rng, method="gd", lr=1e6, max_iter=200, device="cpu")
    assert res.status == SolveStatus.FAILED and "non-finite" in res.message and res.iterations < 200


def test_budgets_give_max_iter(rng):
    inst = build_instance(0, 3, 1, 4, 4)
    res = solve_bm(inst, 3, rng=rng, max_iter=3, device="cpu")
    assert res.status == SolveStatus.MAX_ITER and res.extra["evaluations"] == 3
    res = solve_bm(inst, 3, rng=rng, time_limit=1e-9, device="cpu")
    assert res.status == SolveStatus.MAX_ITER and "time limit" in res.message and res.iterations == 0


def test_float32_runs_and_is_certified_in_float64(rng):
    inst = build_instance(4, 6, 2, 8, 8, lam=0.05)
    Q0 = initial_factors(inst, 6, 2, "lora", rng)
    r32 = solve_bm_multistart(inst, 6, starts=2, Q0=Q0, dtype=torch.float32, device="cpu")
    r64 = solve_bm_multistart(inst, 6, starts=2, Q0=Q0, device="cpu")
    for a, b in zip(r32, r64):
        assert a.status == SolveStatus.CONVERGED and a.Q.dtype == np.float64 and a.extra["dtype"] == "float32"
        assert a.lifted_objective == pytest.approx(b.lifted_objective, rel=FLOAT32_OBJECTIVE_RTOL)
        assert certify(inst, Q=a.Q, tol=FLOAT32_GAP_RTOL).certified
    # a tolerance below float32 resolution is never reported as reached
    for res in solve_bm_multistart(inst, 6, starts=2, Q0=Q0, dtype=torch.float32, grad_tol=BELOW_FLOAT32_GRAD_RTOL,
                                   max_iter=300, device="cpu"):
        assert res.status in (SolveStatus.MAX_ITER, SolveStatus.INACCURATE)


def test_sensing_tensor_is_shared_not_copied_on_cpu():
    inst = build_instance(0, 3, 2, 4, 5)
    prob = TorchLoRAProblem.from_instance(inst, torch.device("cpu"), torch.float64)
    assert prob.Gmat.data_ptr() == inst.G.ctypes.data and prob.Gmat.shape == (6, 20)


# --- devices and bad inputs -------------------------------------------------------------------


def test_device_for():
    assert device_for("cpu") == torch.device("cpu")
    assert device_for("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve("auto") == device_for("auto").type and describe("cpu").startswith("cpu: ")
    with pytest.raises(ValueError, match="unknown device"):
        device_for("tpu")


@pytest.mark.gpu
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_cuda_objective_and_gradient_match_numpy(loss):
    """F_P and ∇F_P = M Q evaluated on the GPU in float64 agree with theory/ (numpy on the CPU)."""
    inst = build_instance(7, 3, 2, 4, 3, loss, perturbation="full_rank")
    Qs = np.random.default_rng(0).standard_normal((2, inst.m + inst.n, 2))
    prob = TorchLoRAProblem.from_instance(inst, torch.device("cuda"), torch.float64)
    Qt = torch.from_numpy(Qs).to("cuda")
    ev = prob.evaluate(Qt)
    assert ev.F.device.type == "cuda"
    for Q, F, g in zip(Qs, ev.F.cpu().numpy(), prob.gradient(Qt, ev).cpu().numpy()):
        assert F == pytest.approx(inst.lora_objective(Q), rel=RTOL, abs=RTOL)
        theory = optimality.lora_gradient(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, inst.P)
        np.testing.assert_allclose(g, theory, rtol=RTOL, atol=RTOL)


@pytest.mark.gpu
@pytest.mark.parametrize("method", ["lbfgs", "bb"])  # gd needs more than max_iter steps on this instance
def test_cuda_solve_is_certified_and_agrees_with_cpu(method):
    """The same starts on the GPU and the CPU end at certified optima with the same objective."""
    inst = _small_above_threshold(0)
    Q0 = initial_factors(inst, 3, 2, "random", np.random.default_rng(0))
    gpu = solve_bm_multistart(inst, 3, starts=2, Q0=Q0, method=method, device="cuda")
    cpu = solve_bm_multistart(inst, 3, starts=2, Q0=Q0, method=method, device="cpu")
    for a, b in zip(gpu, cpu):
        assert a.extra["device"].startswith("cuda") and a.Q.dtype == np.float64
        assert a.status == SolveStatus.CONVERGED, a.message
        assert certify(inst, Q=a.Q).certified
        assert a.lifted_objective == pytest.approx(b.lifted_objective, rel=SOLVER_AGREEMENT_RTOL)
    assert resolve("cuda") == "cuda" and describe("cuda").startswith("cuda: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error(rng):
    with pytest.raises(ValueError, match="CUDA is not available"):
        solve_bm(build_instance(0, 2, 1, 3, 3), 2, rng=rng, device="cuda")


@pytest.mark.parametrize("kwargs, match", [
    ({"rank": 0}, "rank"),
    ({"starts": 0}, "starts"),
    ({"init": np.ones((5, 2))}, "init array must have shape"),
    ({"init": np.ones((2, 6, 2)), "starts": 3}, "init array must have shape"),
    ({"init": np.full((6, 2), np.nan)}, "NaN"),
    ({"init": np.zeros((6, 2))}, "stationary point"),
    ({"init": "zero"}, "stationary point"),
    ({"init": "xavier"}, "unknown init"),
    ({"rng": None}, "needs rng"),
    ({"method": "adam"}, "unknown method"),
    ({"dtype": torch.float16}, "dtype"),
    ({"lr": -1.0, "method": "gd"}, "lr"),
    ({"grad_tol": 0.0}, "grad_tol"),
    ({"max_iter": -1}, "max_iter"),
    ({"record_every": 0}, "record_every"),
    ({"time_limit": 0}, "time_limit"),
])
def test_bad_inputs_raise_clear_errors(kwargs, match):
    inst = build_instance(0, 2, 1, 3, 3)
    kw = {"rank": 2, "rng": np.random.default_rng(0), "device": "cpu", **kwargs}
    with pytest.raises(ValueError, match=match):
        solve_bm_multistart(inst, kw.pop("rank"), **kw)


def test_gd_without_regularization_needs_a_step(rng):
    inst = build_instance(0, 2, 1, 3, 3, lam=0.0)
    with pytest.raises(ValueError, match="explicit lr"):
        solve_bm(inst, 2, rng=rng, method="gd", device="cpu")
    assert solve_bm(inst, 2, rng=rng, method="gd", lr=0.01, max_iter=5, device="cpu").iterations == 5
