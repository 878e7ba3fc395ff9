"""Section 6 measured in one batch (verify.experiments.gd.decay_runs, rank_protocols.measure_all)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from theory import optimality
from verify import synthetic
from verify.claims.rank_speed_check import check_tolerances
from verify.experiments import gd, rank_protocols
from verify.solvers.bm.optimizers import LBFGS_MEMORY
from verify.tolerances import GAP_RTOL, S6_MIN_RTOL_OVER_GAP, exact_rtol


@pytest.fixture
def inst(rng):
    return synthetic.gaussian(rng, 3, 2, 4, 4, lam=0.05)


def test_decay_runs_follow_the_plain_loop_with_per_start_step_and_decay(inst, rng):
    """Start s moves by Q ← Q − η_s(∇L̂ + λ_s Q); the curves hold L̂ and ‖Q‖² at Q_0 … Q_T (float64)."""
    Q0 = 0.3 * rng.standard_normal((2, inst.m + inst.n, 3))
    lr, lam, steps = np.array([0.1, 0.05]), np.array([0.05, 0.0]), 30
    curves = gd.decay_runs(inst, Q0, lr, lam, steps, "cpu")
    free = inst.with_(lam=0.0)
    for s in range(2):
        Q = Q0[s].copy()
        for t in range(steps + 1):
            np.testing.assert_allclose(curves.risk[s, t], free.lora_objective(Q), rtol=1e3 * exact_rtol(np.float64))
            np.testing.assert_allclose(curves.sq_norm[s, t], np.sum(Q * Q), rtol=1e3 * exact_rtol(np.float64))
            g = optimality.lora_gradient(free.G, free.f0, free.Y, free.loss, 0.0, Q, None)
            Q = Q - lr[s] * (g + lam[s] * Q)
    assert curves.steps == steps


def test_decay_runs_stop_once_every_target_is_reached(inst, rng, monkeypatch):
    monkeypatch.setattr(gd, "DECAY_CHECK_EVERY", 5)
    Q0 = 0.3 * rng.standard_normal((1, inst.m + inst.n, 3))
    full = gd.decay_runs(inst, Q0, np.array([0.1]), np.array([inst.lam]), 200, "cpu")
    reported = full.risk[0] + 0.5 * inst.lam * full.sq_norm[0]
    goal = reported[12]
    early = gd.decay_runs(inst, Q0, np.array([0.1]), np.array([inst.lam]), 200, "cpu", target=np.array([goal]))
    assert 12 <= early.steps <= 20 and early.steps % 5 == 0
    np.testing.assert_allclose(early.risk[0], full.risk[0, :early.steps + 1])


def test_float32_curves_agree_with_float64(inst, rng):
    Q0 = 0.3 * rng.standard_normal((1, inst.m + inst.n, 3))
    args = (np.array([0.1]), np.array([inst.lam]), 50, "cpu")
    c64 = gd.decay_runs(inst, Q0, *args)
    c32 = gd.decay_runs(inst, Q0, *args, dtype=torch.float32)
    np.testing.assert_allclose(c32.risk, c64.risk, rtol=1e-5)


def test_paper_protocol_decays_by_lr_times_wd_per_step(inst):
    """The released code: SGD on the summed loss with lr, then param −= lr·wd·param. On the mean loss
    that is η = lr·N with decay lr·wd = η·λ/N: protocol (c) trains with λ/N, (d) with none."""
    c, d = rank_protocols.paper_protocols("paper")
    lr = rank_protocols.PAPER_LR
    eta = lr * inst.N
    assert eta * c.dynamics_lam(inst) == pytest.approx(lr * inst.lam)
    assert d.dynamics_lam(inst) == 0.0 and d.objective_lam(inst) == inst.lam and not d.ruled and c.ruled


def test_tolerances_below_the_certificate_resolution_are_refused():
    check_tolerances((1e-1, S6_MIN_RTOL_OVER_GAP * GAP_RTOL))
    with pytest.raises(ValueError, match="GAP_RTOL"):
        check_tolerances((1e-1, GAP_RTOL))


def test_float32_warm_phase_then_float64_certifies(rng, monkeypatch):
    """solve_bm with warm_dtype=float32: a start whose float32 end point the float64 certificate proves optimal
    ends there (its gradient norm recomputed in float64); the others continue in float64 from their float32 end
    points to the float64 stopping test — one start of each in one batch (start 1's warm certificate withheld)."""
    from verify.certify import certify
    from verify.solvers.bm import driver, solve_bm_multistart
    inst = synthetic.gaussian(rng, 6, 2, 8, 8, lam=0.05)
    real = driver._certified_warm_ends
    warm_ends = {}

    def withhold_start_1(inst_, warm):
        ok, g64 = real(inst_, warm)
        warm_ends.update(Q=warm.Q.copy(), iterations=warm.iterations.copy(), ok=ok.copy())
        return ok & (np.arange(len(ok)) != 1), g64

    monkeypatch.setattr(driver, "_certified_warm_ends", withhold_start_1)
    res = solve_bm_multistart(inst, 4, starts=2, init="lora", rng=np.random.default_rng(0), device="cpu",
                              warm_dtype=torch.float32)
    assert warm_ends["ok"][0], "the float32 end point of start 0 should certify in float64 on this instance"
    done, rest = res
    assert done.extra["warm_certified"] and not rest.extra["warm_certified"]
    np.testing.assert_array_equal(done.Q, warm_ends["Q"][0])
    assert done.iterations == warm_ends["iterations"][0] and "warm phase" in done.message
    assert done.grad_norm == pytest.approx(certify(inst, Q=done.Q).first_order_residual)
    assert rest.iterations > warm_ends["iterations"][1] and len(rest.history) == rest.iterations + 1
    assert rest.grad_norm <= driver.grad_rtol(torch.float64) * max(1.0, np.linalg.norm(rest.Q))
    assert all(r.extra["warm_dtype"] == "float32" and r.status.trusted and certify(inst, Q=r.Q).certified for r in res)


@pytest.mark.parametrize("record_every", [1, 3])
def test_two_phase_history_keeps_every_record(monkeypatch, record_every):
    """A warm phase continued in float64 keeps every recorded entry of both phases: the first phase's last entry
    is dropped only when it is the end point that the second phase re-evaluates (record_every 1 and 3; with 3 the
    warm phase ends between two records on this instance, the case an earlier join lost an entry in)."""
    from verify.solvers.bm import driver, solve_bm
    inst = synthetic.gaussian(np.random.default_rng(0), 6, 2, 8, 8, lam=0.05)
    phases = []
    real_run = driver._run

    def run(*args):
        trace = real_run(*args)
        phases.append((int(trace.iterations[0]), len(trace.history[0])))
        return trace

    monkeypatch.setattr(driver, "_run", run)
    monkeypatch.setattr(driver, "_certified_warm_ends", lambda inst_, warm: (np.zeros(len(warm.Q), bool), warm.gnorm))
    res = solve_bm(inst, 4, starts=1, init="lora", rng=np.random.default_rng(0), device="cpu",
                   warm_dtype=torch.float32, record_every=record_every)
    (i1, n1), (i2, n2) = phases
    assert record_every == 1 or i1 % record_every != 0
    assert n1 == 1 + i1 // record_every and n2 == 1 + i2 // record_every
    assert len(res.history) == n1 + n2 - (i1 % record_every == 0) and res.iterations == i1 + i2


@pytest.mark.parametrize("n_pairs", [4, LBFGS_MEMORY + 3])
def test_lbfgs_compact_form_equals_the_bfgs_recursion(rng, n_pairs):
    """The compact L-BFGS H g equals the dense BFGS inverse update from H₀ = γI over the accepted pairs among the
    last LBFGS_MEMORY pushed, a rejected pair (zeros, not curvature) and an empty slot being inert — with fewer
    pairs than slots and after the ring buffer has wrapped around."""
    from verify.solvers.bm.optimizers import _LBFGSRule
    D = 6
    rule = _LBFGSRule(torch.ones(1, dtype=torch.float64))
    pushed = []
    for k in range(n_pairs):
        s = rng.standard_normal(D)
        y = s + 0.3 * rng.standard_normal(D)
        accepted = k % 5 != 2
        rule.push(torch.tensor(s)[None], torch.tensor(y)[None], torch.tensor([accepted]))
        pushed.append((s, y, accepted))
    pairs = [(s, y) for s, y, ok in pushed[-LBFGS_MEMORY:] if ok]
    gamma = pairs[-1][0] @ pairs[-1][1] / (pairs[-1][1] @ pairs[-1][1])
    rule.gamma = torch.tensor([gamma])
    H = gamma * np.eye(D)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        V = np.eye(D) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.standard_normal((1, D, 1))
    np.testing.assert_allclose(rule._apply_inverse_hessian(torch.tensor(g)).numpy()[0, :, 0], H @ g[0, :, 0],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("hint", [0, 1, 3])
def test_partial_svd_threshold_equals_the_full_one(rng, hint):
    """The partial SVD prox (any rank hint, too small included) equals the full-SVD prox."""
    from verify.solvers.prox import _full_svt, svt
    Z = rng.standard_normal((80, 72)) + 30 * np.outer(rng.standard_normal(80), rng.standard_normal(72)) / 9
    tau = np.sort(np.linalg.svd(Z, compute_uv=False))[::-1][3] * 0.999  # four values above τ
    X, nuc, k = svt(Z, tau, hint)
    Xf, nucf, kf = _full_svt(Z, tau)
    assert k == kf == 4
    np.testing.assert_allclose(X, Xf, atol=1e-9)
    assert nuc == pytest.approx(nucf, rel=1e-10)
