"""The paper's claims as hypothesis properties, every negative control caught, and the report's
resume / reproducibility behaviour."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.approximation import corollary_4_2_bound
from theory.lemma_2_2 import balanced_factors
from theory.rank_reduction import reduce_rank
from theory.thresholds import existence_rank_bound, no_spurious_rank, triangular
from verify import report, synthetic
from verify.certify import certify
from verify.claims import all_claims
from verify.claims.base import Context, ControlKind
from verify.claims.generalization_claims import binomial_verdict
from verify.claims.verdicts import unanimous, verdict_equality, verdict_from_margin
from verify.experiments.landscape import PERTURBATIONS, counts, random_perturbation, study
from verify.results import Verdict
from verify.solvers.bm import solve_bm
from verify.tolerances import RANK_DEFICIENT_RTOL, exact_rtol

from strategies import losses, min_outputs, seeds

#: the verdict of every claim at seed 0 in the first profile that runs it (quick, else full): any change of a
#: verdict fails a test. The eNTK claims (real model) run under -m slow; entk_section_6 runs only in full.
EXPECTED_VERDICTS = {
    "lemma_2_2": Verdict.HOLDS, "theorem_3_1": Verdict.HOLDS, "figure_1": Verdict.HOLDS,
    "theorem_4_1": Verdict.HOLDS, "corollary_4_2": Verdict.HOLDS, "saddle_escape": Verdict.HOLDS,
    "theorem_5_1": Verdict.HOLDS, "lemma_c4": Verdict.HOLDS, "ce_lipschitz": Verdict.HOLDS,
    "section_6_rank_speed": Verdict.INCONCLUSIVE,
    "entk_certified_optimum": Verdict.HOLDS, "entk_theorem_4_1": Verdict.HOLDS, "entk_section_6": Verdict.INCONCLUSIVE,
    "entk_ntk_regime": Verdict.HOLDS, "entk_lemma_c4": Verdict.HOLDS,
    "kim_rsc_rsm": Verdict.HOLDS, "kim_dichotomy": Verdict.HOLDS, "entk_kim_rsc_rsm": Verdict.VIOLATED,
    "entk_kim_dichotomy": Verdict.INCONCLUSIVE,
    "threshold_sufficient": Verdict.HOLDS, "park_condition": Verdict.INCONCLUSIVE,
    "mu_klabjan_unbounded": Verdict.HOLDS, "mu_klabjan_bounded": Verdict.HOLDS, "mu_klabjan_rank": Verdict.HOLDS,
    "mu_klabjan_step_rule": Verdict.VIOLATED,
    "entk_mu_klabjan": Verdict.HOLDS,
    "entk_all_layers_certified_optimum": Verdict.HOLDS, "entk_sdp_crosscheck": Verdict.HOLDS,
    "table_4_linearization": Verdict.HOLDS, "kim_fails_loudly": Verdict.HOLDS,
    "kim_lemma_1": Verdict.VIOLATED,
}


def test_every_claim_has_an_expected_verdict():
    assert sorted(EXPECTED_VERDICTS) == sorted(s.id for s in all_claims())


#: full-profile real-model claims that run in minutes (slow, not hours): entk_section_6 is one float32 batch
#: (12:55 wall / 5:25 CPU on 2 cores shared with other jobs, extraction included, 2026-11-23)
FULL_ONLY_MINUTES = {"entk_section_6"}


def _marks(spec) -> list:
    """Real-model claims are slow; a claim that runs only in the full profile on the real model takes hours."""
    if not spec.section.startswith("Empirical NTK"):
        return []
    return [pytest.mark.slow] + ([pytest.mark.hours] if "quick" not in spec.profiles and spec.id not in
                                 FULL_ONLY_MINUTES else [])


@pytest.mark.parametrize("spec", [pytest.param(s, id=s.id, marks=_marks(s)) for s in all_claims()])
def test_claim_verdict_and_every_control_is_caught(spec):
    """Each claim gives its expected verdict; each of its planted false variants is reported VIOLATED; and the
    power rule holds: at least one NEAR_MISS control (its hypothesis broken by the smallest step that should
    matter, same instances and code path) is among them, and the claim states its power and resolution."""
    profile = "quick" if "quick" in spec.profiles else "full"
    outcome = spec.run(Context(profile=profile, seed=0, device="cpu"))
    assert outcome.check.id == spec.id
    assert outcome.check.verdict == EXPECTED_VERDICTS[spec.id], (outcome.check.margin, outcome.check.details)
    assert outcome.controls, f"claim {spec.id} has no negative control"
    for ctrl in outcome.controls:
        assert ctrl.caught, f"negative control {ctrl.id} was missed ({ctrl.verdict}, margin {ctrl.margin})"
    assert any(c.kind is ControlKind.NEAR_MISS for c in outcome.controls), f"claim {spec.id} has no near-miss control"
    assert outcome.check.power and outcome.check.resolution, f"claim {spec.id} does not state its power"


@given(seed=seeds, N=st.integers(2, 4), K=st.integers(1, 2), m=st.integers(2, 4), n=st.integers(2, 4),
       kind=st.sampled_from(PERTURBATIONS), loss=losses)
def test_theorem_4_1_property(seed, N, K, m, n, kind, loss):
    """Theorem 4.1: above r(r+1)/2 > KN, with a hypothesis-drawn perturbation family, every multi-start
    end point is certified global and rank deficient."""
    rng = np.random.default_rng(seed)
    K = max(K, min_outputs(loss))
    inst = synthetic.gaussian(rng, N, K, m, n, loss=loss, lam=0.05)
    eps = 1e-8 if kind == "tiny" else 1e-3
    inst = inst.with_(P=random_perturbation(rng, m + n, kind, eps))
    points = study(inst, no_spurious_rank(inst.kn), 3, rng, "cpu")
    c = counts(points)
    assert not any(p.spurious for p in points) and c["spurious_local_min"] == 0
    assert c["global"] == len(points), c
    assert max(p.sigma_r_ratio for p in points) <= RANK_DEFICIENT_RTOL


@given(seed=seeds, N=st.integers(1, 4), K=st.integers(1, 2), n=st.integers(4, 9),
       loss=losses, lam=st.sampled_from([0.0, 0.05]))
def test_theorem_3_1_property(seed, N, K, n, loss, lam):
    """Theorem 3.1 made constructive: from the full-rank certified minimizer of a trace-sensing instance the
    reduction reaches r(r+1)/2 ≤ KN at the same objective."""
    K = max(K, min_outputs(loss))
    inst = synthetic.trace_sensing(np.random.default_rng(seed), N, K, n, loss=loss, lam=lam)
    delta = synthetic.trace_sensing_optimum(inst)
    u, v = balanced_factors(delta)
    Q, path = reduce_rank(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, np.vstack([u, v]))
    assert triangular(Q.shape[1]) <= inst.kn and Q.shape[1] <= existence_rank_bound(inst.kn)
    assert abs(path[-1].objective - path[0].objective) <= exact_rtol(np.float64) * max(1, abs(path[0].objective))
    if lam > 0:
        assert certify(inst, Q=Q).certified


@given(seed=seeds, eps=st.sampled_from([1e-3, 1e-2, 1e-1]), kind=st.sampled_from(PERTURBATIONS))
def test_corollary_4_2_property(seed, eps, kind):
    """Corollary 4.2: the certified minimizer of F_P with ‖P‖_F < ε is within 2ε‖δ*‖_* of min L̂_λ."""
    rng = np.random.default_rng(seed)
    inst = synthetic.gaussian(rng, 3, 1, 3, 3, lam=0.05)
    r = no_spurious_rank(inst.kn)
    opt = certify(inst, Q=solve_bm(inst, r, starts=2, init="random", rng=rng, device="cpu").Q)
    pinst = inst.with_(P=random_perturbation(rng, 6, kind, 0.5 * eps))
    sol = solve_bm(pinst, r, starts=2, init="random", rng=rng, device="cpu")
    assert opt.certified and certify(pinst, Q=sol.Q).certified
    bound = corollary_4_2_bound(opt.objective, eps, float(opt.singular_values.sum()))
    assert inst.objective(sol.delta) <= bound + opt.gap_bound


def test_verdict_helpers_have_an_inconclusive_band():
    assert verdict_from_margin(1.0, 0.1) == Verdict.HOLDS
    assert verdict_from_margin(-1.0, 0.1) == Verdict.VIOLATED
    assert verdict_from_margin(0.05, 0.1) == Verdict.INCONCLUSIVE
    assert verdict_from_margin(1.0, 0.1, conclusive=False) == Verdict.INCONCLUSIVE
    assert verdict_equality(1e-12, 1e-9) == Verdict.HOLDS
    assert verdict_equality(1e-8, 1e-9) == Verdict.INCONCLUSIVE
    assert verdict_equality(1.0, 1e-9) == Verdict.VIOLATED


def test_unanimous_gives_a_verdict_only_where_the_readings_agree():
    H, V, I = Verdict.HOLDS, Verdict.VIOLATED, Verdict.INCONCLUSIVE
    assert unanimous([H, H]) is H and unanimous([V, V]) is V
    assert unanimous([H, V]) is I and unanimous([V, I]) is I and unanimous([]) is I


def test_binomial_verdict():
    assert binomial_verdict(100, 100, 0.9) == Verdict.HOLDS
    assert binomial_verdict(50, 100, 0.9) == Verdict.VIOLATED
    assert binomial_verdict(9, 10, 0.9) == Verdict.INCONCLUSIVE


def test_report_resumes_after_interruption_and_is_reproducible(tmp_path, monkeypatch):
    only = ["lemma_2_2", "ce_lipschitz"]
    specs = {s.id: s for s in all_claims()}

    def interrupted(ctx):
        raise KeyboardInterrupt

    def must_not_run(ctx):
        pytest.fail("a finished claim was recomputed")

    # the second claim is interrupted: the first is kept on disk and in the partial report
    monkeypatch.setattr(report, "all_claims", lambda: [specs["lemma_2_2"], replace(specs["ce_lipschitz"], run=interrupted)])
    with pytest.raises(KeyboardInterrupt):
        report.generate("quick", tmp_path, seed=3, only=only, progress=False)
    partial = json.loads((tmp_path / "report.json").read_text())
    assert [c["id"] for c in partial["claims"]] == ["lemma_2_2"]
    assert partial["summary"]["pending"] == ["ce_lipschitz"]
    # the rerun resumes: lemma_2_2 comes from the cache
    monkeypatch.setattr(report, "all_claims", lambda: [replace(specs["lemma_2_2"], run=must_not_run), specs["ce_lipschitz"]])
    first = report.generate("quick", tmp_path, seed=3, only=only, progress=False)
    assert [c["id"] for c in first["claims"]] == only and not first["summary"]["pending"]
    # same seed, fresh run: the same verdicts and numbers
    monkeypatch.setattr(report, "all_claims", lambda: [specs["lemma_2_2"], specs["ce_lipschitz"]])
    again = report.generate("quick", tmp_path, seed=3, only=only, progress=False, fresh=True)
    strip = lambda r: [{k: v for k, v in c.items() if k != "seconds"} for c in r["claims"]]  # noqa: E731
    assert strip(first) == strip(again)
    for name in ("report.md", "report.html", "report.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_report_draws_each_figure_once(tmp_path, monkeypatch):
    """The report is rewritten after every claim; figures of claims finished earlier are not drawn again."""
    only = ["theorem_3_1", "lemma_c4", "ce_lipschitz"]
    drawn, draw = [], report.figures.draw

    def counting(name, data, path):
        drawn.append(name)
        return draw(name, data, path)

    monkeypatch.setattr(report.figures, "draw", counting)
    out = report.generate("quick", tmp_path, seed=3, only=only, progress=False)
    assert drawn and len(drawn) == len(set(drawn))
    assert all((tmp_path / "figures" / f"{name}.png").exists() for name in drawn)
    assert all(f"figures/{name}.png" in (tmp_path / "report.md").read_text() for name in drawn)
    assert [c["id"] for c in out["claims"]] == only


def test_report_prints_nested_details_in_markdown_and_html():
    """Tables and per-run records (dicts, lists) reach report.md and report.html, long lists cut with a count."""
    details = {"table": {"r = 8": "paper 0.0061 | ours 8e-05"}, "runs": [{"seed": 0, "ranks": [8, 8]}],
               "end points": [f"p{i}" for i in range(report.DETAILS_LIST_SHOWN + 3)], "empty": [], "x": 0.123456}
    md = "\n".join(report._details_lines(details))
    assert "  - table:\n    - r = 8: paper 0.0061 | ours 8e-05" in md
    assert "    - seed 0; ranks 8, 8" in md and "  - empty: (none)" in md and "  - x: 0.1235" in md
    assert f"p{report.DETAILS_LIST_SHOWN - 1}" in md and f"p{report.DETAILS_LIST_SHOWN}" not in md
    assert f"… 3 more (all {report.DETAILS_LIST_SHOWN + 3} in report.json)" in md
    page = report._details_html(details)
    assert "<i>r = 8:</i> paper 0.0061 | ours 8e-05" in page and "seed 0; ranks 8, 8" in page and "… 3 more" in page


def test_report_rejects_unknown_profile(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        report.generate("medium", tmp_path)


@pytest.mark.parametrize("only", [["nope"], ["lemma_2_2", "nope"], []])
def test_report_rejects_unknown_claim_ids_before_writing(tmp_path, only):
    with pytest.raises(ValueError, match="only: unknown claim id"):
        report.generate("quick", tmp_path / "out", only=only, progress=False)
    assert not (tmp_path / "out").exists()
