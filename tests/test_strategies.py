"""The test helpers of tests/strategies.py: the instance builder is deterministic, P has the stated
scaling and leaves G, f0, Y alone, K respects the loss, and a bad recipe is refused."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from strategies import (
    PERTURBATION_NORM,
    InstanceSpec,
    build_instance,
    instance_specs,
    loss_and_outputs,
    min_outputs,
    perturbations,
)

from theory.losses import LOSS_NAMES, get_loss
from verify import synthetic
from verify.tolerances import PSD_RTOL, exact_rtol

RTOL = exact_rtol(np.float64)


def test_min_outputs_asks_the_loss():
    assert {name: min_outputs(name) for name in LOSS_NAMES} == {"squared": 1, "cross_entropy": 2}
    for name in LOSS_NAMES:  # a recipe with one output fewer is refused
        with pytest.raises(ValueError, match="needs K"):
            InstanceSpec(0, 2, min_outputs(name) - 1, 2, 2, name).build()


@given(loss_K=loss_and_outputs())
def test_drawn_K_is_accepted_by_the_loss(loss_K):
    name, K = loss_K
    assert K >= min_outputs(name)
    get_loss(name).targets(get_loss(name).targets_from_labels(np.zeros(3, dtype=np.int64), K), 3, K)


@given(spec=instance_specs(perturbation=perturbations))
def test_spec_builds_the_same_instance_twice_with_the_stated_P(spec):
    a, b = spec.build(), spec.build()
    assert a.shape == (spec.N, spec.K, spec.m, spec.n) and (a.loss, a.lam) == (spec.loss, spec.lam)
    for key in ("G", "f0", "Y"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    plain = spec.without_perturbation().build()
    assert plain.P is None
    for key in ("G", "f0", "Y"):  # P is drawn after G, f0, Y
        np.testing.assert_array_equal(getattr(a, key), getattr(plain, key))
    if spec.perturbation is None:
        assert a.P is None
    else:
        np.testing.assert_array_equal(a.P, b.P)
        assert np.linalg.norm(a.P) == pytest.approx(spec.eps, rel=RTOL)
        assert np.linalg.eigvalsh(a.P)[0] >= -PSD_RTOL * np.abs(a.P).max()
    # the points drawn beside the instance come from another stream
    assert not np.array_equal(spec.rng().standard_normal(4), np.random.default_rng(spec.seed).standard_normal(4))


def test_build_instance_is_synthetic_gaussian_of_the_seed():
    inst = build_instance(5, 3, 2, 4, 4, lam=0.05)
    ref = synthetic.gaussian(np.random.default_rng(5), 3, 2, 4, 4, lam=0.05)
    for key in ("G", "f0", "Y"):
        np.testing.assert_array_equal(getattr(inst, key), getattr(ref, key))
    assert PERTURBATION_NORM == InstanceSpec(0, 1, 1, 1, 1).eps


def test_stream_zero_is_refused():
    with pytest.raises(ValueError, match="stream 0"):
        InstanceSpec(0, 1, 1, 1, 1).rng(0)
