"""Theorem 5.1 / C.6's experiment: resampled training sets from a finite pool (exact population risk),
the certified minimizer δ̂ of (P) at the theorem's λ, and the proof's intermediate quantities per trial."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory import generalization as gen
from theory.linearized_model import nuclear_norm
from verify import population
from verify.certify import certify_result
from verify.solvers.bm import solve_bm


@dataclass(frozen=True)
class Trials:
    """One training-set size N, arrays of shape (trials,):
    excess      L(δ̂) − L(δ*_true) (exact);
    nonzero     δ̂ ≠ 0, decided exactly: 0 is optimal for (P) iff ‖∇L̂(0)‖_op ≤ λ (the regime
                where the theorem's λ does not simply return 0);
    certified   the solve is certified global for (P) (``certify_result``);
    nuc_ratio   ‖δ̂‖_* / ((2+ε)‖δ*_true‖_*) (the proof's step ‖δ̂‖_* ≤ D needs ≤ 1);
    deviation   L̂(δ*) − L̂(δ̂) − L(δ*) + L(δ̂), the realized deviation Lemma C.5 bounds uniformly;
    grad0_over_lam  ‖∇L̂(0)‖_op / λ (> 1 ⇔ δ̂ ≠ 0)."""

    N: int
    lam: float
    excess: np.ndarray
    nonzero: np.ndarray
    certified: np.ndarray
    nuc_ratio: np.ndarray
    deviation: np.ndarray
    grad0_over_lam: np.ndarray

    @property
    def nonzero_fraction(self) -> float:
        return float(np.mean(self.nonzero))


def run_trials(pool: population.Pool, N: int, trials: int, rng: np.random.Generator, eps: float, eta: float,
               device: str = "cpu") -> Trials:
    """``trials`` training sets of size N; each solved by Burer–Monteiro (L-BFGS, rank min(m, n)) and
    certified in float64, warm-started from the previous trial's factor."""
    lam = gen.theorem_c6_lambda(eps, pool.K, gen.CROSS_ENTROPY_LIPSCHITZ, pool.R, N, eta)
    nuc_true = nuclear_norm(pool.teacher)
    D = gen.theorem_c6_radius(eps, nuc_true)
    L_true = population.population_risk(pool, pool.teacher)
    rows, Q0 = [], None
    m, n = pool.teacher.shape
    for _ in range(trials):
        inst = population.sample_training_set(pool, N, rng, lam)
        kw = {"init": "random", "rng": rng} if Q0 is None else {"Q0": Q0}
        res = solve_bm(inst, min(m, n), device=device, **kw)
        ok = certify_result(inst, res).certified
        if ok and np.any(res.delta):
            Q0 = res.Q
        d = res.delta
        s0 = float(np.linalg.norm(inst.gradient(np.zeros((m, n))), 2))
        L_hat = population.population_risk(pool, d)
        rows.append((L_hat - L_true, s0 > lam, ok, nuclear_norm(d) / D,
                     inst.risk(pool.teacher) - inst.risk(d) - L_true + L_hat, s0 / lam))
    cols = [np.array(c) for c in zip(*rows)]
    return Trials(N, lam, *cols)


def nonzero_fraction_scan(pool: population.Pool, Ns: list[int], trials: int, rng: np.random.Generator, eps: float,
                          eta: float) -> dict[int, float]:
    """Fraction of training sets of size N with δ̂ ≠ 0 at the theorem's λ, i.e. ‖∇L̂(0)‖_op > λ (exact; no solve)."""
    out = {}
    for N in Ns:
        lam = gen.theorem_c6_lambda(eps, pool.K, gen.CROSS_ENTROPY_LIPSCHITZ, pool.R, N, eta)
        z = np.zeros_like(pool.teacher)
        out[N] = float(np.mean([np.linalg.norm(population.sample_training_set(pool, N, rng, lam).gradient(z), 2) > lam
                                for _ in range(trials)]))
    return out


def crossover_N(bound_at: float, N: int, excess_zero: float) -> float:
    """The N from which a bound C/√N (equal to ``bound_at`` at N) falls below ``excess_zero``, the
    excess risk of δ = 0: N* = (C / excess_zero)². Below N* the bound is weaker than "predict δ = 0"."""
    return float((bound_at * np.sqrt(N) / excess_zero) ** 2)
