"""Section 5 / Appendix C: Theorem 5.1 (= C.6 for cross-entropy), Lemma C.4, and ‖∇ℓ_CE‖ ≤ √2,
checked with an exactly computable population risk (finite pool, softmax teacher; MATH.md §4)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from theory import generalization as gen
from theory.losses import CrossEntropyLoss
from verify import population
from verify.claims.base import ClaimOutcome, ClaimSpec, Context, ControlKind, Profiles, Timer, control
from verify.claims.verdicts import combine, rademacher_verdict
from verify.experiments import figure_data
from verify.experiments import excess_risk
from verify.experiments.controls import rademacher_wrong_power
from verify.experiments.rademacher import pool_estimates
from verify.results import CheckResult, Verdict
from verify.tolerances import (BINOMIAL_ALPHA, C4_NEAR_MISS_SCALE, CE_NEAR_MISS_RTOL, CE_SATURATED_SCALES,
                               RADEMACHER_SE, T51_MIN_NONZERO_FRACTION, T51_NEAR_MISS_DIVISOR, exact_rtol)

EPS, ETA = 0.5, 0.1
#: pool geometry (m = n = SIDE) and size of Lemma C.4's pool
SIDE, POOL = 6, 400
#: Theorem 5.1's pool (``population.make_aligned_pool``): size, ‖δ_teacher‖_*, noise of the sensing
ALIGNED_POOL, ALIGNED_TEACHER, ALIGNED_NOISE = 4000, 4.0, 0.1


@dataclass(frozen=True)
class Theorem51Config:
    #: training-set sizes, and resampled training sets per size
    Ns: tuple[int, ...]
    trials: int
    #: smaller sizes at which only the fraction of δ̂ ≠ 0 is reported (exact, no solve; not in the verdict)
    scan_Ns: tuple[int, ...] = (250, 500, 750)


@dataclass(frozen=True)
class LemmaC4Config:
    #: training-set sizes, and Monte-Carlo sign draws per size when 2^(NK) patterns are too many
    Ns: tuple[int, ...]
    draws: int


THEOREM_5_1 = Profiles(quick=Theorem51Config(Ns=(1000, 2000, 4000), trials=60),
                       full=Theorem51Config(Ns=(1000, 2000, 4000, 8000, 16000), trials=200))
LEMMA_C4 = Profiles(quick=LemmaC4Config(Ns=(4, 8, 16, 64, 256), draws=2000),
                    full=LemmaC4Config(Ns=(4, 8, 16, 32, 64, 128, 256, 512, 1024), draws=20000))


def binomial_verdict(successes: int, trials: int, p0: float) -> Verdict:
    """HOLDS if P(success) ≥ p0 is established at level BINOMIAL_ALPHA (one-sided exact test,
    H0: p < p0); VIOLATED if P(success) < p0 is established at that level; else INCONCLUSIVE."""
    if binomtest(successes, trials, p0, alternative="greater").pvalue < BINOMIAL_ALPHA or \
            successes == trials and p0 ** trials < BINOMIAL_ALPHA:
        return Verdict.HOLDS
    if gen.one_sided_binomial_pvalue(successes, trials, p0) < BINOMIAL_ALPHA:
        return Verdict.VIOLATED
    return Verdict.INCONCLUSIVE


def _theorem_5_1_verdicts(t: excess_risk.Trials, b: float, dev_bound: float) -> list[Verdict]:
    """The theorem's event and the proof's two steps on it, each a binomial test at p0 = 1 − η; any
    uncertified solve, or δ̂ = 0 in most trials (the bound cannot fail then), is INCONCLUSIVE."""
    if not t.certified.all() or t.nonzero_fraction < T51_MIN_NONZERO_FRACTION:
        return [Verdict.INCONCLUSIVE]
    return [binomial_verdict(int(np.sum(ok)), ok.size, 1 - ETA)
            for ok in (t.excess < b, t.nuc_ratio <= 1.0, t.deviation < dev_bound)]


def evaluate_theorem_5_1(trials: dict[int, excess_risk.Trials], bound, dev_bound) -> tuple[Verdict, float, dict]:
    """bound(N): the claimed excess-risk bound; dev_bound(N): Lemma C.5's bound at D = (2+ε)‖δ*‖_*."""
    verdicts, margins, rows = [], [], {}
    for N, t in trials.items():
        b, q = bound(N), float(np.quantile(t.excess, 1 - ETA))
        verdicts += _theorem_5_1_verdicts(t, b, dev_bound(N))
        margins.append((b - q) / b)
        rows[f"N={N}"] = (f"{int(np.sum(t.excess < b))}/{t.excess.size} under the bound {b:.3g}; quantile "
                          f"{1 - ETA:.2f} = {q:.3g}; bound ÷ observed = {b / max(q, 1e-300):.3g}; δ̂ ≠ 0 in "
                          f"{int(t.nonzero.sum())}; max ‖δ̂‖_*/((2+ε)‖δ*‖_*) = {t.nuc_ratio.max():.3g}; max "
                          f"deviation ÷ Lemma C.5 bound = {t.deviation.max() / dev_bound(N):.3g}")
    return combine(verdicts), float(min(margins)), rows


def run_theorem_5_1(ctx: Context) -> ClaimOutcome:
    cfg = THEOREM_5_1.of(ctx)
    Ns = list(cfg.Ns)
    with Timer() as t:
        pool = population.make_aligned_pool(ctx.rng("aligned_pool"), ALIGNED_POOL, SIDE, ALIGNED_TEACHER,
                                            ALIGNED_NOISE)
        nuc = ALIGNED_TEACHER
        bound = lambda N: gen.theorem_5_1_excess_risk_bound(nuc, EPS, pool.K, pool.R, N, ETA)  # noqa: E731
        dev_bound = lambda N: gen.lemma_c5_deviation_bound(  # noqa: E731
            pool.K, gen.CROSS_ENTROPY_LIPSCHITZ, pool.R, gen.theorem_c6_radius(EPS, nuc), N, ETA)
        trials = {N: excess_risk.run_trials(pool, N, cfg.trials, ctx.rng(f"theorem_5_1/{N}"), EPS, ETA)
                  for N in Ns}
        verdict, margin, rows = evaluate_theorem_5_1(trials, bound, dev_bound)
        scan = excess_risk.nonzero_fraction_scan(pool, list(cfg.scan_Ns), cfg.trials, ctx.rng("theorem_5_1/scan"),
                                                 EPS, ETA)
    excess0 = population.excess_risk(pool, np.zeros_like(pool.teacher))
    n_star = excess_risk.crossover_N(bound(Ns[0]), Ns[0], excess0)
    ratios = [bound(N) / float(np.quantile(trials[N].excess, 1 - ETA)) for N in Ns]
    details = rows | {
        "nonzero_solution_fraction": {str(N): trials[N].nonzero_fraction for N in Ns},
        "nonzero fraction at smaller N (‖∇L̂(0)‖_op > λ, no solve)": {str(N): f for N, f in scan.items()},
        "‖∇L̂(0)‖_op / λ (median)": {str(N): float(np.median(trials[N].grad0_over_lam)) for N in Ns},
        "uncertified solves": int(sum((~trials[N].certified).sum() for N in Ns)),
        "excess risk of δ = 0": excess0, "N from which the bound < excess risk of δ = 0": n_star,
        "R": pool.R, "‖δ_teacher‖_*": nuc, "ε": EPS, "η": ETA, "trials per N": cfg.trials,
        "C6 and 5.1 bounds agree (G = √2)": bool(np.isclose(bound(64), gen.theorem_c6_excess_risk_bound(
            nuc, EPS, pool.K, gen.CROSS_ENTROPY_LIPSCHITZ, pool.R, 64, ETA)))}
    power = (f"δ̂ ≠ 0 in at least {min(details['nonzero_solution_fraction'].values()):.0%} of the trials at every N "
             f"(‖∇L̂(0)‖_op > λ): the excess risk varies with the sample and the proof's steps ‖δ̂‖_* ≤ (2+ε)‖δ*‖_* "
             f"and Lemma C.5's deviation are tested on the realized δ̂ (both hold with a wide margin: max ‖δ̂‖_*/D = "
             f"{max(t.nuc_ratio.max() for t in trials.values()):.2g}, max deviation ÷ bound = "
             f"{max(t.deviation.max() / dev_bound(N) for N, t in trials.items()):.2g}). The bound is loose: "
             f"bound ÷ observed {1 - ETA:.0%} quantile = {min(ratios):.3g}–{max(ratios):.3g}; it is below the "
             f"excess risk of δ = 0 "
             f"({excess0:.3g}) only from N ≈ {n_star:.3g}.")
    resolution = (f"a bound {T51_NEAR_MISS_DIVISOR:g}× smaller is caught (control theorem_5_1_bound_divided); a bound "
                  f"too large by less than the observed slack ≈ {min(ratios):.3g}× cannot be told from the theorem's.")
    check = CheckResult("theorem_5_1", f"With λ = 2(2+ε)√K R/√N (2+√log(1/η)), the certified minimizer has excess "
                        f"population risk < ‖δ*‖_* 2(2+ε)²√K R/√N (2+√log(1/η)) with probability > 1 − η "
                        f"(ε = {EPS}, η = {ETA}; exact population risk; one-sided binomial test at level "
                        f"{BINOMIAL_ALPHA}); the proof's ‖δ̂‖_* ≤ (2+ε)‖δ*‖_* and Lemma C.5 on the realized δ̂.",
                        "Theorem 5.1, Theorem C.6, Lemma C.5", verdict, margin,
                        [f"aligned pool of {ALIGNED_POOL} examples, K = 2, {SIDE}×{SIDE}, rank-1 softmax teacher "
                         f"‖δ*‖_* = {nuc:g}"] + [f"N = {N}" for N in Ns], t.seconds, details, power, resolution)
    v_pow, _, _ = evaluate_theorem_5_1(trials, lambda N: bound(N) / (2 + EPS) ** 2, dev_bound)
    details["bound with (2+ε)⁰ in place of (2+ε)² (÷ 6.25): verdict"] = v_pow.value + (
        "" if v_pow == Verdict.VIOLATED else " (not resolved: the slack is larger)")
    v, m, _ = evaluate_theorem_5_1(trials, lambda N: bound(N) / T51_NEAR_MISS_DIVISOR, dev_bound)
    near = control("theorem_5_1_bound_divided", "theorem_5_1", f"bound divided by {T51_NEAR_MISS_DIVISOR:g} "
                   f"(just beyond the observed slack)", v, m, kind=ControlKind.NEAR_MISS)
    v, m, _ = evaluate_theorem_5_1(trials, lambda N: bound(N) * N ** -1.5, dev_bound)
    gross = control("theorem_5_1_wrong_power", "theorem_5_1", "bound with N^(-2) in place of N^(-1/2)", v, m,
                    kind=ControlKind.GROSS)
    samples = {N: trials[N].excess for N in Ns}
    fig = figure_data.excess_risk(Ns, [bound(N) for N in Ns], 1 - ETA, samples)
    return ClaimOutcome(check, [near, gross], {"excess_risk": fig})


def _c4_verdict(pools: dict, K: int, bound) -> tuple[Verdict, float, dict]:
    """``rademacher_verdict`` on every pool; bound(stats, R, K, N)."""
    out = {name: rademacher_verdict(stats, K, lambda R, K, N, st=stats: bound(st, R, K, N))
           for name, stats in pools.items()}
    rows = {f"{name} {key}": row for name, (_, _, r) in out.items() for key, row in r.items()}
    return combine([v for v, _, _ in out.values()]), min(m for _, m, _ in out.values()), rows


def run_lemma_c4(ctx: Context) -> ClaimOutcome:
    cfg = LEMMA_C4.of(ctx)
    Ns, K, rng = list(cfg.Ns), 2, ctx.rng("rademacher_signs")
    final = lambda st, R, K, N: gen.rademacher_bound(R, 1.0, K, N)  # noqa: E731
    with Timer() as t:
        gauss = population.make_pool(ctx.rng("rademacher_pool"), POOL, K, SIDE, SIDE)
        aligned = population.make_aligned_pool(ctx.rng("rademacher_aligned"), POOL, SIDE, 1.0, ALIGNED_NOISE)
        pools = {name: pool_estimates(p.G, Ns, rng, cfg.draws)
                 for name, p in (("gaussian", gauss), ("aligned", aligned))}
        verdict, margin, rows = _c4_verdict(pools, K, final)
        v_jensen, m_jensen, _ = _c4_verdict(pools, K, lambda st, R, K, N: st[N].jensen)
        verdict = combine([verdict, v_jensen])
    tight = max((e.mean - RADEMACHER_SE * e.se) / gen.rademacher_bound(e.R, 1.0, K, N)
                for N, e in pools["aligned"].items())
    details = rows | {"sign draws": "all 2^(NK) when NK ≤ 16, else Monte Carlo (± is one standard error)",
                      "Jensen step exact ≤ (D/N)√(Σ‖G‖²): relative margin": m_jensen,
                      "max (exact − 3 SE) ÷ bound on the aligned pool": tight}
    power = (f"the aligned pool (rank-1 sensing, ‖Σ ε G‖_op ≈ ‖Σ ε G‖_F) makes the bound tight up to Jensen's "
             f"E|S| ≤ √(E S²) and max ‖G‖_F vs its mean: exact ÷ bound reaches {tight:.3g}; the Gaussian pool "
             f"({SIDE}×{SIDE}) is loose by the op/Frobenius gap. The Jensen intermediate is checked too.")
    resolution = (f"a bound scaled by {C4_NEAR_MISS_SCALE:g} is caught (control lemma_c4_scaled_bound); the check "
                  f"resolves any scale below {tight:.3g} and none above it.")
    check = CheckResult("lemma_c4", "The empirical Rademacher complexity of {⟨G, δ⟩ : ‖δ‖_* ≤ D}, computed exactly per "
                        "sign draw as (D/N)‖Σ ε_ij G[i,j]‖_op (dual norm), is ≤ (D/N)√(Σ‖G[i,j]‖_F²) ≤ R D √K/√N.",
                        "Lemma C.4", verdict, margin,
                        [f"{name} pool, N = {N}, K = {K}, {SIDE}×{SIDE}" for name in pools for N in Ns], t.seconds,
                        details, power, resolution)
    v, m, _ = _c4_verdict(pools, K, lambda st, R, K, N: C4_NEAR_MISS_SCALE * final(st, R, K, N))
    near = control("lemma_c4_scaled_bound", "lemma_c4", f"bound R D √K/√N scaled by {C4_NEAR_MISS_SCALE:g}", v, m,
                   kind=ControlKind.NEAR_MISS)
    v, m, _ = _c4_verdict(pools, K, lambda st, R, K, N: rademacher_wrong_power(R, K, N))
    gross = control("lemma_c4_wrong_power", "lemma_c4", "bound R D √K / N (wrong power of N)", v, m,
                    kind=ControlKind.GROSS)
    stats = pools["gaussian"]
    fig = figure_data.rademacher(stats, {N: gen.rademacher_bound(stats[N].R, 1.0, K, N) for N in Ns})
    return ClaimOutcome(check, [near, gross], {"rademacher": fig})


def evaluate_ce_lipschitz(ctx: Context, claimed: float) -> tuple[Verdict, float, dict]:
    """Random logits at four scales, and saturated logits s(e_k − e_y), k ≠ y, where ‖∇ℓ_CE‖ → √2."""
    rng = ctx.rng("ce_lipschitz")
    worst = 0.0
    for K in (2, 3, 10):
        y = rng.integers(0, K, 2000)
        batches = [scale * rng.standard_normal((2000, K)) for scale in (0.1, 1.0, 10.0, 100.0)]
        k = (y + rng.integers(1, K, 2000)) % K
        batches += [s * (np.eye(K)[k] - np.eye(K)[y]) for s in CE_SATURATED_SCALES]
        for logits in batches:
            worst = max(worst, float(np.linalg.norm(CrossEntropyLoss().grad(logits, y), axis=1).max()))
    margin = claimed - worst
    # ≤ is not strict: saturated softmax attains √2 up to rounding (a few ulps)
    verdict = Verdict.HOLDS if margin >= -exact_rtol(np.float64) else Verdict.VIOLATED
    return verdict, margin, {"max ‖∇ℓ_CE‖₂ observed": worst, "√2 − max observed": float(np.sqrt(2.0) - worst)}


def run_ce_lipschitz(ctx: Context) -> ClaimOutcome:
    with Timer() as t:
        verdict, margin, details = evaluate_ce_lipschitz(ctx, np.sqrt(2.0))
    near_c = np.sqrt(2.0) * (1 - CE_NEAR_MISS_RTOL)
    check = CheckResult("ce_lipschitz", "‖∇ℓ_CE(ŷ, y)‖₂ = ‖softmax(ŷ) − e_y‖₂ ≤ √2 for every ŷ (so G = √2 in Thm C.6).",
                        "Proof of Theorem 5.1", verdict, margin,
                        ["24000 random logits, K ∈ {2, 3, 10}",
                         f"saturated logits s(e_k − e_y), s ∈ {CE_SATURATED_SCALES}"],
                        t.seconds, details,
                        "saturated logits attain √2 up to rounding, so any constant below √2 by more than the rounding "
                        "tolerance fails on them; a larger norm anywhere in the random logits would fail the claim.",
                        f"√2·(1 − {CE_NEAR_MISS_RTOL:g}) is caught; resolves constants below "
                        f"√2 − {exact_rtol(np.float64):g}.")
    v, m, _ = evaluate_ce_lipschitz(ctx, near_c)
    near = control("ce_lipschitz_sqrt2_minus", "ce_lipschitz", f"Lipschitz constant √2·(1 − {CE_NEAR_MISS_RTOL:g})",
                   v, m,
                   kind=ControlKind.NEAR_MISS)
    v, m, _ = evaluate_ce_lipschitz(ctx, 1.0)
    return ClaimOutcome(check, [near, control("ce_lipschitz_one", "ce_lipschitz", "Lipschitz constant 1 in place of √2",
                                              v, m, kind=ControlKind.GROSS)])


CLAIMS = [ClaimSpec("theorem_5_1", "", "Theorem 5.1", run_theorem_5_1),
          ClaimSpec("lemma_c4", "", "Lemma C.4", run_lemma_c4),
          ClaimSpec("ce_lipschitz", "", "Theorem 5.1", run_ce_lipschitz)]
