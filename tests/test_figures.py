"""Every figure drawer renders a PNG from the plain-JSON data that the claims build (verify.experiments.figure_data)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from verify import figures
from verify.experiments import figure_data
from verify.experiments.rademacher import RademacherEstimate
from verify.experiments.rank_protocols import PROJECT, ProtocolRuns



#: one example per drawer, built the way the claims build it
DATA = {
    "rank_reduction": figure_data.rank_reduction([("a", [5, 4, 3], 3)]),
    "spurious_fraction": figure_data.spurious_fraction(
        [figure_data.spurious_series("s", 4, [1, 2, 3], [0.5, 0.1, 0.0], 3)]),
    "excess_risk": figure_data.excess_risk([16, 64], [1.0, 0.5], 0.9, {16: np.array([0.1, 0.2]), 64: np.array([0.05])}),
    "rank_protocol_counts": figure_data.rank_protocol_counts(
        [ProtocolRuns(PROJECT, 0.1, [{"0.1": {1: 30, 2: 20}, "0.001": {1: None, 2: 900}}])], [1, 2], 1, "t"),
    "rademacher": figure_data.rademacher({4: RademacherEstimate(0.6, 0.0, 1.0), 16: RademacherEstimate(0.3, 0.01, 1.0)},
                                         {4: 1.0, 16: 0.5}),
    "kim_constants": {"kind": "kim_constants", "series": [
        {"label": "a, r = 2", "alpha_sampled": 0.08, "alpha_true_or_bound": 7e-4, "beta_sampled": 2.9,
         "beta_true_or_bound": 2.91}]},
    "kim_rank_curves": {"kind": "kim_rank_curves", "ranks": [8, 64],
                        "ours_linearized": [{"alpha_upper": 1e-4, "beta_lower": 0.01, "beta_over_alpha": 100.0}] * 2,
                        "ours_actual": [{"alpha_upper": -1e-6, "beta_lower": 0.005, "beta_over_alpha": None}] * 2,
                        "paper": {"8": [8.0249, 0.0061, 0.0492], "64": [None, -0.0445, 0.3371]},
                        "witness_actual": -1e-6, "alpha_refuted": True},
    "min_grad_rates": figure_data.min_grad_rates("t", [figure_data.min_grad_series(
        "r = 1", [2, 10, 100], [1e-2, 1e-3, 1e-5], {"Thm 3.5": [1.0, 0.5, 0.1]}, {"1/T": 0.1, "1/logT": 0.01})]),
    "kim_end_points": {"kind": "kim_end_points", "points": [
        {"norm": 16.2, "rank": 2, "scale": 0.0, "label": "global", "model": "synthetic", "lam": 0.01, "acc": 1.0},
        {"norm": 400.0, "rank": 8, "scale": 4.3, "label": "spurious", "model": "linearized MiniLM", "lam": 0.01,
         "acc": 0.8},
        {"norm": 0.0, "rank": 0, "scale": 0.1, "label": "unregularized", "model": "actual", "lam": 0.0, "acc": 0.5},
        {"norm": 0.34, "rank": 2, "scale": 0.0, "label": "spurious", "model": "SDP-built", "lam": 0.1, "acc": 1.0}]},
    "table_4_objective": {"kind": "table_4_objective", "curves": {"η = 0.1, seed 0": [0.63, 0.5, 0.1],
                                                                  "η = 0.5, seed 0 (near miss)": [0.63, 2.9, 0.09]}},
}


def test_every_drawer_has_an_example():
    assert sorted(DATA) == sorted(figures.DRAWERS)


@pytest.mark.parametrize("kind", sorted(figures.DRAWERS))
def test_drawer_writes_a_png(tmp_path, kind):
    data = json.loads(json.dumps(DATA[kind]))  # what a resumed report reads back from its cache
    assert data.get("kind", kind) == kind
    path = figures.draw(kind, data, tmp_path / f"{kind}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
