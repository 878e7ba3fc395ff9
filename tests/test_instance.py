"""Instance validation (every bad input names its quantity) and the .npz round trip."""
from __future__ import annotations

import numpy as np
import pytest
from strategies import build_instance

from verify.instance import Instance, InstanceError, check_rank, load_instance


def _parts(loss="squared"):
    inst = build_instance(0, 4, 2, 3, 2, loss)
    return dict(G=inst.G, f0=inst.f0, Y=inst.Y, loss=loss, lam=0.1)


@pytest.mark.parametrize("change, message", [
    (dict(G=np.zeros((4, 2, 3))), r"G must have shape \(N, K, m, n\)"),
    (dict(f0=np.zeros((4, 3))), r"f0 must have shape \(N, K\)"),
    (dict(Y=np.zeros((4,))), r"Y must have shape \(N, K\)"),
    (dict(lam=-0.5), r"lam \(λ\) must be ≥ 0"),
    (dict(lam=float("nan")), r"lam \(λ\) must be finite"),
    (dict(loss="hinge"), "unknown loss 'hinge'"),
    (dict(P=np.eye(4)), r"P must have shape \(m \+ n, m \+ n\) = \(5, 5\)"),
    (dict(P=np.triu(np.ones((5, 5)))), "P must be symmetric"),
    (dict(P=-np.eye(5)), "P must be positive semidefinite"),
    (dict(P=np.full((5, 5), np.nan)), "P contains NaN"),
])
def test_bad_input_names_the_quantity(change, message):
    parts = _parts() | change
    with pytest.raises(InstanceError, match=message):
        Instance(**parts)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_nan_and_inf_in_G(bad):
    parts = _parts()
    parts["G"] = parts["G"].copy()
    parts["G"][0, 0, 0, 0] = float(bad)
    with pytest.raises(InstanceError, match=f"G contains {'NaN' if bad == 'nan' else 'Inf'}"):
        Instance(**parts)


def test_cross_entropy_labels():
    parts = _parts("cross_entropy")
    with pytest.raises(InstanceError, match="labels out of range"):
        Instance(**(parts | dict(Y=np.array([0, 1, 2, 0]))))
    with pytest.raises(InstanceError, match="integer class indices"):
        Instance(**(parts | dict(Y=np.array([0, 0.5, 1, 0]))))
    with pytest.raises(InstanceError, match=r"Y must have shape \(N,\)"):
        Instance(**(parts | dict(Y=np.zeros((4, 2)))))


def test_rank_must_be_positive():
    with pytest.raises(InstanceError, match="rank must be an integer ≥ 1"):
        check_rank(0)


@pytest.mark.parametrize("loss", ["squared", "cross_entropy"])
def test_npz_round_trip(tmp_path, loss):
    inst = Instance(**_parts(loss), P=0.01 * np.eye(5), provenance={"seed": 7})
    path = inst.save(tmp_path / "x.npz")
    back = load_instance(path)
    for key in ("G", "f0", "Y", "P"):
        np.testing.assert_array_equal(getattr(back, key), getattr(inst, key))
    assert (back.loss, back.lam, back.provenance) == (loss, 0.1, {"seed": 7})
    assert load_instance(path, lam=0.5).lam == 0.5


def test_unreadable_and_incomplete_files(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(InstanceError, match="cannot read instance file"):
        load_instance(bad)
    with pytest.raises(InstanceError, match="cannot read instance file"):
        load_instance(tmp_path / "missing.npz")
    np.savez(tmp_path / "partial.npz", G=np.zeros((1, 1, 1, 1)))
    with pytest.raises(InstanceError, match=r"lacks the keys \['Y', 'f0', 'lam', 'loss'\]"):
        load_instance(tmp_path / "partial.npz")
