"""Lemma 2.2: ‖δ‖_* = ½ min {‖u‖² + ‖v‖² : u vᵀ = δ}, attained by the balanced factors."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.lemma_2_2 import balanced_factors, factor_norm
from theory.linearized_model import nuclear_norm
from verify.claims.base import ClaimOutcome, ClaimSpec, Context, ControlKind, Profiles, Timer, control
from verify.claims.verdicts import combine, verdict_equality
from verify.results import CheckResult, Verdict
from verify.tolerances import LEMMA_2_2_RTOL

ID = "lemma_2_2"


@dataclass(frozen=True)
class Lemma22Config:
    matrices: int
    #: random re-factorizations u R, v R⁻ᵀ tried per matrix
    refactorizations: int = 5


CONFIG = Profiles(quick=Lemma22Config(matrices=30), full=Lemma22Config(matrices=300))


def _samples(ctx: Context):
    rng = ctx.rng(ID)
    for _ in range(CONFIG.of(ctx).matrices):
        m, n = rng.integers(1, 12, size=2)
        k = int(rng.integers(1, min(m, n) + 1))
        cond = 10.0 ** rng.uniform(0, 6)
        U = np.linalg.qr(rng.standard_normal((m, k)))[0]
        V = np.linalg.qr(rng.standard_normal((n, k)))[0]
        yield (U * np.logspace(0, -np.log10(cond), k)) @ V.T, rng


def evaluate(ctx: Context, norm=nuclear_norm) -> tuple[Verdict, float, dict]:
    """Relative error of ½(‖u‖²+‖v‖²) = norm(δ) at balanced factors, and the worst violation of
    norm(δ) ≤ ½(‖u R‖² + ‖v R⁻ᵀ‖²) over random re-factorizations R."""
    eq_err, ineq_viol, count = 0.0, 0.0, 0
    for delta, rng in _samples(ctx):
        u, v = balanced_factors(delta)
        target = norm(delta)
        eq_err = max(eq_err, abs(factor_norm(u, v) - target) / target)
        for _ in range(CONFIG.of(ctx).refactorizations):
            R = rng.standard_normal((u.shape[1],) * 2) + 2 * np.eye(u.shape[1])
            ineq_viol = max(ineq_viol, (target - factor_norm(u @ R, v @ np.linalg.inv(R).T)) / target)
        count += 1
    verdict = combine([verdict_equality(eq_err, LEMMA_2_2_RTOL), verdict_equality(max(ineq_viol, 0.0), LEMMA_2_2_RTOL)])
    return verdict, LEMMA_2_2_RTOL - max(eq_err, ineq_viol), {"matrices": count, "max_equality_error": eq_err,
                                                              "max_inequality_violation": ineq_viol}


def run(ctx: Context) -> ClaimOutcome:
    with Timer() as t:
        verdict, margin, details = evaluate(ctx)
    check = CheckResult(ID, "‖δ‖_* = ½ min{‖u‖_F² + ‖v‖_F² : u vᵀ = δ}, attained by the balanced factors "
                            "U Σ^½, V Σ^½ (weight decay on LoRA factors is nuclear-norm regularization).",
                        "Lemma 2.2", verdict, margin, [f"{details['matrices']} random matrices, condition ≤ 1e6"],
                        t.seconds, details)
    bad_v, bad_m, _ = evaluate(ctx, norm=lambda d: float(np.linalg.norm(d)))
    ctrl = control("lemma_2_2_frobenius", ID, "Frobenius norm in place of the nuclear norm", bad_v, bad_m, kind=ControlKind.GROSS)
    return ClaimOutcome(check, [ctrl])


CLAIMS = [ClaimSpec(ID, "Lemma 2.2 (nuclear norm = balanced factor norm)", "Lemma 2.2", run)]
