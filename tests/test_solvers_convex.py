"""The convex solvers of (P) and (Q): cvxpy (nuclear / lifted, SCS / Clarabel) and FISTA (prox).

Properties: the cvxpy sensing map matches numpy's row-major A; the three formulations agree on
the optimal value (Lemma A.1: (P) and (Q) have equal optima); the proximal solver's end point is
certified by ``verify.certify`` and no worse than cvxpy's; the lifting with a PSD perturbation P
reports H(Z); statuses are mapped honestly; bad inputs are refused with the quantity named.
"""
from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (block_instance_pairs, build_instance, dims, instance_specs, lams, losses, perturbation_kinds,
                        seeds)

from theory import optimality
from theory.linearized_model import apply_A, lifted_objective
from verify import synthetic
from verify.certify import certify
from verify.instance import InstanceError
from verify.results import SolveStatus
from verify.solvers import cvxpy_sdp
from verify.solvers.cvxpy_sdp import map_status, psd_factor, sensing_expression, solve_cvxpy
from theory.sensing import from_dense_blocks
from verify.solvers.prox import lipschitz_constant, singular_value_threshold, solve_prox
from verify.tolerances import CANCELLATION_RTOL, CVXPY_AGREEMENT_RTOL, GAP_RTOL, exact_rtol

EXACT = exact_rtol(np.float64)
#: the instances the convex solvers solve: N, m, n ≤ 6, K ≤ 3
convex_specs = instance_specs(N=dims, K=st.integers(1, 3), m=dims, n=dims, loss=losses, lam=lams)


def gap_tolerance(objective: float, tol: float = GAP_RTOL) -> float:
    """The absolute gap that ``certify`` accepts at this objective value."""
    return tol * max(1.0, abs(objective))


def assert_agree(a: float, b: float, rtol: float = CVXPY_AGREEMENT_RTOL) -> None:
    assert abs(a - b) <= rtol * max(1.0, abs(a), abs(b)), (a, b)


# ---- the cvxpy model ---------------------------------------------------------------------------

@given(spec=instance_specs(N=dims, K=st.integers(1, 3), m=dims, n=dims, loss=st.just("squared")))
def test_vec_order_matches_numpy_row_major(spec):
    inst = spec.build()
    delta = spec.rng().standard_normal((inst.m, inst.n))
    expr = sensing_expression(inst, cp.Constant(delta))
    np.testing.assert_allclose(expr.value, apply_A(inst.G, delta).reshape(-1), rtol=EXACT, atol=EXACT)


@given(seed=seeds, m=dims, n=dims)
def test_psd_factor_reproduces_psd_part(seed, m, n):
    rng = np.random.default_rng(seed)
    U = np.linalg.qr(rng.standard_normal((m + n, m + n)))[0]  # orthonormal eigenvectors
    w = rng.choice([-1.0, 1.0], m + n) * rng.uniform(0.5, 1.0, m + n)  # indefinite, away from 0
    Q = psd_factor((U * w) @ U.T)
    keep = w > 0
    np.testing.assert_allclose(Q @ Q.T, (U[:, keep] * w[keep]) @ U[:, keep].T, atol=EXACT * (m + n))
    assert Q.shape == (m + n, int(np.sum(w > 0)))


@pytest.mark.parametrize("status, expected", [
    ("optimal", SolveStatus.CONVERGED), ("optimal_inaccurate", SolveStatus.INACCURATE),
    ("user_limit", SolveStatus.MAX_ITER), ("infeasible", SolveStatus.FAILED),
    ("infeasible_inaccurate", SolveStatus.FAILED), ("unbounded", SolveStatus.FAILED),
    ("unbounded_inaccurate", SolveStatus.FAILED), ("infeasible_or_unbounded", SolveStatus.FAILED),
    ("solver_error", SolveStatus.FAILED), (None, SolveStatus.FAILED)])
def test_map_status(status, expected):
    assert map_status(status) is expected


def test_optimal_inaccurate_is_never_optimal(monkeypatch):
    inst = build_instance(0, 3, 2, 3, 3)
    solve = cp.Problem.solve

    def inaccurate_solve(self, *args, **kwargs):
        solve(self, *args, **kwargs)
        self._status = cp.OPTIMAL_INACCURATE  # what the solver would report on a hard problem

    monkeypatch.setattr(cp.Problem, "solve", inaccurate_solve)
    res = solve_cvxpy(inst, solver="CLARABEL")
    assert res.status is SolveStatus.INACCURATE
    assert res.extra["solver_status"] == "optimal_inaccurate"


def test_solver_error_is_failed(monkeypatch):
    inst = build_instance(0, 3, 2, 3, 3)

    def broken_solve(self, *args, **kwargs):
        raise cp.SolverError("numerical trouble")

    monkeypatch.setattr(cp.Problem, "solve", broken_solve)
    res = solve_cvxpy(inst, solver="SCS")
    assert res.status is SolveStatus.FAILED
    assert "numerical trouble" in res.message and "SCS" in res.message
    assert np.isnan(res.objective) and np.all(np.isnan(res.delta))


# cvxpy warns "Solution may be inaccurate" when the solver stops at its iteration limit: the point of the test
@pytest.mark.filterwarnings("ignore:Solution may be inaccurate:UserWarning")
@pytest.mark.parametrize("solver", ["SCS", "CLARABEL"])
def test_iteration_limit_is_max_iter(solver):
    inst = build_instance(0, 4, 2, 5, 5, lam=0.01)
    res = solve_cvxpy(inst, solver=solver, max_iters=2)
    assert res.status is SolveStatus.MAX_ITER, (res.status, res.message)


# ---- agreement of the three formulations (Lemma A.1) -------------------------------------------

@given(spec=convex_specs, solver=st.sampled_from(["SCS", "CLARABEL"]))
def test_nuclear_lifted_and_prox_agree(spec, solver):
    inst = spec.build()
    nuclear = solve_cvxpy(inst, formulation="nuclear", solver=solver)
    lifted = solve_cvxpy(inst, formulation="lifted", solver=solver)
    prox = solve_prox(inst)
    assert nuclear.status is lifted.status is SolveStatus.CONVERGED, (nuclear.message, lifted.message)
    assert prox.status is SolveStatus.CONVERGED, prox.message
    assert certify(inst, delta=prox.delta).certified
    # Lemma A.1: min (P) = min (Q), whether (Q) is read as H(Z) or as L̂_λ(Z̄)
    assert_agree(nuclear.objective, lifted.objective)
    assert_agree(nuclear.objective, lifted.extra["lifted_objective"])
    assert_agree(prox.objective, nuclear.objective)
    # every δ is feasible for (P), so a certified point is within its tolerance of any other point
    for other in (nuclear, lifted):
        assert prox.objective <= other.objective + gap_tolerance(prox.objective)


@given(spec=instance_specs(N=dims, K=st.integers(2, 3), m=dims, n=dims, loss=losses, perturbation=perturbation_kinds))
def test_lifted_with_perturbation_reports_H(spec):
    inst, base = spec.build(), spec.without_perturbation().build()
    m = inst.m
    res = solve_cvxpy(inst, formulation="lifted", solver="CLARABEL")
    unperturbed = solve_cvxpy(base, formulation="lifted", solver="CLARABEL")
    assert res.status is SolveStatus.CONVERGED, res.message
    Z = res.Q @ res.Q.T
    H = lifted_objective(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Z, inst.P)
    assert res.objective == pytest.approx(H, rel=EXACT)
    np.testing.assert_allclose(res.delta, Z[:m, m:], rtol=EXACT, atol=EXACT)
    assert_agree(res.objective, res.extra["solver_objective"])
    # ⟨P, Z⟩ ≥ 0 for P, Z ⪰ 0: the perturbed optimum is no lower than the unperturbed one
    assert res.objective >= unperturbed.objective - gap_tolerance(unperturbed.objective, CVXPY_AGREEMENT_RTOL)
    # and the returned factor satisfies the KKT certificate of (Q) to cvxpy's accuracy
    assert certify(inst, Q=res.Q).gap_bound <= gap_tolerance(res.objective, CVXPY_AGREEMENT_RTOL)


# ---- the proximal solver -----------------------------------------------------------------------

@given(seed=seeds, m=dims, n=dims, tau=st.sampled_from([0.0, 0.1, 1.0]))
def test_singular_value_threshold_is_the_prox(seed, m, n, tau):
    """prox_{τ‖·‖_*}(Z) minimises ½‖X − Z‖_F² + τ‖X‖_*: check optimality, Z − X ∈ τ ∂‖X‖_*."""
    Z = np.random.default_rng(seed).standard_normal((m, n))
    X, nuc = singular_value_threshold(Z, tau)
    if tau == 0:
        assert X is Z
        return
    assert nuc == pytest.approx(np.linalg.svd(X, compute_uv=False).sum(), rel=EXACT, abs=EXACT)
    R = (Z - X) / tau  # must be a subgradient of ‖·‖_* at X: ‖R‖_op ≤ 1 and ⟨R, X⟩ = ‖X‖_*
    assert np.linalg.norm(R, 2) <= 1 + EXACT
    assert np.sum(R * X) == pytest.approx(nuc, rel=CANCELLATION_RTOL, abs=CANCELLATION_RTOL)


@given(seed=seeds, N=dims, K=st.integers(1, 3), m=dims, n=dims, cond=st.sampled_from([1.0, 10.0, 100.0]))
def test_prox_lambda_zero_reaches_least_squares(seed, N, K, m, n, cond):
    """λ = 0: plain accelerated gradient on least squares; A with condition number ``cond`` (a square
    Gaussian A can be arbitrarily ill-conditioned, which makes the iteration count unbounded)."""
    inst = synthetic.ill_conditioned(np.random.default_rng(seed), N, K, m, n, cond=cond, lam=0.0)
    res = solve_prox(inst)
    optimum = optimality.least_squares_optimum(inst.G, inst.f0, inst.Y)
    assert res.status is SolveStatus.CONVERGED, res.message
    assert -EXACT * max(1.0, optimum) <= res.objective - optimum <= gap_tolerance(optimum)


@given(spec=convex_specs)
def test_prox_result_fields(spec):
    inst = spec.build()
    m = inst.m
    res = solve_prox(inst)
    cert = certify(inst, delta=res.delta)
    assert res.status is SolveStatus.CONVERGED and cert.certified
    assert res.objective == pytest.approx(inst.objective(res.delta), rel=EXACT)
    assert res.history[-1] == pytest.approx(res.objective, rel=CANCELLATION_RTOL)
    assert len(res.history) == res.iterations
    # Q = balanced factors truncated to the numerical rank: u vᵀ = δ up to the rank tolerance
    u, v = res.Q[:m], res.Q[m:]
    assert res.Q.shape == (m + inst.n, cert.rank)
    assert np.linalg.norm(u @ v.T - res.delta, 2) <= cert.rank_tol * (1 + EXACT) + EXACT


def test_prox_warm_start_at_optimum_stops_at_first_check(rng):
    inst, _ = synthetic.planted(rng, 6, 2, 8, 7, rank=2, lam=0.05)
    first = solve_prox(inst)
    again = solve_prox(inst, delta0=first.delta, check_every=5)
    assert first.status is again.status is SolveStatus.CONVERGED
    assert again.iterations == 5
    assert again.objective <= first.objective + gap_tolerance(first.objective)


@given(pair=block_instance_pairs())
def test_prox_on_block_storage_agrees_with_dense(pair):
    """Blockwise SVT / A / A* on a BlockSensing G reach the optimum that the dense G gives, certified."""
    dense, block = pair
    a, b = solve_prox(dense, history=False), solve_prox(block, history=False)
    assert a.status is b.status is SolveStatus.CONVERGED, (a.message, b.message)
    assert abs(a.objective - b.objective) <= gap_tolerance(a.objective) + gap_tolerance(b.objective)
    assert certify(dense, delta=b.delta).certified


def test_prox_block_storage_drops_off_diagonal_delta0(rng):
    """Off-diagonal blocks of δ₀ are invisible to the loss and only add to ‖δ‖_*: the block solve drops them."""
    shapes = [(3, 4), (5, 2)]
    dense = synthetic.block_diagonal(rng, 6, 2, shapes, loss="cross_entropy", lam=0.05)
    block = dense.with_(G=from_dense_blocks(dense.G, shapes))
    res = solve_prox(block, delta0=rng.standard_normal((dense.m, dense.n)), history=False)
    assert res.status is SolveStatus.CONVERGED, res.message
    assert np.all(res.delta[:3, 4:] == 0) and np.all(res.delta[3:, :4] == 0)
    assert certify(dense, delta=res.delta).certified


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_prox_backtracking_step_adapts_and_certifies(rng, loss):
    """The backtracking step goes below the global bound L_max where the local curvature allows (cross-entropy's
    Hessian is far below its worst case) and never above it, and the end point is still certified."""
    inst = synthetic.block_diagonal(rng, 12, 3, [(6, 5), (4, 7)], loss=loss, lam=0.02)
    res = solve_prox(inst, history=True)
    assert res.status is SolveStatus.CONVERGED and certify(inst, delta=res.delta).certified
    assert res.extra["lipschitz"] == pytest.approx(lipschitz_constant(inst), rel=EXACT)
    assert res.extra["last_step_L"] <= res.extra["lipschitz"]
    if loss == "cross_entropy":
        assert res.extra["last_step_L"] < res.extra["lipschitz"]


def test_prox_budget_gives_max_iter():
    inst = build_instance(0, 6, 2, 8, 8, lam=0.01)
    res = solve_prox(inst, max_iter=3, history=False)
    assert res.status is SolveStatus.MAX_ITER and res.iterations == 3
    assert res.history == [] and "max_iter" in res.message
    assert not certify(inst, delta=res.delta).certified


# ---- bad inputs name the quantity --------------------------------------------------------------

@pytest.fixture
def perturbed():
    return build_instance(0, 3, 2, 3, 4, perturbation="full_rank")


def test_nuclear_refuses_perturbation(perturbed):
    with pytest.raises(InstanceError, match="P"):
        solve_cvxpy(perturbed, formulation="nuclear")


def test_prox_refuses_perturbation(perturbed):
    with pytest.raises(InstanceError, match="P"):
        solve_prox(perturbed)


def test_unknown_solver_and_formulation():
    inst = build_instance(0, 3, 2, 3, 3)
    with pytest.raises(ValueError, match="CLARABEL.*SCS"):
        solve_cvxpy(inst, solver="MOSEK")
    with pytest.raises(ValueError, match="formulation"):
        solve_cvxpy(inst, formulation="dual")
    with pytest.raises(ValueError, match="max_iters"):
        solve_cvxpy(inst, max_iters=0)
    with pytest.raises(ValueError, match="eps"):
        solve_cvxpy(inst, eps=0.0)
    assert cvxpy_sdp.backend("clarabel") == "CLARABEL"


def test_prox_bad_options():
    inst = build_instance(0, 3, 2, 3, 3)
    with pytest.raises(InstanceError, match="delta0"):
        solve_prox(inst, delta0=np.zeros((4, 3)))
    for kwargs, name in [({"tol": 0.0}, "tol"), ({"max_iter": -1}, "max_iter"),
                         ({"check_every": 0}, "check_every"), ({"time_limit": 0.0}, "time_limit")]:
        with pytest.raises(ValueError, match=name):
            solve_prox(inst, **kwargs)
