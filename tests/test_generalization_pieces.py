"""The pieces that give the generalization, low-rank and Lemma 2.2 claims their power (aligned pool, wide and
unbalanced factorizations, the SDP nuclear norm) do what they say (that each claim has a caught near-miss
control is asserted for every claim in tests/test_claims.py)."""
from __future__ import annotations

import numpy as np

from theory.lemma_2_2 import factor_norm
from theory.linearized_model import nuclear_norm
from verify import population
from verify.claims.lemma_2_2 import sdp_nuclear_norm, unbalanced_factors, wide_factors
from verify.experiments.excess_risk import crossover_N
from verify.tolerances import L22_SDP_RTOL, LEMMA_2_2_RTOL

def test_aligned_pool_is_well_specified_and_gives_nonzero_gradient_at_zero():
    rng = np.random.default_rng(0)
    pool = population.make_aligned_pool(rng, 500, 4, 3.0, 0.1)
    assert pool.K == 2 and np.allclose(pool.G[:, 0], -pool.G[:, 1])
    assert np.isclose(nuclear_norm(pool.teacher), 3.0)
    assert np.linalg.norm(population.population_gradient(pool, pool.teacher)) < 1e-12
    assert np.linalg.norm(population.population_gradient(pool, np.zeros((4, 4))), 2) > 0.4 * pool.R


def test_crossover_is_where_the_bound_meets_the_excess_of_zero():
    C, e0 = 7.0, 0.5
    n_star = crossover_N(C / np.sqrt(100), 100, e0)
    assert np.isclose(C / np.sqrt(n_star), e0)


def test_wide_and_unbalanced_factorizations_reproduce_delta():
    rng = np.random.default_rng(1)
    delta = rng.standard_normal((5, 2)) @ rng.standard_normal((2, 4))
    u, v = wide_factors(delta, 2, rng)
    assert u.shape[1] > 2 and np.allclose(u @ v.T, delta)
    assert factor_norm(u, v) >= nuclear_norm(delta) * (1 - LEMMA_2_2_RTOL)
    u, v = unbalanced_factors(delta, rng)
    assert np.allclose(u @ v.T, delta)
    assert factor_norm(u, v) - nuclear_norm(delta) > 100 * LEMMA_2_2_RTOL * nuclear_norm(delta)


def test_sdp_nuclear_norm_agrees_with_the_svd():
    delta = np.random.default_rng(2).standard_normal((4, 3))
    assert abs(sdp_nuclear_norm(delta) - nuclear_norm(delta)) <= L22_SDP_RTOL * nuclear_norm(delta)
