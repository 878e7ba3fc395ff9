"""Time to a certified optimum (gap bound ≤ 1e-6 · max(1, |objective|)), pytest-benchmark.

Synthetic squared-loss instances with N = 32, K = 2, λ = 0.01: m = n = 64 (Burer–Monteiro batched in torch and
by SciPy's L-BFGS-B, FISTA and
cvxpy SCS / Clarabel on the same instance in the same run), m = n = 256, and m = n = 768 (two 384×384
attention matrices tuned together), m = n = 1536 (float64 and float32-then-float64). Run with
``python -m pytest tests/benchmarks -m slow --benchmark-only --benchmark-json=.benchmarks/run.json``, then
``python tests/benchmarks/speed_table.py`` rewrites the README speed table from that run.
No timing is asserted; certification is.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from strategies import build_instance

from theory.thresholds import no_spurious_rank
from verify.certify import GAP_RTOL, certify

pytestmark = pytest.mark.slow
N, K, LAM = 32, 2, 0.01
RANK = no_spurious_rank(N * K)  # 11


def _instance(side: int):
    """The test suite's instance (``tests/strategies.py``) of m = n = side, seeded by the side."""
    return build_instance(side, N, K, side, side, lam=LAM)


def _bm(inst):
    from verify.solvers.bm import solve_bm
    return solve_bm(inst, RANK, starts=1, init="lora", rng=np.random.default_rng(0), device="cpu")


def _bm_scipy(inst):
    """SciPy's L-BFGS-B on the same F_P, one thread (method "lbfgsb"), the batched L-BFGS finishing if needed."""
    from verify.solvers.bm import solve_bm
    return solve_bm(inst, RANK, starts=1, init="lora", rng=np.random.default_rng(0), device="cpu", method="lbfgsb")


def _bm_warm32(inst):
    """float32 passes over G to the float32 tolerance, then float64 to finish (the certificate is float64)."""
    import torch
    from verify.solvers.bm import solve_bm
    return solve_bm(inst, RANK, starts=1, init="lora", rng=np.random.default_rng(0), device="cpu",
                    warm_dtype=torch.float32)


def _prox(inst):
    from verify.solvers.prox import solve_prox
    return solve_prox(inst, tol=GAP_RTOL, max_iter=20000, history=False)


def _cvxpy(solver):
    from verify.solvers.cvxpy_sdp import solve_cvxpy
    return lambda inst: solve_cvxpy(inst, formulation="nuclear", solver=solver)


def _certified_solve(solve, inst):
    """Solve and certify: the certificate is part of the time to a certified optimum."""
    res = solve(inst)
    return res, (certify(inst, Q=res.Q) if res.Q is not None else certify(inst, delta=res.delta))


SOLVERS_64 = {"bm": _bm, "bm-lbfgsb": _bm_scipy, "bm-f32warm": _bm_warm32, "prox": _prox, "cvxpy-SCS": _cvxpy("SCS"),
              "cvxpy-CLARABEL": _cvxpy("CLARABEL")}


@pytest.mark.parametrize("solver", list(SOLVERS_64))
def test_time_to_certified_optimum_64(benchmark, record, solver):
    inst = _instance(64)
    rounds = 1 if solver.startswith("cvxpy") else 3  # Clarabel takes minutes at this size
    res, c = benchmark.pedantic(_certified_solve, args=(SOLVERS_64[solver], inst), rounds=rounds, iterations=1)
    record("m=n=64", solver, benchmark, c)
    if solver.startswith("bm") or solver == "prox":
        assert c.certified, c.reason


SOLVERS_256 = {"bm": _bm, "bm-lbfgsb": _bm_scipy, "prox": _prox}


@pytest.mark.parametrize("solver", list(SOLVERS_256))
def test_time_to_certified_optimum_256(benchmark, record, solver):
    inst = _instance(256)
    res, c = benchmark.pedantic(_certified_solve, args=(SOLVERS_256[solver], inst), rounds=1, iterations=1)
    record("m=n=256", solver, benchmark, c)
    assert c.certified, c.reason


@pytest.mark.parametrize("solver", ["bm", "bm-f32warm"])
def test_time_to_certified_optimum_768(benchmark, record, solver):
    inst = _instance(768)
    res, c = benchmark.pedantic(_certified_solve, args=({"bm": _bm, "bm-f32warm": _bm_warm32}[solver], inst),
                                rounds=1, iterations=1)
    record("m=n=768", solver, benchmark, c)
    assert c.certified, c.reason


@pytest.mark.parametrize("solver", ["bm", "bm-f32warm"])
def test_time_to_certified_optimum_1536(benchmark, record, solver):
    """m = n = 1536 (RoBERTa-base query + value), dense synthetic: G is 1.2 GB in float64."""
    inst = _instance(1536)
    res, c = benchmark.pedantic(_certified_solve, args=({"bm": _bm, "bm-f32warm": _bm_warm32}[solver], inst),
                                rounds=1, iterations=1)
    record("m=n=1536", solver, benchmark, c)
    assert c.certified, c.reason


PEAK_SCRIPT = """
import resource, numpy as np
from strategies import build_instance
from verify.certify import certify
from verify.solvers.bm import solve_bm
inst = build_instance(768, 32, 2, 768, 768, lam=0.01)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
res = solve_bm(inst, 11, starts=1, rng=np.random.default_rng(0), device="cpu")
certify(inst, Q=res.Q)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, after * 1024, inst.G.nbytes)
"""


def test_peak_memory_768():
    """Memory the solve and certificate add beyond the instance, plus G itself, against 3 × size of G."""
    tests_dir = str(Path(__file__).resolve().parents[1])  # where strategies.py lives
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT], capture_output=True, text=True, check=True,
                         env=env).stdout
    before, after, g_bytes = map(float, out.split())
    ratio = (after - before + g_bytes) / g_bytes
    print(f"peak memory of solve + certificate: {(after - before) / 2**20:.0f} MiB above the instance; "
          f"(G + that) / G = {ratio:.2f}")
    assert ratio < 3.0
