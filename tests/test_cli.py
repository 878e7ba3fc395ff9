"""The command line: --help, solve (every solver, JSON fields), certify (labels, witness file), landscape,
and clear errors for bad options and bad point files."""
from __future__ import annotations

import json

import numpy as np
import pytest
from strategies import build_instance

from theory import optimality
from theory.thresholds import no_spurious_rank
from verify.cli import main
from verify.instance import load_instance
from verify.solvers.bm import solve_bm
from verify.tolerances import SOLVER_AGREEMENT_RTOL, SOSP_ROUNDING_RTOL

FIELDS = {"objective", "gap_bound", "certified", "lambda_min_M", "rank", "solve_seconds", "solver", "status"}
CERTIFY_FIELDS = {"certified", "gap_bound", "objective", "lambda_min_M", "rank", "grad_norm", "hessian_lambda_min",
                  "hessian_lambda_min_side", "is_sosp", "strict_local_min", "label", "witness"}


@pytest.fixture
def instance_file(tmp_path):
    inst = build_instance(5, 3, 2, 4, 4, lam=0.05)
    return inst.save(tmp_path / "inst.npz")


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("solve", "certify", "landscape", "report", "entk"):
        assert command in out


@pytest.mark.parametrize("solver", ["bm", "prox", "cvxpy"])
def test_solve_writes_the_summary(instance_file, tmp_path, solver):
    out = tmp_path / "out.json"
    assert main(["solve", str(instance_file), "--rank", "4", "--solver", solver, "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert FIELDS <= set(summary) and summary["solver"].startswith(solver)
    if solver != "cvxpy":  # SCS's accuracy may or may not reach the 1e-6 gap: either answer is honest
        assert summary["certified"] is True


def test_solves_agree(instance_file, tmp_path):
    values = []
    for solver, extra in (("bm", []), ("bm", ["--method", "lbfgsb"]), ("prox", [])):
        out = tmp_path / f"{solver}{len(extra)}.json"
        main(["solve", str(instance_file), "--rank", "4", "--solver", solver, *extra, "--json", str(out)])
        values.append(json.loads(out.read_text())["objective"])
    assert values[0] == pytest.approx(values[1], rel=SOLVER_AGREEMENT_RTOL)
    assert values[0] == pytest.approx(values[2], rel=SOLVER_AGREEMENT_RTOL)


def test_landscape_counts(instance_file, tmp_path):
    out = tmp_path / "land.json"
    assert main(["landscape", str(instance_file), "--rank", "4", "--starts", "3", "--perturb", "1e-3",
                 "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["theorem_4_1_applies"] and summary["counts"]["global"] == 3


def test_unreadable_file(tmp_path, capsys):
    bad = tmp_path / "x.npz"
    bad.write_text("nope")
    assert main(["solve", str(bad), "--rank", "2"]) == 2
    assert "cannot read instance file" in capsys.readouterr().err


@pytest.fixture
def optimum_point(instance_file, tmp_path):
    """u, v of a Burer–Monteiro solve at the Theorem 4.1 rank (certified global)."""
    inst = load_instance(instance_file)
    Q = solve_bm(inst, no_spurious_rank(inst.kn), init="random", rng=np.random.default_rng(0), device="cpu").Q
    path = tmp_path / "opt.npz"
    np.savez(path, u=Q[:inst.m], v=Q[inst.m:])
    return path, Q


def _certify(instance_file, point, tmp_path, name="cert.json"):
    out = tmp_path / name
    code = main(["certify", str(instance_file), "--point", str(point), "--json", str(out)])
    return code, (json.loads(out.read_text()) if out.exists() else None), out


def test_certify_labels_a_solver_optimum_global(instance_file, optimum_point, tmp_path):
    code, summary, _ = _certify(instance_file, optimum_point[0], tmp_path)
    assert code == 0 and CERTIFY_FIELDS <= set(summary)
    assert summary["label"] == "global" and summary["certified"] and summary["is_sosp"]
    assert summary["hessian_lambda_min_side"] == "exact" and summary["witness"] is None


def test_certify_accepts_delta_with_balanced_factors(instance_file, optimum_point, tmp_path):
    Q = optimum_point[1]
    m = load_instance(instance_file).m
    path = tmp_path / "delta.npz"
    np.savez(path, delta=Q[:m] @ Q[m:].T)
    code, summary, _ = _certify(instance_file, path, tmp_path)
    assert code == 0 and summary["label"] == "global"


def test_certify_saves_the_witness_of_a_saddle(instance_file, tmp_path):
    inst = load_instance(instance_file)
    path = tmp_path / "zero.npz"
    np.savez(path, u=np.zeros((inst.m, 2)), v=np.zeros((inst.n, 2)))
    code, summary, out = _certify(instance_file, path, tmp_path)
    assert code == 0 and summary["label"] == "saddle" and not summary["is_sosp"]
    assert summary["witness"] == str(out.with_suffix(".witness.npz"))
    with np.load(summary["witness"]) as w:
        W, a, b = w["W"], w["a"], w["b"]
    assert W.shape == (inst.m + inst.n, 2) and np.array_equal(a, W[:inst.m]) and np.array_equal(b, W[inst.m:])
    form = optimality.hessian_quadratic_form(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, np.zeros_like(W), W)
    assert form == pytest.approx(summary["hessian_lambda_min"], abs=SOSP_ROUNDING_RTOL * summary["hessian_norm"])
    assert form < -summary["hess_tol"]


M, N_COLS = 4, 4  # m, n of instance_file
BAD_POINTS = {
    "neither key": ({"w": np.ones((M, 2))}, "neither u and v nor delta"),
    "u alone": ({"u": np.ones((M, 2))}, "lacks the key v"),
    "both": ({"u": np.ones((M, 2)), "v": np.ones((N_COLS, 2)), "delta": np.ones((M, N_COLS))}, "both u, v and delta"),
    "u shape": ({"u": np.ones((M + 1, 2)), "v": np.ones((N_COLS, 2))}, "u must have shape (m, r)"),
    "v one-dimensional": ({"u": np.ones((M, 2)), "v": np.ones(N_COLS)}, "v must have shape (n, r)"),
    "no columns": ({"u": np.ones((M, 0)), "v": np.ones((N_COLS, 0))}, "r ≥ 1"),
    "different r": ({"u": np.ones((M, 2)), "v": np.ones((N_COLS, 3))}, "same number of columns r"),
    "delta shape": ({"delta": np.ones((M, N_COLS + 1))}, "delta must have shape (m, n)"),
    "NaN": ({"u": np.full((M, 2), np.nan), "v": np.ones((N_COLS, 2))}, "u contains NaN"),
    "Inf": ({"u": np.ones((M, 2)), "v": np.full((N_COLS, 2), np.inf)}, "v contains Inf"),
    "delta NaN": ({"delta": np.full((M, N_COLS), np.nan)}, "delta contains NaN"),
    "strings": ({"u": np.array([["a"] * 2] * M), "v": np.ones((N_COLS, 2))}, "u in point file"),
}


@pytest.mark.parametrize("case", sorted(BAD_POINTS))
def test_bad_point_file_is_a_clear_error(instance_file, tmp_path, capsys, case):
    arrays, message = BAD_POINTS[case]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code, summary, _ = _certify(instance_file, path, tmp_path)
    err = capsys.readouterr().err
    assert code == 2 and summary is None and message in err and "Traceback" not in err


@pytest.mark.parametrize("content", ["text", "missing"])
def test_unreadable_point_file(instance_file, tmp_path, capsys, content):
    path = tmp_path / "bad.npz"
    if content == "text":
        path.write_text("nope")
    assert _certify(instance_file, path, tmp_path)[0] == 2
    assert "cannot read point file" in capsys.readouterr().err


BAD_OPTIONS = {
    "solve": (["INST", "--rank", "2"], [("--starts", "0"), ("--tol", "0"), ("--rank", "0"), ("--lam", "-1"),
                                        ("--lam", "nan"), ("--seed", "-1"), ("--tol", "x")]),
    "landscape": (["INST", "--rank", "2"], [("--starts", "0"), ("--rank", "0"), ("--lam", "-1"), ("--perturb", "-1"),
                                            ("--seed", "-1"), ("--max-iter", "0")]),
    "certify": (["INST", "--point", "P.npz"], [("--tol", "0"), ("--lam", "-1"), ("--seed", "-1"), ("--tol", "inf")]),
    "report": ([], [("--seed", "-1")]),
    "entk": (["--out", "X.npz"], [("--n", "0"), ("--lam", "-1"), ("--seed", "-1"), ("--chunk", "0")]),
}


@pytest.mark.parametrize("command, option, value",
                         [(c, o, v) for c, (_, opts) in BAD_OPTIONS.items() for o, v in opts])
def test_bad_option_is_a_clear_error(instance_file, capsys, command, option, value):
    base = [str(instance_file) if a == "INST" else a for a in BAD_OPTIONS[command][0]]
    assert main([command, *base, option, value]) == 2
    err = capsys.readouterr().err
    assert f"argument {option}:" in err and repr(value) in err and "Traceback" not in err


@pytest.mark.parametrize("ids", [["nope"], ["lemma_2_2,nope"], [","]])
def test_report_only_names_an_unknown_claim(tmp_path, capsys, ids):
    assert main(["report", "--out", str(tmp_path), "--only", *ids]) == 2
    err = capsys.readouterr().err
    assert "only: unknown claim id(s)" in err and "lemma_2_2" in err
    assert not (tmp_path / "report.md").exists()
