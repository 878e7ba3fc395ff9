"""The pieces of the Section 6 measurement and of the follow-up and eNTK checks behave as documented (that each
claim has a caught near-miss control is asserted for every claim in tests/test_claims.py)."""
from __future__ import annotations

import numpy as np

from verify import synthetic
from verify.claims.entk_claims import shrink_past, split_verdict
from verify.claims.verdicts import rank_order, rank_order_verdict
from verify.experiments.controls import planted_table, smallest_flip
from verify.experiments.rank_protocols import starts
from verify.results import Verdict

def test_rank_order_reads_the_direction_of_one_cell():
    assert rank_order({1: 50, 2: 30, 4: 20, 8: 10}, 1)[0] == 1
    assert rank_order({1: 10, 2: 20, 4: 30, 8: 50}, 1)[0] == -1
    assert rank_order({1: 10, 2: None, 4: None, 8: 50}, 1)[0] is None  # fewer than 3 ranks reach it
    assert rank_order({1: 10, 2: 50, 4: 30, 8: 40}, 4)[0] is None  # ranks below rank(δ*) do not count


def test_rank_order_verdict_is_conclusive_only_when_every_cell_agrees():
    faster, slower = {2: 50, 4: 30, 8: 20}, {2: 20, 4: 30, 8: 50}
    assert rank_order_verdict({"a": faster, "b": faster}, 1, True)[0] is Verdict.HOLDS
    assert rank_order_verdict({"a": slower, "b": slower}, 1, True)[0] is Verdict.VIOLATED
    assert rank_order_verdict({"a": faster, "b": slower}, 1, True)[0] is Verdict.INCONCLUSIVE
    assert rank_order_verdict({"a": faster, "b": {2: 5, 4: None, 8: None}}, 1, True)[0] is Verdict.INCONCLUSIVE
    assert rank_order_verdict({"a": faster}, 1, False)[0] is Verdict.INCONCLUSIVE
    assert rank_order_verdict(planted_table({"a": faster, "b": faster}), 1, True)[0] is Verdict.VIOLATED


def test_smallest_flip_moves_one_count_past_a_neighbour():
    cell = {2: 50, 4: 30, 8: 20, 16: 19}
    order = lambda c: rank_order(c, 1)[0]  # noqa: E731
    r, new = smallest_flip(cell, order)
    assert order({**cell, r: new}) != order(cell)
    assert abs(new - cell[r]) <= 12  # 30 → 18 or 20 → 31: the cheapest move past a neighbour


def test_protocol_starts_fix_the_initial_norm_as_documented():
    inst = synthetic.gaussian(np.random.default_rng(0), 4, 2, 30, 20)
    ranks = [1, 4, 16]
    equal = starts(inst, ranks, "equal", np.random.default_rng(1))
    paper = starts(inst, ranks, "paper", np.random.default_rng(1))
    project = starts(inst, ranks, "project", np.random.default_rng(1))
    assert np.allclose(np.linalg.norm(equal, axis=(1, 2)), 1.0)
    assert not np.any(paper[:, :inst.m]) and not np.any(project[:, inst.m:])  # paper: u₀ = 0; project: v₀ = 0
    # paper init A ~ N(0, 1/(r n²)): ‖Q₀‖² ≈ 1/n at every rank; project: ‖Q₀‖² ≈ r
    assert np.allclose(np.sum(paper ** 2, axis=(1, 2)) * inst.n, 1.0, atol=0.5)
    assert np.allclose(np.sum(project ** 2, axis=(1, 2)) / ranks, 1.0, atol=0.5)
    for i, r in enumerate(ranks):
        assert not np.any(equal[i, :, r:])


def test_shrink_past_finds_the_largest_shrink_moving_the_linearized_predictions():
    # two classes; example i has f0 = (0, −i) and f_dir = (0, 2i): at s its margin f_1 − f_0 = i(2s − 1), so every
    # example with i > 0 flips below s = ½ and none above it
    i = np.arange(10.0)
    f0, f_dir = np.stack([0 * i, -i], 1), np.stack([0 * i, 2 * i], 1)
    s_, k = shrink_past(f0, f_dir, 9)
    assert k == 9 and 0.49 <= s_ <= 0.5  # at ½ the margins tie; argmax takes class 0
    assert shrink_past(f0, f_dir, 11) is None  # only 9 can move: the near miss then has no premise


def test_split_verdict_takes_the_test_split_unless_train_refutes():
    H, V, I = Verdict.HOLDS, Verdict.VIOLATED, Verdict.INCONCLUSIVE
    assert split_verdict((H, 0.02), (I, -0.04)) == (H, 0.02)
    assert split_verdict((I, -0.01), (I, -0.04)) == (I, -0.01)
    assert split_verdict((H, 0.02), (V, -0.1)) == (V, -0.1)
    assert split_verdict((V, -0.3), (V, -0.1)) == (V, -0.3)
