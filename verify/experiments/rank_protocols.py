"""Section 6 as a measurement: iterations of LoRA gradient descent to the certified optimum, per rank,
relative tolerance, training protocol and seed.

Protocols (one ``Protocol`` each; every run of one protocol is one batch, a rank-r run being a rank-R
run whose last R − r columns start, and stay, at 0):

(a) project  — u₀ (m, r) i.i.d. N(0, 1/m), v₀ = 0: ‖Q₀‖_F² ≈ r, the initial mass grows with the rank;
               step ½/λ_max(∇²F_P) at the optimum; weight decay λ of the instance.
(b) equal    — the same draws rescaled so that ‖Q₀‖_F = 1 at every rank; same step and λ.
(c) paper    — the paper's released code: A (r × n) i.i.d. N(0, 1/(r n²)), B = 0 (here v₀ = Aᵀ, u₀ = 0),
               ‖Q₀‖_F² ≈ 1/n at every rank; full-batch GD; weight decay λ = 0.01 (Table 1). Its step
               is the paper's learning rate times N (cross-entropy summed over the batch) or, on
               synthetic instances whose scale is arbitrary, the project's step (``step="project"``).
(d) paper, as trained — (c) with no weight decay in the dynamics (the released code's weight-decay
               lines rebind a local variable): GD on L̂ alone, while the reported loss is
               L̂ + (λ/2)‖Q‖_F² (the penalty added for the log only).

Every protocol is measured against the certified optimum of the regularized problem (P) with the
instance's λ; iterations to a relative tolerance t are the first iteration with
reported loss − F* ≤ t·max(1, |F*|) (``iterations_to_optimum``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from verify.experiments.gd import training_runs
from verify.instance import Instance

#: Table 1 of the paper (MR, CR, QQP, Subj; LoRA): learning rate and weight decay; the released code sums
#: the cross-entropy over the batch, so a step on the mean loss is PAPER_LR · N
PAPER_LR, PAPER_WEIGHT_DECAY = 1e-3, 0.01


@dataclass(frozen=True)
class Protocol:
    key: str
    label: str
    #: "project" (u₀ ~ N(0, 1/m), v₀ = 0), "equal" (the same, ‖Q₀‖_F = 1) or "paper" (v₀ ~ N(0, 1/(r n²)), u₀ = 0)
    init: str
    #: "project" (½/λ_max(∇²F_P) at the optimum) or "paper" (PAPER_LR · N)
    step: str
    #: weight decay reaches the parameters (False: protocol (d), penalty only in the reported loss)
    decay: bool = True


PROJECT = Protocol("a", "(a) project init", "project", "project")
EQUAL_NORM = Protocol("b", "(b) equal ‖Q₀‖ = 1", "equal", "project")


def paper_protocols(step: str) -> tuple[Protocol, Protocol]:
    """(c) and (d) with the paper's step ("paper") or the project's ("project", synthetic instances)."""
    tag = "η = lr·N" if step == "paper" else "project step"
    return (Protocol("c", f"(c) paper init, λ in GD, {tag}", "paper", step),
            Protocol("d", f"(d) paper init, no decay in GD, {tag}", "paper", step, decay=False))


def iterations_to_optimum(history: list[float], optimum: float, rtol: float) -> int | None:
    """First iteration whose F is within rtol·max(1, |optimum|) of the certified optimum (None if never)."""
    tol = rtol * max(1.0, abs(optimum))
    hit = np.nonzero(np.asarray(history) - optimum <= tol)[0]
    return int(hit[0]) if hit.size else None


def starts(inst: Instance, ranks: list[int], init: str, rng: np.random.Generator) -> np.ndarray:
    """Initial factors (len(ranks), m + n, max(ranks)) of one seed: rank r keeps r columns of one draw."""
    m, n, R = inst.m, inst.n, max(ranks)
    Q0 = np.zeros((len(ranks), m + n, R))
    z = rng.standard_normal((m if init != "paper" else n, R))
    for i, r in enumerate(ranks):
        if init == "paper":
            Q0[i, m:, :r] = z[:, :r] / (np.sqrt(r) * n)
        else:
            u = z[:, :r] / np.sqrt(m)
            Q0[i, :m, :r] = u / np.linalg.norm(u) if init == "equal" else u
    return Q0


@dataclass
class ProtocolRuns:
    protocol: Protocol
    lr: float
    #: counts[seed][f"{t:g}"][r]: iterations to tolerance t (None: not within the budget)
    counts: list[dict[str, dict[int, int | None]]]
    #: per seed and rank: reported loss − F* at the last iteration, ‖Q₀‖_F, L̂ and ‖Q‖_F at the end
    final_gap: list[dict[int, float]] = field(default_factory=list)
    initial_norm: list[dict[int, float]] = field(default_factory=list)
    final_risk: list[dict[int, float]] = field(default_factory=list)
    final_norm: list[dict[int, float]] = field(default_factory=list)


def measure(inst: Instance, optimum: float, ranks: list[int], protocol: Protocol, rngs: list[np.random.Generator],
            tolerances: tuple[float, ...], steps: int, project_lr: float, device: str) -> ProtocolRuns:
    """``steps`` GD steps at every rank and seed under ``protocol``, against the certified optimum F*."""
    lr = project_lr if protocol.step == "project" else PAPER_LR * inst.N
    Q0 = np.concatenate([starts(inst, ranks, protocol.init, rng) for rng in rngs])
    dyn = inst if protocol.decay else inst.with_(lam=0.0)
    res = training_runs(dyn, Q0, lr, steps, device)
    out = ProtocolRuns(protocol, lr, [])
    for s in range(len(rngs)):
        cells, gap, n0, risk, nT = {f"{t:g}": {} for t in tolerances}, {}, {}, {}, {}
        for i, r in enumerate(ranks):
            run = res[s * len(ranks) + i]
            norms = np.asarray(run.norm_history)
            reported = np.asarray(run.history) + (0.0 if protocol.decay else 0.5 * inst.lam * norms ** 2)
            for t in tolerances:
                cells[f"{t:g}"][r] = iterations_to_optimum(list(reported), optimum, t)
            gap[r], n0[r], nT[r] = float(reported[-1] - optimum), float(norms[0]), float(norms[-1])
            risk[r] = float(run.history[-1] - (0.5 * inst.lam * norms[-1] ** 2 if protocol.decay else 0.0))
        out.counts.append(cells)
        out.final_gap.append(gap)
        out.initial_norm.append(n0)
        out.final_risk.append(risk)
        out.final_norm.append(nT)
    return out


def count_table(runs: list[ProtocolRuns]) -> dict[tuple[str, int, str], dict[int, int | None]]:
    """{(protocol key, seed, tolerance): {rank: iterations}} over all protocols."""
    return {(pr.protocol.key, s, t): cell for pr in runs for s, cells in enumerate(pr.counts)
            for t, cell in cells.items()}
