"""Paired comparison of two classifiers on the same labelled examples (Table 4's "actual vs linearized", judged
per example): the exact binomial interval of their disagreement rate against DISAGREE_MAX, and the paired accuracy
difference. Used by ``entk_ntk_regime`` (the actual network at δ* against its linearization) and by
``table_4_linearization`` (actual LoRA training against δ* and its own linearization).

A disagreement rate bounds the accuracy gap: |acc(a) − acc(b)| ≤ #{a ≠ b}/n.
"""
from __future__ import annotations

import numpy as np
from scipy.stats import binomtest

from verify.results import Verdict
from verify.tolerances import DISAGREE_CI_LEVEL, DISAGREE_MAX


def disagreement_verdict(a: np.ndarray, b: np.ndarray) -> tuple[Verdict, float, str]:
    """Whether two classifiers' predictions ``a``, ``b`` (n,) on the same examples agree up to DISAGREE_MAX: the
    exact (Clopper–Pearson) interval at level DISAGREE_CI_LEVEL of the disagreement rate k/n decides — HOLDS if its
    upper end is ≤ ε, VIOLATED if its lower end is > ε, INCONCLUSIVE otherwise. Returns (verdict, margin = ε − the
    deciding end (the upper one unless VIOLATED), a one-line summary)."""
    k, n = int(np.sum(np.asarray(a) != np.asarray(b))), int(np.asarray(a).size)
    ci = binomtest(k, n).proportion_ci(DISAGREE_CI_LEVEL, method="exact")
    eps = DISAGREE_MAX
    v = Verdict.HOLDS if ci.high <= eps else Verdict.VIOLATED if ci.low > eps else Verdict.INCONCLUSIVE
    return v, eps - (ci.low if v is Verdict.VIOLATED else ci.high), \
        f"{k}/{n} = {k / n:.3f} (interval [{ci.low:.3f}, {ci.high:.3f}]): {v.value}"


def decided_counts(n: int) -> tuple[int, int]:
    """(largest disagreement count out of n that :func:`disagreement_verdict` confirms, −1 if none; smallest that it
    refutes)."""
    votes = [disagreement_verdict(np.arange(n) < k, np.zeros(n, bool))[0] for k in range(n + 1)]
    return (max((k for k, v in enumerate(votes) if v is Verdict.HOLDS), default=-1),
            min(k for k, v in enumerate(votes) if v is Verdict.VIOLATED))


def paired_accuracy_difference(a: np.ndarray, b: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(accuracy of a − accuracy of b, its paired standard error √((d/n − Δ²)/n), d = examples on which exactly one
    of the two is right) for predictions a, b (n,) on the same labelled examples."""
    ra, rb = np.asarray(a) == np.asarray(labels), np.asarray(b) == np.asarray(labels)
    n, diff = ra.size, float(ra.mean() - rb.mean())
    return diff, float(np.sqrt(max(np.mean(ra != rb) - diff ** 2, 0.0) / n))
