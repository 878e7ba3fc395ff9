"""The certificate accepts certified optima and rejects planted non-optimal points (negative controls)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import build_instance, seeds

from theory import optimality
from theory.linearized_model import sensing_matrix
from verify.certify import certify, certify_result
from verify.results import FailedCondition, SolveResult, SolveStatus
from verify.sosp import sosp_test
from verify.tolerances import GAP_RTOL, HESSIAN_EIG_RTOL, exact_rtol

RTOL = exact_rtol(np.float64)


def _zero_is_optimal(loss="squared"):
    """λ ≥ σ_max(S(0)) makes δ = 0 the global minimizer (M(0) ⪰ 0, M·0 = 0)."""
    inst = build_instance(0, 4, 2, 3, 3, loss, lam=1.0)
    smax = np.linalg.norm(inst.gradient(np.zeros((3, 3))), 2)
    return inst.with_(lam=1.5 * smax)


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_zero_is_certified_when_lambda_dominates(loss):
    inst = _zero_is_optimal(loss)
    cert = certify(inst, delta=np.zeros((3, 3)))
    assert cert.certified and cert.gap_bound == 0.0 and cert.rank == 0 and cert.lambda_min_M > 0


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_zero_is_rejected_when_lambda_is_small(loss):
    inst = _zero_is_optimal(loss)
    inst = inst.with_(lam=0.5 * inst.lam / 1.5)
    cert = certify(inst, delta=np.zeros((3, 3)))
    assert not cert.certified and cert.lambda_min_M < 0 and "exceeds tolerance" in cert.reason


@given(seed=seeds, scale=st.sampled_from([1e-2, 1.0]))
def test_least_squares_optimum_certified_and_perturbation_rejected(seed, scale):
    """λ = 0, squared loss: the least-squares solution is certified; a planted perturbation is caught."""
    inst, rng = build_instance(seed, 3, 2, 3, 3, lam=0.0), np.random.default_rng([seed, 1])
    A = sensing_matrix(inst.G)
    x = np.linalg.lstsq(A, (inst.Y - inst.f0).ravel(), rcond=None)[0].reshape(3, 3)
    assert certify(inst, delta=x).certified
    bad = x + scale * rng.standard_normal((3, 3))
    assert not certify(inst, delta=bad).certified
    # the certificate's resolution: a step of size ~GAP_RTOL moves the objective by ~GAP_RTOL², far below
    # tol · max(1, |objective|), and is accepted
    assert certify(inst, delta=x + GAP_RTOL * rng.standard_normal((3, 3))).certified


def test_gap_bound_is_an_upper_bound(rng):
    """For an arbitrary Q the bound dominates H(QQᵀ) − H(Z*) where Z* is the certified optimum δ = 0."""
    inst = _zero_is_optimal()
    opt = inst.objective(np.zeros((3, 3)))
    for _ in range(20):
        Q = 0.3 * rng.standard_normal((6, 2))
        cert = certify(inst, Q=Q)
        assert cert.gap_bound >= cert.lifted_objective - opt - RTOL * max(1.0, abs(opt))


def test_certify_input_errors():
    inst = _zero_is_optimal()
    with pytest.raises(ValueError, match="delta must have shape"):
        certify(inst, delta=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Q must have shape"):
        certify(inst, Q=np.zeros((5, 1)))
    with pytest.raises(ValueError, match="needs a point"):
        certify(inst)


def test_diverged_point_is_a_labelled_failure():
    """A NaN factor (a diverged start) is not an error: it is a certificate that names the failure."""
    inst = _zero_is_optimal()
    cert = certify(inst, Q=np.full((6, 1), np.nan))
    assert not cert.certified and cert.failed is FailedCondition.UNTRUSTED and "NaN" in cert.reason
    assert cert.relative_slack == -np.inf


@pytest.mark.parametrize("status", list(SolveStatus))
def test_the_trust_rule_refuses_inaccurate_and_failed_statuses(status):
    """The same optimal point is certified under a trusted status and never under INACCURATE / FAILED."""
    inst = _zero_is_optimal()
    result = SolveResult("test", status, np.zeros((3, 3)), inst.objective(np.zeros((3, 3))), 0.0)
    cert = certify_result(inst, result)
    assert cert.certified is status.trusted
    assert (cert.failed is FailedCondition.UNTRUSTED) is (not status.trusted)


def test_certificate_names_the_failed_condition(rng):
    """A point off stationarity fails first order; the zero point with λ below σ_max(S(0)) fails the dual cone."""
    inst = _zero_is_optimal()
    moved = certify(inst, Q=0.3 * rng.standard_normal((6, 2)))
    assert not moved.certified and moved.failed in (FailedCondition.FIRST_ORDER, FailedCondition.BOTH)
    low = inst.with_(lam=0.5 * inst.lam)
    at_zero = certify(low, Q=1e-9 * rng.standard_normal((6, 1)))
    assert not at_zero.certified and at_zero.failed is FailedCondition.DUAL_CONE
    assert at_zero.relative_slack < 0 < certify(inst, delta=np.zeros((3, 3))).relative_slack


def test_cross_entropy_without_regularization_is_not_certifiable():
    inst = build_instance(0, 3, 2, 2, 2, "cross_entropy", lam=0.0)
    cert = certify(inst, delta=np.zeros((2, 2)))
    assert not cert.certified and "λ = 0" in cert.reason


def test_sosp_dense_and_iterative_agree_and_witness_has_negative_curvature():
    """Q = 0 is a strict saddle when λ < σ_max(S(0)) (Thms 2.3/2.4): the witness shows it."""
    inst = build_instance(0, 4, 2, 5, 5, lam=0.01)
    Q = np.zeros((10, 2))
    dense = sosp_test(inst, Q, method="dense")
    iterative = sosp_test(inst, Q, method="iterative")
    assert dense.grad_norm == 0.0 and not dense.is_sosp
    assert iterative.hessian_lambda_min == pytest.approx(dense.hessian_lambda_min, rel=HESSIAN_EIG_RTOL)
    W = dense.witness
    form = optimality.hessian_quadratic_form(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W)
    assert form == pytest.approx(dense.hessian_lambda_min, rel=HESSIAN_EIG_RTOL) and form < 0
    expected = inst.lam - np.linalg.norm(inst.gradient(np.zeros((5, 5))), 2)  # λ_min(M) at Q = 0
    assert dense.hessian_lambda_min == pytest.approx(expected, rel=HESSIAN_EIG_RTOL)
    with pytest.raises(ValueError, match="method"):
        sosp_test(inst, Q, method="power")
