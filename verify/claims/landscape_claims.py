"""Section 4: no spurious SOSPs above r(r+1)/2 > KN (Thm 4.1), the ε-approximation at SOSP end points
(Cor 4.2), and gradient descent leaving strict saddles (Thms 2.3/2.4 in practice).

Power. Every instance has min(m, n) ≥ 3·r_thr (r_thr = smallest r with r(r+1)/2 > KN), so full-rank
SOSPs are possible at every rank the sweep runs, and P is a Wishart matrix (it has a density) whose
⟨P, QQᵀ⟩ at the end points is far above the gap tolerance. Each claim's near-miss control runs the
same check one step past its hypothesis: at the highest rank below r_thr where the sweep found a
spurious strict local minimum (Thm 4.1, Cor 4.2), or from a start exactly on a saddle (saddles).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.approximation import corollary_4_2_chain
from theory.thresholds import no_spurious_rank
from verify import synthetic
from verify.certify import certify
from verify.claims.base import ClaimOutcome, ClaimSpec, Context, ControlKind, Profiles, Timer, control
from verify.claims.verdicts import combine, rank_verdict, verdict_from_margin, verdict_inequality
from verify.experiments import figure_data
from verify.experiments.gd import end_points, local_step, padded_saddle
from verify.experiments.landscape import SOSP_LABELS, RankSweep, random_perturbation, rank_sweep
from verify.instance import Instance
from verify.results import CheckResult, Verdict
from verify.solvers.bm import solve_bm, solve_bm_multistart
from verify.sosp import classify_point, sosp_test
from verify.tolerances import (C42_LINK_RTOL, GAP_RTOL, RANK_DEFICIENT_RTOL, SADDLE_AT_RTOL, SADDLE_ESCAPE_RTOL,
                               T41_SPURIOUS_RTOL)


@dataclass(frozen=True)
class Family:
    """Gaussian sensing, m = n, one instance per seed: ``synthetic.gaussian(default_rng(ctx.seed + seed), …)``."""

    N: int
    K: int
    m: int
    seeds: tuple[int, ...]
    #: random starts per rank
    starts: int
    loss: str = "squared"
    lam: float = 0.01

    def instances(self, ctx: Context) -> list[Instance]:
        return [synthetic.gaussian(np.random.default_rng(ctx.seed + s), self.N, self.K, self.m, self.m, loss=self.loss,
                                   lam=self.lam, name=f"N={self.N} K={self.K} {self.m}×{self.m} {self.loss} seed {s}")
                for s in self.seeds]


@dataclass(frozen=True)
class SweepConfig:
    families: tuple[Family, ...]
    #: ‖P‖_F of the Wishart perturbation over the instance's λ (Corollary 4.2 takes ε = ‖P‖_F / P_FRACTION)
    p_over_lam: float = 0.1


#: m = n = 12, KN = 6 (r_thr = 4); m = n = 18, KN = 20 (r_thr = 6); m = n = 24, KN = 30 (r_thr = 8). Cross-entropy
#: (random labels) m = n = 15, KN = 12 (r_thr = 5), λ = 1e-4: the optimum has rank ≤ 2 and no seed tried (0-3)
#: showed a spurious strict local minimum at any rank — it stays in the full profile as a no-evidence instance
CE_FAMILY = Family(6, 2, 15, (0, 1), 16, "cross_entropy", 1e-4)
THEOREM_4_1 = Profiles(quick=SweepConfig((Family(3, 2, 12, (0,), 24), Family(10, 2, 18, (0,), 16))),
                       full=SweepConfig((Family(3, 2, 12, (0, 1, 2, 3, 4), 24), Family(10, 2, 18, (0, 1, 2), 16),
                                         Family(15, 2, 24, (0,), 16), CE_FAMILY)))
COROLLARY_4_2 = Profiles(quick=SweepConfig((Family(3, 2, 12, (0,), 12), Family(10, 2, 18, (0,), 12))),
                         full=SweepConfig((Family(3, 2, 12, (0, 4), 24), Family(10, 2, 18, (0,), 16))))
#: Corollary 4.2 needs ‖P‖_F < ε: ‖P‖_F = P_FRACTION · ε
P_FRACTION = 0.9


def _sweeps(ctx: Context, cfg: SweepConfig, key: str) -> list[tuple[Instance, RankSweep]]:
    out = []
    for fam in cfg.families:
        for inst in fam.instances(ctx):
            rng = ctx.rng(f"{key}/{inst.name}")
            pinst = inst.with_(P=random_perturbation(rng, inst.m + inst.n, "full_rank", cfg.p_over_lam * inst.lam))
            out.append((pinst, rank_sweep(pinst, fam.starts, rng, ctx.device, name=inst.name)))
    return out


def _pmass(inst: Instance, Qs: list[np.ndarray]) -> float:
    """min over end points of ⟨P, QQᵀ⟩ / max(1, |F_P(Q)|): the perturbation's weight in units of the gap tolerance scale."""
    return min(float(np.sum((inst.P @ Q) * Q)) / max(1.0, abs(inst.lora_objective(Q))) for Q in Qs)


def run_theorem_4_1(ctx: Context) -> ClaimOutcome:
    cfg = THEOREM_4_1.of(ctx)
    with Timer() as t:
        sweeps = _sweeps(ctx, cfg, "theorem_4_1")
        verdicts, margins, ctrl_v, ctrl_m, details, series, excesses, ratios, masses = [], [], [], [], {}, [], [], [], []
        for pinst, sw in sweeps:
            top = sw.by_rank[sw.threshold]
            v, mgn = rank_verdict(top)
            verdicts.append(v)
            margins.append(mgn)
            ratios += [p.sosp.sigma_r_ratio for p in top.points if p.label == "global"]
            masses.append(_pmass(pinst, top.Qs))
            for r, rp in sw.by_rank.items():
                strict = len(rp.spurious(strict_only=True))
                details[f"{sw.name} (KN={sw.kn}, r_thr={sw.threshold}), r={r}"] = (
                    f"spurious {len(rp.spurious())}/{len(rp.points)} (strict {strict}); {rp.counts()}")
                excesses += [rp.excess(p) for p in rp.spurious(strict_only=True)]
            ev = sw.evidence_rank()
            clean = min(r for r in sw.by_rank if all(sw.by_rank[q].fraction() == 0 for q in sw.by_rank if q >= r))
            details[f"{sw.name}: evidence"] = (f"spurious strict local minima up to r={ev}" if ev else
                                               "no rank below r_thr showed a spurious strict local minimum: no evidence"
                                               ) + f"; no spurious SOSP from r={clean} on (r_thr={sw.threshold})"
            if ev:
                cv, cm = rank_verdict(sw.by_rank[ev])
                ctrl_v.append(cv)
                ctrl_m.append(cm)
            series.append(figure_data.spurious_series(sw.name, sw.kn, list(sw.by_rank),
                                                      [rp.fraction() for rp in sw.by_rank.values()], sw.threshold))
        deficient = max(ratios, default=np.inf)
        details["max σ_r(Q)/σ_1(Q) at certified end points at r_thr (proof step)"] = deficient
        verdicts.append(Verdict.HOLDS if deficient <= RANK_DEFICIENT_RTOL else Verdict.INCONCLUSIVE)
        verdict = combine(verdicts) if ctrl_v else Verdict.INCONCLUSIVE
    check = CheckResult(
        "theorem_4_1", f"For r = r_thr (r(r+1)/2 > KN) and a Wishart P ⪰ 0 with ‖P‖_F = {cfg.p_over_lam:g}λ, every start of "
        "multi-start LoRA (L-BFGS, random starts) ends at a point the certificate proves global, and it is rank "
        "deficient (σ_r(Q) ≈ 0); below r_thr the same sweep finds spurious strict local minima.", "Theorem 4.1",
        verdict, float(min(margins, default=np.nan)), [sw.name for _, sw in sweeps], t.seconds, details,
        power=(f"min(m, n) ≥ 3·r_thr on {sum(min(i.m, i.n) >= 3 * sw.threshold for i, sw in sweeps)}/{len(sweeps)} "
               f"instances (full-rank SOSPs possible at every rank); below r_thr the same sweep (instances, P, solver, "
               f"classify_point) found spurious strict local minima on {len(ctrl_v)}/{len(sweeps)} instances, so a "
               f"spurious SOSP at r_thr would have been seen; ⟨P, QQᵀ⟩/max(1, |F_P|) ≥ {min(masses):.2e} at the "
               f"r_thr end points = {min(masses) / T41_SPURIOUS_RTOL:.0f}× the spurious tolerance (P is not numerically 0)."),
        resolution=(f"an SOSP more than T41_SPURIOUS_RTOL = {T41_SPURIOUS_RTOL:g} (relative) above the best value at its "
                    f"rank; the smallest spurious excess found below r_thr is {min(excesses, default=np.nan):.2e} "
                    f"({min(excesses, default=np.nan) / T41_SPURIOUS_RTOL:.0f}× the tolerance)."))
    ctrl = control("theorem_4_1_below_threshold", "theorem_4_1", "the same sweep's check at the highest rank below r_thr "
                   "where spurious strict local minima were found (r(r+1)/2 > KN broken)", combine(ctrl_v),
                   min(ctrl_m, default=np.nan), kind=ControlKind.NEAR_MISS)
    return ClaimOutcome(check, [ctrl], {"spurious_fraction": figure_data.spurious_fraction(series)})


def _chain_check(inst: Instance, pinst: Instance, Qs: list[np.ndarray], labels: list[str], opt, delta, eps: float):
    """Corollary 4.2 and each link of its proof at every SOSP end point in Qs, against the certified minimizer
    δ*_λ = delta (m, n) of ``inst`` (certificate ``opt``; min L̂_λ ≥ objective − gap bound is charged to the
    claim): (verdicts, final margins, link margins, ratios (L̂_λ(ûv̂ᵀ) − min)/(2ε‖δ*‖_*))."""
    verdicts, finals, links, ratios = [], [], [], []
    scale = max(1.0, abs(opt.objective))
    for Q, label in zip(Qs, labels):
        if label != "global" and label not in SOSP_LABELS:
            continue
        c = corollary_4_2_chain(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, delta, pinst.P)
        chain = [c.lhs, c.unperturbed_lora, c.perturbed_lora, c.perturbed_at_optimum, c.cauchy_schwarz_bound]
        link = [(b - a) / scale for a, b in zip(chain, chain[1:])]
        final = (opt.objective - opt.gap_bound + 2 * eps * c.nuclear_norm_opt - c.lhs) / scale
        verdicts += [verdict_inequality(x, C42_LINK_RTOL) for x in link] + [verdict_from_margin(final, GAP_RTOL)]
        finals.append(final)
        links.append(link)
        ratios.append((c.lhs - c.min_value) / (2 * eps * c.nuclear_norm_opt))
    return verdicts, finals, links, ratios


def run_corollary_4_2(ctx: Context) -> ClaimOutcome:
    cfg = COROLLARY_4_2.of(ctx)
    with Timer() as t:
        verdicts, margins, ctrl_v, ctrl_m, ratios, rows, names = [], [], [], [], [], {}, []
        for pinst, sw in _sweeps(ctx, cfg, "corollary_4_2"):
            inst = pinst.with_(P=None)
            eps = float(np.linalg.norm(pinst.P)) / P_FRACTION
            sol = solve_bm(inst, sw.threshold, starts=2, init="random", rng=ctx.rng(f"c42/{sw.name}"), device=ctx.device)
            opt = certify(inst, Q=sol.Q)
            names.append(sw.name)
            for r in (sw.threshold, sw.evidence_rank()):
                if r is None:
                    rows[f"{sw.name}: evidence"] = "no spurious strict local minimum below r_thr: no near-miss"
                    continue
                rp = sw.by_rank[r]
                v, finals, links, rho = _chain_check(inst, pinst, rp.Qs, [p.label for p in rp.points], opt, sol.delta,
                                                  eps)
                v = v if opt.certified and finals else [Verdict.INCONCLUSIVE]
                worst = [min(col) for col in zip(*links)] if links else []
                rows[f"{sw.name}, r={r}"] = (f"{len(finals)} SOSP end points; bound slack min {min(finals, default=np.nan):.3e}; "
                                             f"min link margins (L2.2, P⪰0, Thm 4.1, C–S) {np.round(worst, 6).tolist()}; "
                                             f"max (L̂_λ − min)/(2ε‖δ*‖_*) = {max(rho, default=np.nan):.3g}; fails: bound "
                                             f"{sum(f < -GAP_RTOL for f in finals)}, Thm 4.1 link "
                                             f"{sum(lk[2] < -C42_LINK_RTOL for lk in links)}")
                if r == sw.threshold:
                    verdicts += v
                    margins += finals
                    ratios += rho
                else:
                    ctrl_v += v
                    ctrl_m += [min([*finals, *(x for lk in links for x in lk)])]
    rho = max(ratios, default=np.nan)
    check = CheckResult(
        "corollary_4_2", f"At r = r_thr, P Wishart ⪰ 0 with ‖P‖_F = {P_FRACTION:g}ε < ε = {cfg.p_over_lam / P_FRACTION:.3g}λ: every end point of "
        "multi-start LoRA that is an SOSP (certified or not) satisfies L̂_λ(ûv̂ᵀ) ≤ min L̂_λ + 2ε‖δ*_λ‖_*, and every "
        "link of the proof chain holds.", "Corollary 4.2", combine(verdicts) if ctrl_v else Verdict.INCONCLUSIVE,
        float(min(margins, default=np.nan)), names, t.seconds, rows,
        power=("the end points are classified, not assumed global; below r_thr (near-miss, same sweep) the link "
               "F_P(û, v̂) ≤ F_P(u*, v*) — the one that needs Theorem 4.1 — fails at SOSP end points (at r = 1 at all of "
               "them, the best ones included: rank 1 is below the optimum's rank), and the final bound fails where an "
               "end point's ratio (L̂_λ − min)/(2ε‖δ*‖_*) exceeds 1 (see 'fails' per row)."),
        resolution=(f"links to {C42_LINK_RTOL:g} relative; the final bound only to a factor {1 / rho:.3g}: the largest "
                    f"(L̂_λ(ûv̂ᵀ) − min L̂_λ)/(2ε‖δ*‖_*) is {rho:.3g}, so replacing ε by ε/2 or by a value just below "
                    "‖P‖_F would still hold — the bound is loose and the Theorem 4.1 link carries the check's power."))
    ctrl = control("corollary_4_2_below_threshold", "corollary_4_2", "the same chain check on the SOSP end points at "
                   "the highest rank below r_thr with spurious strict local minima (r(r+1)/2 > KN broken)",
                   combine(ctrl_v), min(ctrl_m, default=np.nan), kind=ControlKind.NEAR_MISS)
    return ClaimOutcome(check, [ctrl])


@dataclass(frozen=True)
class SaddleConfig:
    families: tuple[Family, ...]
    #: random rank-1 starts from which the padded saddles are taken; GD starts per saddle; start offset
    low_starts: int = 8
    per_saddle: int = 3
    noise: float = 1e-3
    #: gradient-descent steps at the local step 1/λ_max(∇²F at a certified optimum)
    max_iter: int = 20000


#: instances whose optimum has rank ≥ 2, so that padded rank-1 stationary points are saddles
SADDLE = Profiles(quick=SaddleConfig((Family(3, 2, 12, (0,), 0),)),
                  full=SaddleConfig((Family(3, 2, 12, (0,), 0), Family(10, 2, 18, (0,), 0)), max_iter=60000))


def _escape(inst: Instance, saddles: list[np.ndarray], Q0: np.ndarray, owner: list[int], lr: float, cfg, ctx):
    """GD from Q0 (S, m + n, r), start s near saddles[owner[s]]: (verdict, min relative decrease, certified count)."""
    ends = end_points(inst, Q0, ctx.device, lr=lr, max_iter=cfg.max_iter)
    F = [inst.lora_objective(Qs) for Qs in saddles]
    drops = [(F[o] - inst.lora_objective(Q)) / max(1.0, abs(F[o])) for Q, o in zip(ends, owner)]
    certified = sum(certify(inst, Q=Q).certified for Q in ends)
    worst = int(np.argmin(drops))
    if drops[worst] <= SADDLE_AT_RTOL * GAP_RTOL:
        # at the saddle's value: a convergence to it only if the end point is stationary; a run that has not
        # yet left a weakly curved saddle within its budget proves nothing (Thms 2.3/2.4 are asymptotic)
        test = sosp_test(inst, ends[worst], rng=ctx.rng("saddle/stationary"))
        verdict = Verdict.VIOLATED if test.grad_norm <= test.grad_tol else Verdict.INCONCLUSIVE
    else:
        verdict = (Verdict.HOLDS if drops[worst] >= SADDLE_ESCAPE_RTOL * GAP_RTOL and certified == len(ends)
                   else Verdict.INCONCLUSIVE)
    return verdict, float(drops[worst]), int(certified)


def run_saddle(ctx: Context) -> ClaimOutcome:
    cfg = SADDLE.of(ctx)
    verdicts, margins, ctrl_v, ctrl_m, zero_v, zero_m, details, names = [], [], [], [], [], [], {}, []
    with Timer() as t:
        for inst in [i for fam in cfg.families for i in fam.instances(ctx)]:
            rng = ctx.rng(f"saddle/{inst.name}")
            r = no_spurious_rank(inst.kn)
            lr = local_step(inst, solve_bm(inst, r, starts=1, init="random", rng=rng, device=ctx.device).Q)
            low = solve_bm_multistart(inst, 1, starts=cfg.low_starts, init="random", rng=rng, device=ctx.device)
            distinct = {round(x.lifted_objective, 9): x.Q for x in low}
            saddles = [np.zeros((inst.m + inst.n, r))]
            for Q1 in distinct.values():
                c = classify_point(inst, padded_saddle(Q1, r), rng=rng)
                details[f"{inst.name}: rank-1 point padded to r={r}, F={c.certificate.lifted_objective:.6g}"] = (
                    f"{c.label}, λ_min(∇²F) = {c.sosp.hessian_lambda_min:.3e}")
                if c.label == "saddle":
                    saddles.append(padded_saddle(Q1, r))
            owner = [i for i in range(len(saddles)) for _ in range(cfg.per_saddle)]
            Q0 = np.stack([saddles[o] for o in owner]) + cfg.noise * rng.standard_normal((len(owner), inst.m + inst.n, r))
            v, mgn, cert = _escape(inst, saddles, Q0, owner, lr, cfg, ctx)
            # Q = 0 is a saddle only when λ_min(M(0)) < 0 (λ < σ_max(S(0)) for P = 0); else it is the minimum
            zero_label = classify_point(inst, saddles[0], rng=ctx.rng(f"saddle/zero/{inst.name}")).label
            details[f"{inst.name}: Q = 0"] = zero_label
            verdicts.append(v if len(saddles) > 1 and zero_label == "saddle" else Verdict.INCONCLUSIVE)
            margins.append(mgn)
            details[f"{inst.name}: GD from {len(owner)} starts near {len(saddles)} saddles (Q = 0 and padded)"] = (
                f"{cert} end points certified global; min relative decrease below the saddle value {mgn:.3e}; step {lr:.3g}")
            names.append(inst.name)
            exact = list(range(1, len(saddles)))
            if exact:
                cv, cm, _ = _escape(inst, saddles, np.stack([saddles[i] for i in exact]), exact, lr, cfg, ctx)
                ctrl_v.append(cv)
                ctrl_m.append(cm)
            zv, zm, _ = _escape(inst, saddles, saddles[0][None], [0], lr, cfg, ctx)
            zero_v.append(zv)
            zero_m.append(zm)
    check = CheckResult(
        "saddle_escape", "Gradient descent (local step, run to convergence) from small random offsets of strict saddles "
        "— Q = 0 and rank-1 stationary points padded with zero columns — ends at a certified global minimizer, "
        "clearly below the saddle's value.", "Theorems 2.3, 2.4 (in practice)", combine(verdicts),
        float(min(margins)), names, t.seconds, details,
        power=("the padded saddles are strict saddles (classify_point: saddle, negative-curvature witness) whose "
               f"value lies only {min(margins):.1e} (relative) above the certified end points, so an end near a saddle "
               "would be seen; a start exactly on one (its stable set) ends there and is caught (near-miss)."),
        resolution=(f"an end within {SADDLE_AT_RTOL:g}·GAP_RTOL (relative) of the saddle value is at the saddle; an "
                    f"escape needs a decrease ≥ {SADDLE_ESCAPE_RTOL:g}·GAP_RTOL and a certified end point."))
    return ClaimOutcome(check, [
        control("saddle_start_on_padded_saddle", "saddle_escape", "start exactly on a padded rank-1 saddle (its stable "
                "set: the zero columns never move)", combine(ctrl_v), min(ctrl_m, default=np.nan),
                kind=ControlKind.NEAR_MISS),
        control("saddle_start_on_stable_set", "saddle_escape", "start exactly at Q = 0", combine(zero_v), min(zero_m),
                kind=ControlKind.GROSS)])


CLAIMS = [ClaimSpec("theorem_4_1", "", "Theorem 4.1", run_theorem_4_1),
          ClaimSpec("corollary_4_2", "", "Corollary 4.2", run_corollary_4_2),
          ClaimSpec("saddle_escape", "", "Theorems 2.3, 2.4", run_saddle)]
