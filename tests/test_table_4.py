"""The paired statistics of entk_ntk_regime and table_4_linearization (verify.claims.agreement): the disagreement-rate
verdict by its exact binomial interval, the counts it decides on 272 test sentences, and the paired accuracy difference."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from verify.claims.agreement import decided_counts, disagreement_verdict, paired_accuracy_difference
from verify.results import Verdict
from verify.tolerances import DISAGREE_CI_LEVEL, DISAGREE_MAX


def _pair(k: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.zeros(n, dtype=int)
    b = a.copy()
    b[:k] = 1
    return a, b


@pytest.mark.parametrize("k, verdict", [(0, Verdict.HOLDS), (4, Verdict.HOLDS), (7, Verdict.HOLDS),
                                        (8, Verdict.INCONCLUSIVE), (20, Verdict.INCONCLUSIVE),
                                        (21, Verdict.VIOLATED), (65, Verdict.VIOLATED)])
def test_disagreement_verdict_on_272_sentences(k, verdict):
    """The counts measured on MiniLM's 272 test sentences (4: η = 0.1 against δ*; 65: zero-shot against δ*) and the
    edges of the decided ranges."""
    v, _, text = disagreement_verdict(*_pair(k, 272))
    assert v is verdict and text.startswith(f"{k}/272")


def test_decided_counts_are_the_interval_edges():
    k_hold, k_refute = decided_counts(272)
    assert (k_hold, k_refute) == (7, 21)
    ci = lambda k: binomtest(k, 272).proportion_ci(DISAGREE_CI_LEVEL, method="exact")  # noqa: E731
    assert ci(k_hold).high <= DISAGREE_MAX < ci(k_hold + 1).high
    assert ci(k_refute - 1).low <= DISAGREE_MAX < ci(k_refute).low


def test_margin_sign_follows_the_verdict():
    for k in range(0, 40):
        v, m, _ = disagreement_verdict(*_pair(k, 272))
        assert (m >= 0) if v is Verdict.HOLDS else (m < 0)


def test_paired_accuracy_difference():
    labels = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    a = labels.copy()
    b = labels.copy()
    b[:2] = 1 - b[:2]  # b wrong on two examples a gets right
    diff, se = paired_accuracy_difference(a, b, labels)
    assert diff == pytest.approx(0.25)
    assert se == pytest.approx(np.sqrt((2 / 8 - 0.25 ** 2) / 8))
    assert paired_accuracy_difference(a, a, labels) == (0.0, 0.0)
