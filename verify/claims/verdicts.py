"""Verdict rules: from measured numbers to HOLDS / VIOLATED / INCONCLUSIVE with a signed margin
(> 0: the claim holds with that slack). Every claim module draws its verdicts from here or from a
rule of its own; no claim module imports another."""
from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from verify.experiments.landscape import EndPoint, RankPoints, counts
from verify.experiments.rademacher import RademacherEstimate
from verify.results import Certificate, Verdict
from verify.tolerances import RADEMACHER_SE, RANK_SPEED_RHO_TOL


def verdict_equality(error: float, tol: float, refute_factor: float = 100.0) -> Verdict:
    """Equality claims: HOLDS if error ≤ tol, VIOLATED if error > refute_factor·tol, else INCONCLUSIVE."""
    if not np.isfinite(error):
        return Verdict.INCONCLUSIVE
    if error <= tol:
        return Verdict.HOLDS
    return Verdict.VIOLATED if error > refute_factor * tol else Verdict.INCONCLUSIVE


def verdict_from_margin(margin: float, tol: float, conclusive: bool = True) -> Verdict:
    """HOLDS if margin > tol, VIOLATED if margin < −tol, else (or if not conclusive) INCONCLUSIVE."""
    if not conclusive or not np.isfinite(margin):
        return Verdict.INCONCLUSIVE
    if margin > tol:
        return Verdict.HOLDS
    if margin < -tol:
        return Verdict.VIOLATED
    return Verdict.INCONCLUSIVE


def verdict_inequality(margin: float, tol: float) -> Verdict:
    """An inequality that may hold with equality (a proof link such as ‖uvᵀ‖_* ≤ ½‖Q‖²): HOLDS if
    margin ≥ −tol (rounding), VIOLATED below; a non-finite margin is INCONCLUSIVE."""
    if not np.isfinite(margin):
        return Verdict.INCONCLUSIVE
    return Verdict.HOLDS if margin >= -tol else Verdict.VIOLATED


def combine(verdicts: list[Verdict]) -> Verdict:
    """VIOLATED if any is, else INCONCLUSIVE if any is, else HOLDS (empty → INCONCLUSIVE)."""
    if not verdicts:
        return Verdict.INCONCLUSIVE
    if Verdict.VIOLATED in verdicts:
        return Verdict.VIOLATED
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.HOLDS


def unanimous(verdicts: list[Verdict]) -> Verdict:
    """The one verdict of several readings of a claim when they all give it, else (or empty) INCONCLUSIVE: a
    verdict that flips with the reading is not given."""
    return verdicts[0] if verdicts and all(v is verdicts[0] for v in verdicts) else Verdict.INCONCLUSIVE


def certificate_verdict(c: Certificate) -> tuple[Verdict, float]:
    """'This point is a global minimizer': the certificate's relative slack decides (no bound: INCONCLUSIVE)."""
    return verdict_from_margin(c.relative_slack, 0.0), c.relative_slack


def landscape_verdict(points: list[EndPoint]) -> tuple[Verdict, float]:
    """No spurious SOSP: VIOLATED if one is found (an SOSP above the best value at its rank, strict or not;
    margin: its relative excess over the best value); INCONCLUSIVE if some start did not end certified; margin:
    the smallest certificate slack."""
    c = counts(points)
    if any(p.spurious for p in points):
        worst = max(p.F_P for p in points if p.spurious)
        best = min(p.F_P for p in points if np.isfinite(p.F_P))
        return Verdict.VIOLATED, -(worst - best) / max(1.0, abs(best))
    ok = c["global"] == len(points)
    return (Verdict.HOLDS if ok else Verdict.INCONCLUSIVE), min(p.slack for p in points)


def rank_verdict(rp: RankPoints) -> tuple[Verdict, float]:
    """No spurious SOSP at one rank of a sweep: VIOLATED if a strict local minimum (exact Hessian, modulo
    rotations) lies above the rank's reference value (margin: minus the largest relative excess); HOLDS if
    every start is certified global (margin: the smallest certificate slack); else INCONCLUSIVE (saddles,
    unconverged points, and degenerate or unresolved SOSPs above the reference: they pass the tolerances
    but are not proved to be local minima)."""
    bad = rp.spurious(strict_only=True)
    if bad:
        return Verdict.VIOLATED, -max(rp.excess(p) for p in bad)
    slack = min(p.certificate.relative_slack for p in rp.points)
    ok = all(p.label == "global" for p in rp.points)
    return (Verdict.HOLDS if ok else Verdict.INCONCLUSIVE), float(slack)


def rademacher_verdict(stats: dict[int, RademacherEstimate], K: int, bound) -> tuple[Verdict, float, dict]:
    """HOLDS if mean + RADEMACHER_SE·SE < bound(R, K, N) for every N; VIOLATED if mean − RADEMACHER_SE·SE
    > bound for some N."""
    verdicts, margins, rows = [], [], {}
    for N, est in stats.items():
        mean, se, R = est.mean, est.se, est.R
        b = bound(R, K, N)
        verdicts.append(Verdict.HOLDS if mean + RADEMACHER_SE * se < b else
                        Verdict.VIOLATED if mean - RADEMACHER_SE * se > b else Verdict.INCONCLUSIVE)
        margins.append((b - mean) / b)
        rows[f"N={N}"] = f"exact {mean:.4g} ± {se:.1g} ≤ R D √K/√N = {b:.4g} (bound ÷ exact = {b / mean:.3g})"
    return combine(verdicts), float(min(margins)), rows


def rank_order(cell: dict[int, int | None], optimum_rank: int) -> tuple[int | None, float]:
    """Ordering of one (protocol, seed, tolerance) cell of iteration counts over the ranks ≥ rank(δ*) that
    reach the tolerance: +1 higher rank faster (−ρ > RANK_SPEED_RHO_TOL), −1 lower rank faster (−ρ below its
    negative), 0 neither; None when fewer than 3 ranks reach it. Second value: −ρ (nan when undecided)."""
    reached = {r: it for r, it in cell.items() if it is not None and r >= optimum_rank}
    if len(reached) < 3:
        return None, float("nan")
    its = list(reached.values())
    rho = 0.0 if len(set(its)) == 1 else float(spearmanr(list(reached), its).statistic)
    return (1 if -rho > RANK_SPEED_RHO_TOL else -1 if -rho < -RANK_SPEED_RHO_TOL else 0), -rho


def rank_order_verdict(table: dict, optimum_rank: int, optimum_certified: bool) -> tuple[Verdict, float, dict]:
    """Section 6 over every cell of ``table`` {(protocol, seed, tolerance): {rank: iterations}}: HOLDS when
    every cell orders higher rank faster, VIOLATED when every cell orders lower rank faster, otherwise
    (a cell undecided, unordered, or cells disagreeing) INCONCLUSIVE. Margin: the smallest −ρ over the
    cells (the largest when VIOLATED); rows: how many cells say what."""
    orders = {key: rank_order(cell, optimum_rank) for key, cell in table.items()}
    signs = [o for o, _ in orders.values()]
    scores = [s for _, s in orders.values() if np.isfinite(s)]
    rows = {"cells (protocol × seed × tolerance)": len(signs), "higher rank faster": signs.count(1),
            "lower rank faster": signs.count(-1), "no ordering": signs.count(0),
            "undecided (< 3 ranks ≥ rank(δ*) reach the tolerance)": signs.count(None)}
    if not optimum_certified or not scores:
        return Verdict.INCONCLUSIVE, float("nan"), rows
    if all(s == 1 for s in signs):
        return Verdict.HOLDS, min(scores), rows
    if all(s == -1 for s in signs):
        return Verdict.VIOLATED, max(scores), rows
    return Verdict.INCONCLUSIVE, min(scores), rows
