"""Tests of the theory modules for the remaining results and of the exact population model.

Figure 1 toy examples, Corollary 4.2, Lemma C.4 / Theorem C.6 / Theorem 5.1, Kim–Kim–Ryu's
"fails loudly" theorem, Mu–Klabjan's rates, and ``verify.population``. Sizes and seeds are drawn
by hypothesis; arrays are built from them with numpy Generators.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize
from scipy.stats import binom
from strategies import build_instance, instance_specs, perturbation_kinds, seeds

from theory import approximation as approx
from theory import convergence_rate as rate
from theory import fails_loudly as fl
from theory import generalization as gen
from theory import toy_examples as toy
from theory.lemma_2_2 import balanced_lift
from theory.linearized_model import apply_A, empirical_risk, nuclear_norm, risk_gradient
from theory.losses import CrossEntropyLoss
from theory.optimality import least_squares_optimum
from theory.thresholds import existence_rank_bound
from verify import population as pop
from verify.instance import InstanceError
from verify.tolerances import (
    CVXPY_AGREEMENT_RTOL,
    FD_RTOL,
    FD_STEP,
    RANK1_GRID_ATOL,
    SAMPLING_SIGMAS,
    TOY_MEMBERSHIP_TOL,
    exact_rtol,
)

RTOL = exact_rtol(np.float64)
#: a grid over the rank-1 directions of R^{2×2}, fine enough to come within RANK1_GRID_ATOL of the infimum
GRID_POINTS = 721


# Figure 1 ------------------------------------------------------------------------------------
@given(seed=seeds)
def test_toy_instances_reproduce_the_papers_formulas(seed):
    rng = np.random.default_rng(seed)
    for which, n_ex in zip(toy.TOY_EXAMPLES, (1, 2, 3)):
        G, f0, Y = toy.toy_instance(which)
        assert G.shape == (n_ex, 1, 2, 2) and f0.shape == Y.shape == (n_ex, 1)
        delta = 3.0 * rng.standard_normal((2, 2))
        formula = toy.toy_risk_formula(which, delta)
        assert empirical_risk(G, f0, Y, "squared", delta) == pytest.approx(formula, rel=RTOL, abs=RTOL)
        assert np.mean(toy.toy_residuals(which, delta) ** 2) == pytest.approx(formula, rel=RTOL, abs=RTOL)


def test_toy_global_minimum_value_and_least_rank():
    for which, least_rank in zip(toy.TOY_EXAMPLES, (0, 1, 2)):
        G, f0, Y = toy.toy_instance(which)
        assert least_squares_optimum(G, f0, Y) == pytest.approx(toy.global_min_value(which), abs=RTOL)
        delta = toy.lowest_rank_global_minimizer(which)
        assert toy.toy_risk_formula(which, delta) == toy.global_min_value(which)
        assert toy.is_global_min(which, delta, tol=0.0)
        assert np.linalg.matrix_rank(delta) == least_rank <= existence_rank_bound(G.shape[0])


def test_toy_membership_tests_reject_planted_wrong_points():
    for which in toy.TOY_EXAMPLES:
        off = toy.lowest_rank_global_minimizer(which) + np.array([[0.0, 1e-3], [0.0, 0.0]])
        assert not toy.is_global_min(which, off, tol=TOY_MEMBERSHIP_TOL)
    assert not toy.is_rank_one(np.eye(2), tol=TOY_MEMBERSHIP_TOL)
    rank2 = np.array([[1.0, 2.0], [2.0, -4.0]])   # rank 2, x + y ≠ 0
    assert not toy.is_global_min("b", rank2, tol=TOY_MEMBERSHIP_TOL)


@given(seed=seeds)
def test_toy_a_rank1_minima_form_a_curve_in_the_slice(seed):
    x = 4.0 * np.random.default_rng(seed).standard_normal(5)
    for delta, xi in zip(toy.rank1_global_minima("a", x), x):
        assert delta[0, 0] == 1.0 and delta[0, 1] == xi
        assert toy.is_global_min("a", delta, tol=0.0)
        assert toy.is_rank_one(delta, tol=0.0) and np.linalg.matrix_rank(delta) == 1


def test_toy_b_rank1_minima_are_two_points():
    points = toy.rank1_global_minima("b")
    assert points.shape == (2, 2, 2)
    for delta in points:
        assert toy.is_global_min("b", delta, tol=0.0) and toy.is_rank_one(delta, tol=0.0)
    # the slice's line of minima [[1, x], [−x, −4]] meets det = 0 where x² − 4 = 0
    roots = np.sort(np.roots([1.0, 0.0, -4.0]).real)
    np.testing.assert_allclose(np.sort(points[:, 0, 1]), roots, rtol=RTOL)
    with pytest.raises(ValueError):
        toy.rank1_global_minima("b", np.array([0.0]))
    with pytest.raises(ValueError):
        toy.rank1_global_minima("a")


def _rank1_grid_minimum(which):
    """min of L̂ over δ = s a bᵀ, a, b unit vectors on a grid, s ∈ R exact (a 1-D least squares)."""
    G, f0, Y = toy.toy_instance(which)
    theta = np.linspace(0.0, np.pi, GRID_POINTS)
    unit = np.stack([np.cos(theta), np.sin(theta)], axis=1)             # (T, 2)
    c = np.einsum("iab,sa,tb->sti", G[:, 0], unit, unit)                # ⟨G_i, a bᵀ⟩
    target = (Y - f0)[:, 0]
    norm_sq = np.sum(c * c, axis=-1)
    proj = np.einsum("sti,i->st", c, target) ** 2
    best_sq = np.divide(proj, norm_sq, out=np.zeros_like(proj), where=norm_sq > 0)  # c = 0: s is free
    return float(np.min(np.sum(target ** 2) - best_sq)) / G.shape[0]


def test_toy_c_has_no_rank1_global_minimum_but_a_rank2_one():
    inf_value, argmin = toy.rank1_infimum("c")
    assert inf_value == pytest.approx(1.0 / 3.0, rel=RTOL) and inf_value > toy.global_min_value("c")
    assert toy.toy_risk_formula("c", argmin) == pytest.approx(inf_value, rel=RTOL)
    assert np.linalg.matrix_rank(argmin) == 1
    grid = _rank1_grid_minimum("c")
    assert inf_value * (1 - RTOL) <= grid <= inf_value + RANK1_GRID_ATOL
    # multi-start local search over factors a bᵀ never goes below the closed form
    rng = np.random.default_rng(0)
    risk = lambda ab: toy.toy_risk_formula("c", np.outer(ab[:2], ab[2:]))  # noqa: E731
    found = min(minimize(risk, 3.0 * rng.standard_normal(4), method="BFGS").fun for _ in range(20))
    assert found >= inf_value * (1 - RTOL) - RTOL
    assert found == pytest.approx(inf_value, abs=RANK1_GRID_ATOL)
    # in the slice w = 1, every global minimum [[1, x], [−x, 4]] has det = 4 + x² ≥ 4
    assert toy.rank1_global_minima("c").shape == (0, 2, 2)
    for x in np.linspace(-5.0, 5.0, 11):
        delta = np.array([[1.0, x], [-x, 4.0]])
        assert toy.is_global_min("c", delta, tol=0.0) and not toy.is_rank_one(delta, tol=1.0)
    rank2 = toy.lowest_rank_global_minimizer("c")
    assert toy.is_global_min("c", rank2, tol=0.0) and np.linalg.matrix_rank(rank2) == 2


def test_toy_a_and_b_rank1_infimum_is_the_global_minimum():
    for which in ("a", "b"):
        value, argmin = toy.rank1_infimum(which)
        assert value == toy.global_min_value(which) == toy.toy_risk_formula(which, argmin)
        assert np.linalg.matrix_rank(argmin) == 1
        assert _rank1_grid_minimum(which) <= RANK1_GRID_ATOL


# Corollary 4.2 -------------------------------------------------------------------------------
def test_corollary_4_2_bound_arithmetic():
    assert approx.corollary_4_2_bound(1.5, 0.1, 3.0) == pytest.approx(2.1, rel=RTOL)
    assert approx.corollary_4_2_bound(0.0, 0.0, 5.0) == 0.0
    with pytest.raises(ValueError):
        approx.corollary_4_2_bound(1.0, -0.1, 1.0)


@given(spec=instance_specs(N=st.integers(1, 4), K=st.integers(1, 3), m=st.integers(2, 5), n=st.integers(2, 5),
                           perturbation=perturbation_kinds), r=st.integers(1, 4))
def test_corollary_4_2_links_that_hold_for_every_point(spec, r):
    inst, rng = spec.build(), spec.rng()
    m, n, P = inst.m, inst.n, inst.P
    Q_hat = rng.standard_normal((m + n, r))
    delta = rng.standard_normal((m, 2)) @ rng.standard_normal((2, n))
    c = approx.corollary_4_2_chain(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q_hat, delta, P)
    tol = RTOL * (1.0 + abs(c.perturbed_lora) + abs(c.cauchy_schwarz_bound))
    assert c.lhs <= c.unperturbed_lora + tol
    assert c.unperturbed_lora <= c.perturbed_lora + tol
    assert c.perturbed_at_optimum <= c.cauchy_schwarz_bound + tol
    Q_star = balanced_lift(delta)
    assert 0.5 * np.sum(Q_star ** 2) == pytest.approx(nuclear_norm(delta), rel=RTOL)
    assert c.perturbed_at_optimum == pytest.approx(c.min_value + np.sum(Q_star * (P @ Q_star)), rel=RTOL)
    assert c.perturbation_norm == pytest.approx(spec.eps, rel=RTOL)


# Lemma C.4, Theorem C.6, Theorem 5.1 ----------------------------------------------------------
def _random_nuclear_ball_points(rng, m, n, D, count):
    """Random points with ‖δ‖_* = D: dense ones and rank-1 ones (the extreme points)."""
    for k in range(count):
        delta = rng.standard_normal((m, n)) if k % 2 else np.outer(rng.standard_normal(m), rng.standard_normal(n))
        yield D * delta / nuclear_norm(delta)


@given(spec=instance_specs(N=st.integers(1, 5), K=st.integers(1, 3), m=st.integers(1, 5), n=st.integers(1, 5),
                           loss=st.just("squared")),  # only G is used
       D=st.integers(1, 10))
def test_lemma_c4_sup_is_the_dual_norm_and_is_attained(spec, D):
    G, rng = spec.build().G, spec.rng()
    N, K, m, n = G.shape
    signs = rng.choice([-1.0, 1.0], size=(N, K))
    sup = gen.rademacher_sup(G, signs, D)
    linear = lambda delta: float(np.sum(signs * apply_A(G, delta))) / N  # noqa: E731
    best = gen.rademacher_argmax(G, signs, D)
    assert nuclear_norm(best) == pytest.approx(D, rel=RTOL)
    assert linear(best) == pytest.approx(sup, rel=RTOL, abs=RTOL)
    for delta in _random_nuclear_ball_points(rng, m, n, D, 50):
        assert linear(delta) <= sup * (1 + RTOL) + RTOL
    batch = rng.choice([-1.0, 1.0], size=(3, N, K))
    np.testing.assert_allclose(gen.rademacher_sup(G, batch, D),
                               [gen.rademacher_sup(G, s, D) for s in batch], rtol=RTOL)


def test_lemma_c4_sup_matches_a_convex_solver(rng):
    N, K, m, n, D = 4, 2, 4, 3, 2.5
    G = build_instance(0, N, K, m, n).G
    signs = rng.choice([-1.0, 1.0], size=(N, K))
    delta = cp.Variable((m, n))
    objective = cp.sum(cp.multiply(gen.signed_sum(G, signs), delta)) / N
    problem = cp.Problem(cp.Maximize(objective), [cp.normNuc(delta) <= D])
    problem.solve(solver=cp.CLARABEL)
    assert problem.value == pytest.approx(gen.rademacher_sup(G, signs, D), rel=CVXPY_AGREEMENT_RTOL)


@given(spec=instance_specs(N=st.integers(1, 5), K=st.integers(1, 3), m=st.integers(1, 4), n=st.integers(1, 4),
                           loss=st.just("squared")),  # only G is used
       D=st.integers(1, 5))
def test_exact_rademacher_complexity_is_below_the_lemma_c4_bound(spec, D):
    G = spec.build().G
    N, K, m, n = G.shape
    signs = gen.all_sign_patterns(N, K)
    assert signs.shape == (2 ** (N * K), N, K) and len({s.tobytes() for s in signs}) == 2 ** (N * K)
    exact = gen.empirical_rademacher(G, signs, D)
    R = gen.sensing_radius(G)
    assert R == pytest.approx(max(np.linalg.norm(G[i, j]) for i in range(N) for j in range(K)), rel=RTOL)
    assert exact <= gen.rademacher_frobenius_bound(G, D) * (1 + RTOL)
    assert gen.rademacher_frobenius_bound(G, D) <= gen.rademacher_bound(R, D, K, N) * (1 + RTOL)


@given(seed=seeds, N=st.integers(1, 20), K=st.integers(2, 6), scale=st.integers(0, 4))
def test_cross_entropy_gradient_norm_is_at_most_sqrt2(seed, N, K, scale):
    rng = np.random.default_rng(seed)
    logits = 10.0 ** scale * rng.standard_normal((N, K))
    labels = rng.integers(0, K, N)
    norms = np.linalg.norm(CrossEntropyLoss().grad(logits, labels), axis=1)
    assert np.all(norms <= gen.CROSS_ENTROPY_LIPSCHITZ * (1 + RTOL))
    assert CrossEntropyLoss().lipschitz() == gen.CROSS_ENTROPY_LIPSCHITZ


def test_cross_entropy_gradient_bound_is_approached():
    logits = np.array([[0.0, 50.0]])  # all mass on the wrong class: ∇ℓ ≈ (−1, 1)
    norm = np.linalg.norm(CrossEntropyLoss().grad(logits, np.array([0])))
    assert norm == pytest.approx(gen.CROSS_ENTROPY_LIPSCHITZ, rel=RTOL)


def test_theorem_c6_hand_computed_values():
    # ε = 1, K = 2, G = √2, R = 1, N = 8, η = e⁻¹: confidence factor 3, λ = 3·2·√2/√8·3 = 9
    eta = float(np.exp(-1.0))
    assert gen.confidence_factor(eta) == pytest.approx(3.0, rel=RTOL)
    lam = gen.theorem_c6_lambda(1.0, 2, np.sqrt(2.0), 1.0, 8, eta)
    assert lam == pytest.approx(9.0, rel=RTOL)
    assert gen.theorem_5_1_lambda(1.0, 2, 1.0, 8, eta) == pytest.approx(9.0, rel=RTOL)
    assert gen.theorem_c6_excess_risk_bound(1.0, 1.0, 2, np.sqrt(2.0), 1.0, 8, eta) == pytest.approx(27.0, rel=RTOL)
    assert gen.theorem_5_1_excess_risk_bound(1.0, 1.0, 2, 1.0, 8, eta) == pytest.approx(27.0, rel=RTOL)
    assert gen.theorem_c6_perturbation_radius(1.0, lam, 1.0, 3.0) == pytest.approx(1.5, rel=RTOL)
    assert gen.theorem_c6_radius(1.0, 1.0) == 3.0
    assert gen.rademacher_bound(2.0, 3.0, 4, 9) == pytest.approx(4.0, rel=RTOL)
    with pytest.raises(ValueError):
        gen.confidence_factor(1.0)
    with pytest.raises(ValueError):
        gen.theorem_c6_lambda(0.0, 2, 1.0, 1.0, 8, eta)


@given(eps=st.integers(1, 100), K=st.integers(1, 10), R=st.integers(1, 10), N=st.integers(1, 10_000),
       eta_pct=st.integers(1, 99), nuc=st.integers(1, 100))
def test_theorem_5_1_is_theorem_c6_with_lipschitz_sqrt2(eps, K, R, N, eta_pct, nuc):
    eps, eta, nuc = eps / 10.0, eta_pct / 100.0, nuc / 10.0
    G = gen.CROSS_ENTROPY_LIPSCHITZ
    lam = gen.theorem_c6_lambda(eps, K, G, R, N, eta)
    assert gen.theorem_5_1_lambda(eps, K, R, N, eta) == pytest.approx(lam, rel=RTOL)
    assert gen.theorem_5_1_excess_risk_bound(nuc, eps, K, R, N, eta) == pytest.approx(
        gen.theorem_c6_excess_risk_bound(nuc, eps, K, G, R, N, eta), rel=RTOL)
    # the proof's identity: λ‖δ*_true‖_* is Lemma C.5's deviation at D = (2 + ε)‖δ*_true‖_*
    D = gen.theorem_c6_radius(eps, nuc)
    assert gen.lemma_c5_deviation_bound(K, G, R, D, N, eta) == pytest.approx(lam * nuc, rel=RTOL)


def test_one_sided_binomial_test_on_clear_cases():
    assert gen.one_sided_binomial_pvalue(100, 100, 0.9) == pytest.approx(1.0, rel=RTOL)
    assert gen.one_sided_binomial_pvalue(50, 100, 0.9) == pytest.approx(binom.cdf(50, 100, 0.9), rel=RTOL)
    assert gen.one_sided_binomial_pvalue(90, 100, 0.9) > 0.4
    alpha = 0.05
    for k in range(0, 101, 5):
        violated = gen.one_sided_binomial_pvalue(k, 100, 0.9) < alpha
        assert violated == (gen.success_probability_upper_bound(k, 100, 1 - alpha) < 0.9)


# Kim, Kim, Ryu 2025 --------------------------------------------------------------------------
def test_fails_loudly_hand_computed_examples():
    sigmas = np.array([3.0, 2.0, 1.0])
    # 2α/β = 1/2: σ_3 = 1 ≤ ½ σ_1 = 1.5 → global
    assert fl.is_global_by_gap(sigmas, 3, 1, alpha=1.0, beta=4.0)
    # 2α/β = 1/4: σ_3 = 1 > 0.75 → spurious, ‖X‖_F ≥ √((4 + 1)/(1 − 0.75)) − ‖X*‖_F = √20 − 1
    assert not fl.is_global_by_gap(sigmas, 3, 1, alpha=1.0, beta=8.0)
    bound = fl.loud_failure_norm_bound(sigmas, 3, 1, 1.0, 8.0, norm_X_star=1.0)
    assert bound == pytest.approx(np.sqrt(20.0) - 1.0, rel=RTOL)
    # a rank-deficient SOSP (σ_r = 0, missing singular values count as 0) is always case (i)
    assert fl.is_global_by_gap(np.array([2.0, 1.0]), 4, 2, alpha=1e-6, beta=1.0)
    assert fl.gap_ratio(1.0, 8.0) == 0.25


def test_fails_loudly_input_checks():
    sigmas = np.array([3.0, 2.0, 1.0])
    with pytest.raises(ValueError):
        fl.loud_failure_norm_bound(sigmas, 3, 1, 1.0, 4.0, 1.0)   # case (i): no bound
    with pytest.raises(ValueError):
        fl.is_global_by_gap(sigmas, 3, 1, alpha=-0.0445, beta=0.3371)  # the slides' "N/A" row
    with pytest.raises(ValueError):
        fl.is_global_by_gap(sigmas, 2, 2, alpha=1.0, beta=1.0)
    with pytest.raises(ValueError):
        fl.is_global_by_gap(sigmas[::-1], 3, 1, alpha=1.0, beta=1.0)


@given(spec=instance_specs(N=st.integers(1, 4), K=st.integers(1, 3), m=st.integers(2, 5), n=st.integers(2, 5),
                           loss=st.just("squared")))
def test_rsc_and_rsm_ratios_for_the_squared_loss(spec):
    inst, rng = spec.build(), spec.rng()
    G, f0, Y, (N, K, m, n) = inst.G, inst.f0, inst.Y, inst.shape
    X, X_star = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    diff = X - X_star
    # f quadratic: ∇f(X) − ∇f(X*) = (2/N) A*(A(X − X*)), so the RSC ratio is (2/N)‖A(Δ)‖²/‖Δ‖²
    expected = 2.0 / N * np.sum(apply_A(G, diff) ** 2) / np.sum(diff ** 2)
    assert fl.rsc_ratio(G, f0, Y, "squared", X, X_star) == pytest.approx(expected, rel=RTOL, abs=RTOL)
    a, b = rng.standard_normal(m), rng.standard_normal(n)
    U = np.outer(a, rng.standard_normal(m))
    V = np.outer(b, rng.standard_normal(n))
    U, V = U / np.linalg.norm(U), V / np.linalg.norm(V)
    E = fl.rsm_direction(X, U, V)
    np.testing.assert_allclose(E, U @ X + X @ V, rtol=RTOL)
    expected = 2.0 / N * np.sum(apply_A(G, E) ** 2) / np.sum(E ** 2)
    assert fl.rsm_ratio(G, f0, Y, "squared", X, U, V) == pytest.approx(expected, rel=RTOL, abs=RTOL)
    # sampled ratios lie inside [λ_min, λ_max] of the full Hessian (2/N) AᵀA: min of samples is
    # an upper bound on α, max a lower bound on β
    A = G.reshape(N * K, m * n)
    eig = np.linalg.eigvalsh(2.0 / N * A.T @ A)
    samples = [fl.rsc_ratio(G, f0, Y, "squared", rng.standard_normal((m, n)), X_star) for _ in range(10)]
    tol = RTOL * eig[-1]
    assert fl.alpha_upper_estimate(samples) >= eig[0] - tol
    assert fl.beta_lower_estimate(samples) <= eig[-1] + tol


@given(spec=instance_specs(N=st.integers(1, 4), K=st.integers(2, 3), m=st.integers(2, 4), n=st.integers(2, 4),
                           loss=st.just("cross_entropy")))
def test_loss_hessian_form_matches_finite_differences_for_cross_entropy(spec):
    inst, rng = spec.build(), spec.rng()
    G, f0, Y, (m, n) = inst.G, inst.f0, inst.Y, (inst.m, inst.n)
    X, E = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    fd = np.sum((risk_gradient(G, f0, Y, "cross_entropy", X + FD_STEP * E)
                 - risk_gradient(G, f0, Y, "cross_entropy", X - FD_STEP * E)) * E) / (2 * FD_STEP)
    exact = fl.loss_hessian_form(G, f0, Y, "cross_entropy", X, E)
    assert exact == pytest.approx(fd, rel=FD_RTOL, abs=FD_RTOL)


# Mu & Klabjan --------------------------------------------------------------------------------
def test_rate_fits_on_exact_curves():
    T = np.arange(2, 10_001, dtype=float)
    assert rate.empirical_rate_exponent(T, 3.0 / T) == pytest.approx(-1.0, rel=RTOL)
    assert rate.fit_rate_constant(T, 3.0 / T, "1/T") == pytest.approx(3.0, rel=RTOL)
    assert rate.log_fit_residual(T, 3.0 / T, "1/T") == pytest.approx(0.0, abs=RTOL)
    y = 2.0 / np.log(T)
    assert rate.fit_rate_constant(T, y, "1/logT") == pytest.approx(2.0, rel=RTOL)
    assert rate.log_fit_residual(T, y, "1/logT") == pytest.approx(0.0, abs=RTOL)
    assert rate.log_fit_residual(T, y, "1/T") > rate.log_fit_residual(T, y, "1/logT") + 0.5
    assert -1.0 < rate.empirical_rate_exponent(T, y) < 0.0   # 1/log T decays far slower than 1/T
    np.testing.assert_allclose(rate.reference_rate(T, "1/T"), 1.0 / T, rtol=RTOL)
    with pytest.raises(ValueError):
        rate.reference_rate(np.array([1.0, 2.0]), "1/logT")
    with pytest.raises(ValueError):
        rate.reference_rate(T, "1/sqrtT")


def test_running_min():
    np.testing.assert_array_equal(rate.running_min([3.0, 1.0, 2.0, 0.5, 4.0]), [3.0, 1.0, 1.0, 0.5, 0.5])


# the exact population --------------------------------------------------------------------------
def _pool(seed, size, K, m, n, rank):
    return pop.make_pool(np.random.default_rng(seed), size, K, m, n,
                         teacher_rank=min(rank, m, n), teacher_scale=float(np.sqrt(m * n)))


@given(seed=seeds, size=st.integers(1, 12), K=st.integers(2, 4), m=st.integers(2, 5), n=st.integers(2, 5),
       rank=st.integers(1, 3))
def test_population_risk_is_the_label_expectation(seed, size, K, m, n, rank):
    pool = _pool(seed, size, K, m, n, rank)
    assert nuclear_norm(pool.teacher) == pytest.approx(np.sqrt(m * n), rel=RTOL)
    assert np.linalg.matrix_rank(pool.teacher) == min(rank, m, n)
    delta = np.random.default_rng(seed + 1).standard_normal((m, n))
    z = pool.f0 + apply_A(pool.G, delta)
    by_label = np.stack([CrossEntropyLoss().value(z, np.full(size, k)) for k in range(K)], axis=1)
    expected = float(np.mean(np.sum(pool.probs * by_label, axis=1)))
    assert pop.population_risk(pool, delta) == pytest.approx(expected, rel=RTOL)
    assert pop.bayes_risk(pool) == pytest.approx(pop.population_risk(pool, pool.teacher), rel=RTOL)
    assert pool.R == pytest.approx(gen.sensing_radius(pool.G), rel=RTOL)


@given(seed=seeds, size=st.integers(1, 12), K=st.integers(2, 4), m=st.integers(2, 5), n=st.integers(2, 5),
       rank=st.integers(1, 3))
def test_teacher_minimizes_the_population_risk(seed, size, K, m, n, rank):
    pool = _pool(seed, size, K, m, n, rank)
    rng = np.random.default_rng(seed + 1)
    scale = np.linalg.norm(pop.population_gradient(pool, np.zeros((m, n)))) + 1.0
    assert np.linalg.norm(pop.population_gradient(pool, pool.teacher)) <= RTOL * scale
    for t in (1e-2, 1e-1, 1.0, 10.0):
        direction = rng.standard_normal((m, n))
        assert pop.excess_risk(pool, pool.teacher + t * direction) >= -RTOL * abs(pop.bayes_risk(pool))
    # derivative check of the population gradient
    delta, E = rng.standard_normal((m, n)), rng.standard_normal((m, n))
    fd = (pop.population_risk(pool, delta + FD_STEP * E)
          - pop.population_risk(pool, delta - FD_STEP * E)) / (2 * FD_STEP)
    assert np.sum(pop.population_gradient(pool, delta) * E) == pytest.approx(fd, rel=FD_RTOL, abs=FD_RTOL)


def test_population_gradient_detects_a_planted_wrong_teacher(rng):
    pool = pop.make_pool(rng, 8, 3, 4, 3, teacher_rank=2, teacher_scale=6.0)
    wrong = pop.Pool(pool.G, pool.f0, pool.teacher + 0.5 * rng.standard_normal((4, 3)), pool.probs)
    scale = np.linalg.norm(pop.population_gradient(wrong, np.zeros((4, 3)))) + 1.0
    assert np.linalg.norm(pop.population_gradient(wrong, wrong.teacher)) > RTOL * scale   # fails the check above
    assert pop.excess_risk(wrong, pool.teacher) < 0.0   # the true teacher beats the planted one


def test_sample_training_set_draws_from_the_pool_and_the_teacher(rng):
    pool = pop.make_pool(rng, 5, 3, 4, 3, teacher_rank=2, teacher_scale=6.0)
    inst = pop.sample_training_set(pool, 40, rng, lam=0.05)
    idx = np.array(inst.provenance["pool_indices"])
    assert inst.loss == "cross_entropy" and inst.lam == 0.05 and inst.shape == (40, 3, 4, 3)
    np.testing.assert_array_equal(inst.G, pool.G[idx])
    np.testing.assert_array_equal(inst.f0, pool.f0[idx])
    assert inst.Y.dtype == np.int64 and inst.Y.min() >= 0 and inst.Y.max() < 3
    # label frequencies at one pool example match the teacher's probabilities
    single = pop.Pool(pool.G[:1], pool.f0[:1], pool.teacher, pool.probs[:1])
    N = 20_000
    freq = np.bincount(pop.sample_training_set(single, N, rng, lam=0.0).Y, minlength=3) / N
    p = single.probs[0]
    assert np.all(np.abs(freq - p) <= SAMPLING_SIGMAS * np.sqrt(p * (1 - p) / N))


def test_make_pool_rejects_bad_sizes(rng):
    with pytest.raises(InstanceError):
        pop.make_pool(rng, 4, 1, 3, 3)                      # cross-entropy needs K ≥ 2
    with pytest.raises(InstanceError):
        pop.make_pool(rng, 4, 2, 3, 3, teacher_rank=4)      # rank > min(m, n)
    with pytest.raises(InstanceError):
        pop.make_pool(rng, 4, 2, 3, 3, teacher_scale=0.0)   # ‖δ_teacher‖_* must be > 0
