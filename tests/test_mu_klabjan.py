"""Mu & Klabjan: the step rule, the bounds of ``theory.convergence_rate`` and the gradient descent of
``verify.experiments.mu_klabjan`` on tiny instances."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from theory.convergence_rate import (STEP_CONSTANT, apriori_grad_bound, apriori_norm_bound, ascent_pair_margin,
                                     decrease_slack, fit_window, lemma_3_3_bound, smoothness_constant, step_size,
                                     theorem_3_5_bound, transcribed_breaking_units)
from theory.linearized_model import sensing_matrix, sensing_norm_squared
from verify.claims.mu_klabjan import check_readings, rate_fits
from verify.claims.mu_klabjan_rule import RuleCheck, step_rule_verdict
from verify.experiments.mu_klabjan import (ascent_start, in_units, instance_smoothness, lora_starts, run_full_gd,
                                          run_rule)
from verify.results import Verdict
from verify.solvers.bm import torch_lora_objective
from verify.tolerances import exact_rtol

from strategies import build_instance, instance_specs, seeds, sizes

lams = st.sampled_from([0.0, 0.05])


def test_step_rule_formula():
    """Lemma 3.4: η = min{1/(4√2 L (‖V‖² + ‖∇𝓛‖)), 1}; λ enters as ‖∇𝓛‖ + λ; capped at 1."""
    assert STEP_CONSTANT == pytest.approx(4 * np.sqrt(2))
    assert step_size(3.0, 2.0, 0.5) == pytest.approx(1 / (4 * np.sqrt(2) * 0.5 * 5.0))
    assert step_size(3.0, 2.0, 0.5, lam=1.0) == pytest.approx(1 / (4 * np.sqrt(2) * 0.5 * 6.0))
    assert step_size(1e-3, 1e-3, 1.0) == 1.0
    np.testing.assert_allclose(step_size(np.array([1.0, 4.0]), np.array([1.0, 0.0]), 2.0),
                               [1 / (8 * np.sqrt(2) * 2), 1 / (8 * np.sqrt(2) * 4)])


def test_step_rule_readings():
    """The note's formula, max(L, 1) in place of L, and L‖V‖² + ‖∇𝓛‖; they agree at L = 1; unknown readings raise."""
    r = 4 * np.sqrt(2)
    assert step_size(3.0, 2.0, 0.5, reading="L_at_least_1") == pytest.approx(1 / (r * 5.0))
    assert step_size(3.0, 2.0, 2.0, reading="L_at_least_1") == pytest.approx(1 / (r * 2.0 * 5.0))
    assert step_size(3.0, 2.0, 0.5, lam=1.0, reading="unit_consistent") == pytest.approx(1 / (r * (1.5 + 3.0)))
    assert len({float(step_size(3.0, 2.0, 1.0, reading=k)) for k in ("transcribed", "L_at_least_1",
                                                                     "unit_consistent")}) == 1
    with pytest.raises(ValueError, match="reading"):
        step_size(1.0, 1.0, 1.0, reading="paper")


def test_breaking_units_put_the_first_step_where_asked():
    """ca·σ₁ = excess·3/2 and the transcribed rule's first step is capped at 1 with a factor 2 to spare."""
    L, sigma, g, nu = 0.4, 0.6, 1.1, 1e-2
    a, c = transcribed_breaking_units(L, sigma, g, nu, 2.0)
    assert c * a * sigma == pytest.approx(3.0)
    assert STEP_CONSTANT * c * a * a * L * (nu + c * a * g) == pytest.approx(0.5)
    assert step_size(nu, c * a * g, c * a * a * L) == 1.0


def test_in_units_is_the_same_problem():
    """𝓛'(δ) = c·𝓛(aδ) with non-zero offsets f0: its value, gradient ca·∇𝓛(aδ) and L' = ca²L; the cross-entropy
    and λ ≠ 0 are refused."""
    rng = np.random.default_rng(0)
    inst = build_instance(3, 4, 2, 5, 6, lam=0.0)
    inst = inst.with_(f0=rng.standard_normal(inst.f0.shape))
    delta, new = rng.standard_normal((5, 6)), in_units(inst, 0.3, 7.0)
    assert new.risk(delta) == pytest.approx(7.0 * inst.risk(0.3 * delta), rel=1e-12)
    np.testing.assert_allclose(new.gradient(delta), 7.0 * 0.3 * inst.gradient(0.3 * delta), rtol=1e-12)
    assert instance_smoothness(new) == pytest.approx(7.0 * 0.09 * instance_smoothness(inst))
    with pytest.raises(ValueError, match="squared"):
        in_units(build_instance(3, 4, 2, 5, 6, loss="cross_entropy", lam=0.0), 0.3, 7.0)
    with pytest.raises(ValueError, match="λ = 0"):
        in_units(inst.with_(lam=0.1), 0.3, 7.0)


def test_step_rule_verdict_needs_every_comparison_to_agree():
    """mu_klabjan_step_rule: the transcribed run's VIOLATED stands only when its first step matches the first-order
    margin and every comparison run gives the verdict it must; otherwise INCONCLUSIVE, naming what disagreed."""
    V, H = Verdict.VIOLATED, Verdict.HOLDS
    bad = RuleCheck(V, (-3.01, 2.9), -3.0001, 1.0)
    runs = {"original units": (RuleCheck(H, (2.6,), 2.6, 0.4), H), "past": (RuleCheck(V, (-0.3,), -0.3, 1.0), V)}
    assert step_rule_verdict(bad, -3.0, runs) == (V, -3.01, [])
    verdict, _, failed = step_rule_verdict(bad, -3.0, runs | {"original units": (RuleCheck(V, (-1.0,), -1.0, 1.0), H)})
    assert verdict is Verdict.INCONCLUSIVE and failed == ["original units"]
    assert step_rule_verdict(bad, -2.9, runs)[0] is Verdict.INCONCLUSIVE  # the first step off the arithmetic
    assert step_rule_verdict(RuleCheck(V, (-3.0,), -3.0, 0.5), -3.0, runs)[0] is Verdict.INCONCLUSIVE  # not capped


@given(seed=seeds, excess=st.sampled_from([0.5, 0.9, 1.1, 2.0]))
def test_the_first_step_from_the_ascent_pair_has_the_first_order_margin(seed, excess):
    """Lemma 3.4's margin of the transcribed rule's first step from the ascent pair is 3 − 2ησ₁ to O(‖V₀‖²), in
    units where ησ₁ = excess·3/2 (negative past 1): the arithmetic mu_klabjan_step_rule's verdict rests on;
    max(L, 1) and the unit-consistent reading keep the decrease there."""
    base = build_instance(seed, 4, 2, 5, 6, lam=0.0)
    S0 = base.gradient(np.zeros((5, 6)))
    sigma = np.linalg.svd(S0, compute_uv=False)[0]
    a, c = transcribed_breaking_units(instance_smoothness(base), sigma, float(np.linalg.norm(S0)), 1e-4, excess)
    inst = in_units(base, a, c)
    Q0 = ascent_start(inst, 1e-4, 2)[None]
    run = run_rule(inst, Q0, 1)
    margin = decrease_slack(run.J, run.J_next, run.step, run.grad_sq) / (0.25 * run.step * run.grad_sq)
    assert run.eta[0, 0] == 1.0
    assert margin[0, 0] == pytest.approx(ascent_pair_margin(1.0, c * a * sigma), abs=1e-2)
    for reading in ("L_at_least_1", "unit_consistent"):
        safe = run_rule(inst, Q0, 3, reading=reading)
        assert np.all(decrease_slack(safe.J, safe.J_next, safe.step, safe.grad_sq) >= 0)


def test_claims_run_the_second_reading_only_where_L_is_below_one():
    """check_readings: with L < 1 the max(L, 1) runs are made and summarised (their a-priori bound uses their own,
    smaller steps: it is looser); with L ≥ 1 the two readings are one rule."""
    inst = build_instance(0, 4, 2, 5, 5, loss="cross_entropy", lam=0.0)
    Q0 = lora_starts(inst, (1, 2), 1.0, np.random.default_rng(0))
    assert instance_smoothness(inst) < 1
    verdict, _, run, checks, other = check_readings(inst, Q0, 30, "cpu")
    assert run.reading == "transcribed" and other["verdict"] == verdict.value == "HOLDS"
    assert len(other["η_0, η_T per start"]) == 2 and all(e0 < 1 for e0, _ in other["η_0, η_T per start"])
    loose = apriori_grad_bound(1.0, 1.0, 0.0, 0.1, 5, reading="L_at_least_1")
    assert np.all(loose > apriori_grad_bound(1.0, 1.0, 0.0, 0.1, 5))
    big = inst.with_(G=inst.G * 10.0)
    assert instance_smoothness(big) >= 1
    assert "same rule" in check_readings(big, Q0, 5, "cpu")[4]


def test_theorem_3_5_bound_is_the_running_sum():
    eta = np.array([0.5, 0.25, 0.25])
    np.testing.assert_allclose(theorem_3_5_bound(2.0, 0.0, eta), [16.0, 8.0 / 0.75, 8.0])


def test_smoothness_constant_is_the_largest_hessian_eigenvalue_for_the_squared_loss():
    """𝓛(δ) = (1/N)‖A(δ) − y‖²: ∇²𝓛 = (2/N) AᵀA, so L = 2‖A‖²_op/N exactly."""
    inst = build_instance(3, 4, 2, 3, 5)
    A = sensing_matrix(inst.G)
    exact = 2.0 * np.linalg.eigvalsh(A.T @ A)[-1] / inst.N
    assert instance_smoothness(inst) == pytest.approx(exact, rel=1e-10)
    assert smoothness_constant(2.0, sensing_norm_squared(inst.G), inst.N) == pytest.approx(exact, rel=1e-10)


@given(spec=instance_specs(lam=lams), seed=seeds, scale=st.sampled_from([1e-2, 1.0, 10.0]))
def test_lemma_3_3_upper_bound_holds(spec, seed, scale):
    """Lemma 3.3 (Frobenius norms): J(V + D) ≤ J(V) + ⟨∇J(V), D⟩ + √2L‖D‖²‖V‖² + √2L‖D‖³‖V‖ + (√2L/4)‖D‖⁴
    + ‖∇𝓛‖‖D‖² for random V and D of several scales; with weight decay λ the last term reads (‖∇𝓛‖ + λ/2)‖D‖²,
    as the claims read it."""
    inst = spec.build()
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((inst.m + inst.n, 2))
    D = scale * rng.standard_normal(V.shape)
    Vt = torch.tensor(V, requires_grad=True)
    J = torch_lora_objective(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Vt)
    (g,) = torch.autograd.grad(J, Vt)
    gradL = np.linalg.norm(inst.gradient(V[:inst.m] @ V[inst.m:].T)) + 0.5 * inst.lam
    bound = lemma_3_3_bound(float(J.detach()), float(np.sum(g.numpy() * D)), np.linalg.norm(D), np.linalg.norm(V), gradL,
                            instance_smoothness(inst))
    assert inst.lora_objective(V + D) <= bound + exact_rtol(np.float64) * max(1.0, abs(bound))


@given(spec=instance_specs(lam=lams), seed=seeds)
def test_rule_gives_the_sufficient_decrease_and_the_norm_bound(spec, seed):
    """Lemma 3.4 at every step of a short run, the gradient equal to autograd's, and (λ = 0) ‖V_t‖² below
    ``apriori_norm_bound``."""
    inst = spec.build()
    Q0 = lora_starts(inst, (1, 2), 1.0, np.random.default_rng(seed))
    run = run_rule(inst, Q0, 40)
    tol = exact_rtol(np.float64) * np.maximum(1.0, np.abs(run.J))
    assert np.all(decrease_slack(run.J, run.J_next, run.step, run.grad_sq) >= -tol)
    Qt = torch.tensor(Q0[1], requires_grad=True)
    (g,) = torch.autograd.grad(torch_lora_objective(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Qt), Qt)
    assert float(torch.sum(g * g)) == pytest.approx(run.grad_sq[1, 0], rel=1e-9, abs=1e-14)
    if inst.lam == 0:
        gap = run.J[:, :1]
        bound = apriori_norm_bound(run.V_sq[:, :1], gap, run.L, np.arange(40))
        assert np.all(run.V_sq <= bound * (1 + 1e-12))


@given(seed=seeds, N=sizes)
def test_padding_with_zero_columns_changes_nothing(seed, N):
    """A rank-1 start padded with zero columns runs exactly as the unpadded one (batched ranks are exact)."""
    inst = build_instance(seed, N, 2, 3, 4, loss="cross_entropy", lam=0.0)
    Q = lora_starts(inst, (1, 3), 1.0, np.random.default_rng(seed))
    padded, alone = run_rule(inst, Q, 15), run_rule(inst, Q[:1, :, :1], 15)
    np.testing.assert_allclose(padded.J[0], alone.J[0], rtol=1e-12)
    assert padded.ranks == (1, 3)


def test_multiplied_step_breaks_the_decrease():
    """The near miss's mechanism: a step far beyond the rule's (×512) breaks Lemma 3.4 on a small instance."""
    inst = build_instance(0, 4, 2, 5, 5, loss="cross_entropy", lam=0.0)
    run = run_rule(inst, lora_starts(inst, (2,), 1.0, np.random.default_rng(0)), 30, multiplier=512.0)
    assert np.min(decrease_slack(run.J, run.J_next, run.step, run.grad_sq)) < 0


def test_full_fine_tuning_stays_below_the_descent_lemma():
    inst = build_instance(1, 4, 2, 5, 5, loss="cross_entropy", lam=0.0)
    g2, F0 = run_full_gd(inst, 200)
    T = np.arange(1, 201)
    assert np.all(np.minimum.accumulate(g2) <= 2 * instance_smoothness(inst) * F0 / T)


@pytest.mark.parametrize("rate,curve", [("1/T", lambda T: 3.0 / T), ("1/logT", lambda T: 3.0 / np.log(T))])
def test_fit_window_picks_the_planted_rate(rate, curve):
    T = np.unique(np.geomspace(2, 5000, 40).astype(int))
    fit = fit_window(T, curve(T.astype(float)))
    assert fit["better"] == rate
    assert fit["fits"][rate][0] == pytest.approx(3.0)
    assert fit["fits"][rate][1] == pytest.approx(0.0, abs=1e-12)


def test_curvature_along_the_gradient_matches_a_difference_of_gradients():
    """h = gᵀ∇²J g/‖g‖² by forward-mode autodiff against a central difference of the analytic gradient."""
    import torch
    from verify.experiments.mu_klabjan import curvature_along
    from verify.solvers.bm import TorchLoRAProblem
    inst = build_instance(2, 4, 2, 5, 5, loss="cross_entropy", lam=0.01)
    prob = TorchLoRAProblem.from_instance(inst, device="cpu")
    Q = torch.as_tensor(lora_starts(inst, (1, 3), 1.0, np.random.default_rng(2)))
    g = prob.gradient(Q, prob.evaluate(Q))
    tau = 1e-6
    grad = lambda X: prob.gradient(X, prob.evaluate(X))  # noqa: E731
    fd = torch.sum(g * (grad(Q + tau * g) - grad(Q - tau * g)), dim=(1, 2)) / (2 * tau * torch.sum(g * g, dim=(1, 2)))
    np.testing.assert_allclose(curvature_along(prob, Q, g).numpy(), fd.numpy(), rtol=1e-5, atol=1e-9)


def test_curvature_probe_keeps_the_rule_run_and_records_the_probe_step():
    """The near miss probes a step past 3/(2h_t) at every point of the rule's own run: J_t is the rule's, the
    recorded step is 1.65/h_t where h_t > 0 (ε = 0.1), and some probe breaks the decrease."""
    from verify.tolerances import MK_NEAR_CURVATURE_EXCESS
    inst = build_instance(0, 4, 2, 5, 5, loss="cross_entropy", lam=0.01)
    Q = lora_starts(inst, (2,), 1.0, np.random.default_rng(0))
    rule, probed = run_rule(inst, Q, 40), run_rule(inst, Q, 40, beyond_curvature=MK_NEAR_CURVATURE_EXCESS)
    np.testing.assert_allclose(probed.J, rule.J, rtol=1e-12)
    h = probed.curvature
    assert np.all(np.isnan(rule.curvature)) and np.any(h > 0)
    np.testing.assert_allclose(probed.step[h > 0], (1 + MK_NEAR_CURVATURE_EXCESS) * 1.5 / h[h > 0], rtol=1e-12)
    assert np.min(decrease_slack(probed.J, probed.J_next, probed.step, probed.grad_sq)[h > 0]) < 0


def test_rate_fits_says_which_rate_fits_and_when_neither_does():
    T = np.arange(1, 3001, dtype=float)
    assert rate_fits(5.0 / T)["summary"] == "c·1/T fits better on every horizon and window"
    assert rate_fits(5.0 / np.log(T + 1.0))["summary"] == "c·1/logT fits better on every horizon and window"
    assert rate_fits(5.0 / T ** 2)["summary"].startswith("INCONCLUSIVE: neither rate fits")
    assert rate_fits(np.full(T.size, 5.0))["summary"].startswith("INCONCLUSIVE: the curve is flat")
