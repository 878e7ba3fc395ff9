"""Every figure drawer renders a PNG from plain-JSON data of the shape its claim produces."""
from __future__ import annotations

import pytest

from verify import figures

DATA = {
    "rank_reduction": {"paths": [{"label": "a", "ranks": [5, 4, 3], "bound": 3}]},
    "training_curves": {"optimum": 0.5, "curves": [{"label": "r=1", "history": [1.0, 0.7, 0.5]}], "title": "t"},
    "spurious_fraction": {"series": [{"label": "s", "kn": 4, "ranks": [1, 2, 3], "fractions": [0.5, 0.1, 0.0],
                                      "threshold": 3}]},
    "excess_risk": {"N": [16, 64], "bound": [1.0, 0.5], "observed_quantile": [0.1, 0.05],
                    "observed_mean": [0.08, 0.04], "quantile": 0.9},
    "rademacher": {"N": [4, 16], "bound": [1.0, 0.5], "exact": [0.6, 0.3]},
}


@pytest.mark.parametrize("kind", sorted(figures.DRAWERS))
def test_drawer_writes_a_png(tmp_path, kind):
    path = figures.draw(kind, DATA[kind], tmp_path / f"{kind}.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
