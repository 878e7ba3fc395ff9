"""The data-span reduction (verify/reduction.py) is exact: same optimum with and without it, certified on
the original instance; instances with a perturbation P are refused."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import instance_specs, low_span

from verify.certify import certify_result
from verify.instance import InstanceError
from verify.reduction import lift, lift_factor, reduce_instance
from verify.solvers.cvxpy_sdp import solve_cvxpy
from verify.tolerances import GAP_RTOL, SDP_AGREEMENT_RTOL

small = st.integers(2, 3)


@settings(max_examples=6, deadline=None)
@given(spec=instance_specs(N=small, K=small, m=st.integers(5, 7), n=st.integers(5, 7)), p=small, q=small)
def test_reduction_exact_on_low_span(spec, p, q):
    inst = low_span(spec.build(), spec.rng(), p, q)
    core, U, V = reduce_instance(inst)
    assert core.m <= p and core.n <= q
    rng = spec.rng(2)
    d = rng.standard_normal((core.m, core.n))
    assert np.isclose(core.objective(d), inst.objective(lift(d, U, V)), rtol=1e-10)
    Qc = rng.standard_normal((core.m + core.n, 2))
    assert np.isclose(core.lora_objective(Qc), inst.lora_objective(lift_factor(Qc, U, V)), rtol=1e-10)
    full = solve_cvxpy(inst, solver="CLARABEL", reduce=False)
    red = solve_cvxpy(inst, solver="CLARABEL")
    assert red.extra["reduced_shape"] == (core.m, core.n)
    assert abs(red.objective - full.objective) <= SDP_AGREEMENT_RTOL * max(1.0, abs(full.objective))
    cert = certify_result(inst, red)
    assert cert.gap_bound <= 10 * GAP_RTOL * cert.scale, cert.reason


def test_reduction_refuses_perturbation():
    from strategies import build_instance
    inst = build_instance(0, 2, 2, 4, 4, perturbation="full_rank")
    with pytest.raises(InstanceError, match="P = None"):
        reduce_instance(inst)


def test_reduction_tiny_bert():
    import torch

    from verify import models, real_task
    task = real_task.build_task(models.tiny_bert(torch.Generator().manual_seed(0)), n=2, seed=0, with_test=False)
    inst = task.train
    core, U, V = reduce_instance(inst)
    res = solve_cvxpy(inst, solver="SCS")
    cert = certify_result(inst, res)
    assert res.delta.shape == (inst.m, inst.n)
    assert cert.gap_bound <= 10 * GAP_RTOL * cert.scale, (core.shape, cert.reason)


def test_sdp_crosscheck_agrees_and_catches_a_short_span():
    """The check of entk_sdp_crosscheck on a tiny-BERT extraction: cvxpy on the exact core agrees with the
    certified Burer–Monteiro optimum (HOLDS); on the span short by δ*'s top left direction it is refuted."""
    import torch

    from theory.thresholds import no_spurious_rank
    from verify import models, real_task
    from verify.claims.entk_sdp import agreement
    from verify.reduction import core_instance, without_direction
    from verify.results import Verdict
    from verify.solvers.bm import solve_bm
    inst = real_task.build_task(models.tiny_bert(torch.Generator().manual_seed(0)), n=2, seed=0, with_test=False,
                                storage="auto").train
    bm = solve_bm(inst, no_spurious_rank(inst.kn), rng=np.random.default_rng(0), device="cpu")
    bm_cert = certify_result(inst, bm)
    core, U, V = reduce_instance(inst)
    assert agreement(inst, core, U, V, "SCS", bm_cert).verdict is Verdict.HOLDS
    U_short = without_direction(U, np.linalg.svd(bm.delta)[0][:, 0])
    assert U_short.shape == (U.shape[0], U.shape[1] - 1)
    assert np.allclose(U_short.T @ U_short, np.eye(U.shape[1] - 1))
    assert agreement(inst, core_instance(inst, U_short, V), U_short, V, "SCS", bm_cert).verdict is Verdict.VIOLATED
