"""Claims on *actual* LoRA training of the real network (peft adapters, verify.actual_training) beside the
linearized instance of the same training (verify.entk): the main paper's Table 4.

Table 4 compares accuracies; on 272 test sentences an accuracy difference resolves little (zero-shot and the
certified optimum differ by 6 points at 2 standard errors). The check is therefore paired, per test sentence: the
actual trained network must classify the sentences as the certified linearized solution δ* does (which bounds the
accuracy gap by the disagreement rate) and as its own linearization at the trained δ does (the NTK regime at the
end point). Each disagreement rate is judged by its exact binomial interval against DISAGREE_MAX.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verify import actual_training as at
from verify import data_text, entk
from verify.claims.agreement import decided_counts, disagreement_verdict, paired_accuracy_difference
from verify.claims.base import ClaimOutcome, ClaimSpec, Context, ControlKind, Profiles, Timer, control
from verify.claims.entk_claims import SECTION, _name, actual_task_for, optimum_for
from verify.claims.verdicts import combine
from verify.commands.train import block_ranks
from verify.results import CheckResult, Verdict
from verify.tolerances import DISAGREE_CI_LEVEL, DISAGREE_MAX, TABLE4_NEAR_LR

#: the paper's Table 4 (Appendix), accuracy actual / linearized, averaged over 3 runs
PAPER_TABLE_4 = {"image classification": (86.20, 87.00), "speech classification": (74.67, 73.67)}


@dataclass(frozen=True)
class Table4Config:
    #: LoRA rank per tuned matrix, training seeds (peft's random A; B = 0), full-batch GD steps and step size of the
    #: runs in the verdict, and the steps of the near-miss run at TABLE4_NEAR_LR
    rank: int
    seeds: int
    steps: int
    lr: float
    near_steps: int


#: full profile only (real model). At η = 0.1 GD decreased the objective at every step on MiniLM seeds 0–2 (300 steps:
#: 0.632 → 0.088); the near-miss runs are 100 steps at η = 0.5. The claim alone: 189 s on 2 cores (2026-12-03)
TABLE_4 = Profiles(quick=Table4Config(rank=8, seeds=3, steps=300, lr=0.1, near_steps=100),
                   full=Table4Config(rank=8, seeds=3, steps=300, lr=0.1, near_steps=100))


def _data(task):
    """Tokenized train / test texts and labels, on the task's classifier's device."""
    clf = task.classifier
    train = data_text.sample_train(task.train.N, np.random.default_rng(task.train.provenance.get("seed", 0)))
    test = data_text.load_sentiment("test")
    device = clf.label_embeddings.device
    return {name: (clf.encode(s.texts), torch.tensor(s.labels, device=device))
            for name, s in (("train", train), ("test", test))}


def _run_actual(task, data, cfg: Table4Config, lr: float, steps: int, seed: int, lam: float):
    lora = at.attach(task.classifier, task.weight_names,
                     at.TrainConfig(rank=cfg.rank, lam=lam, steps=steps, lr=lr, seed=seed))
    result = at.train(lora, *data["train"])
    return lora, result, {name: at.evaluate(lora, *d) for name, d in data.items()}


def _judge(task, data, delta: np.ndarray, star_pred: np.ndarray) -> tuple[Verdict, float, dict]:
    """The check on one actual end point δ (m, n): (a) its test predictions against δ*'s linearized ones, (b) against
    its own linearization at δ; (combined verdict, smallest margin, record)."""
    clf, labels = task.classifier, task.test.Y
    actual, linear, err = entk.prediction_pair(clf.model, clf.outputs, task.weight_names, data["test"][0], delta)
    va, ma, sa = disagreement_verdict(actual, star_pred)
    vb, mb, sb = disagreement_verdict(actual, linear)
    diff, se = paired_accuracy_difference(actual, star_pred, labels)
    return combine([va, vb]), min(ma, mb), {
        "(a) disagreements with δ* (linearized)": sa, "(b) disagreements with its own linearization at δ": sb,
        "test accuracy actual − linearized at δ* (paired SE)": f"{diff:+.4f} ({se:.4f})",
        "linearized test accuracy at the actual δ": float(np.mean(linear == labels)),
        "relative output error ‖f(W₀+δ) − (f0+⟨G,δ⟩)‖/‖⟨G,δ⟩‖ (test)": err}


def _training_record(res, ev: dict) -> dict:
    """Start, end, peak of the training objective and the number of steps that raised it (evaluated at the end)."""
    h = np.asarray(res.objective_history + [ev["train"]["objective"]])
    return {"objective start / end": f"{h[0]:.4f} / {h[-1]:.4f}", "objective peak / start": float(h.max() / h[0]),
            "steps that raised the objective": int(np.sum(np.diff(h) > 0)), "test accuracy": ev["test"]["accuracy"],
            "train accuracy": ev["train"]["accuracy"]}


def run_table_4(ctx: Context) -> ClaimOutcome:
    """Table 4 on text: actual LoRA training (peft, full-batch GD, weight decay λ, zero init, 3 seeds) against the
    certified optimum δ* of the linearized problem at the same λ (δ* is the global optimum at every LoRA rank ≥
    rank δ*, so at the rank trained here too), paired per test sentence (module docstring)."""
    cfg = TABLE_4.of(ctx)
    with Timer() as t:
        task = actual_task_for(ctx)
        opt, cert = optimum_for(ctx)
        inst, data = task.train, _data(task)
        layout = entk.BlockLayout.of(task.classifier.model, task.weight_names)
        star_pred = entk.predictions(task.test.G, task.test.f0, opt.delta).argmax(axis=1)
        lin_test, lin_train = entk.test_accuracy(task.test, opt.delta), entk.test_accuracy(inst, opt.delta)
        runs, verdicts, curves = [], [], {}
        for seed in range(cfg.seeds):
            lora, res, ev = _run_actual(task, data, cfg, cfg.lr, cfg.steps, seed, inst.lam)
            d = lora.delta()
            v, m, judged = _judge(task, data, d, star_pred)
            rec = {"seed": seed} | _training_record(res, ev) | judged | {
                "‖δ − δ*‖_F / ‖δ*‖_F": float(np.linalg.norm(d - opt.delta) / np.linalg.norm(opt.delta)),
                "block ranks": block_ranks(d, layout)}
            # the comparison is about gradient descent that descends: a run whose objective rose is outside it
            if rec["steps that raised the objective"]:
                v = combine([v, Verdict.INCONCLUSIVE])
            runs.append(rec)
            verdicts.append((v, m))
            curves[f"η = {cfg.lr:g}, seed {seed}"] = res.objective_history
        verdict, margin = combine([v for v, _ in verdicts]), min(m for _, m in verdicts)
        actual = float(np.mean([r["test accuracy"] for r in runs]))
        # near miss: the same training (same seeds) at a step size at which GD catapults, so it leaves the NTK regime
        near, near_verdicts = [], []
        for seed in range(cfg.seeds):
            lora, res, ev = _run_actual(task, data, cfg, TABLE4_NEAR_LR, cfg.near_steps, seed, inst.lam)
            v, m, judged = _judge(task, data, lora.delta(), star_pred)
            rec = {"seed": seed} | _training_record(res, ev) | judged
            if ev["train"]["objective"] >= res.objective_history[0]:  # diverged: a gross error, not a near miss
                v = Verdict.INCONCLUSIVE
            near.append(rec)
            near_verdicts.append((v, m))
            curves[f"η = {TABLE4_NEAR_LR:g}, seed {seed} (near miss)"] = res.objective_history
        nv, nm = combine([v for v, _ in near_verdicts]), min(m for _, m in near_verdicts)
        # gross control: the pretrained network (δ = 0) offered as the trained one
        zv, zm, zero = _judge(task, data, np.zeros_like(opt.delta), star_pred)
    n_test = int(task.test.Y.shape[0])
    k_hold, k_refute = decided_counts(n_test)
    details = {"test accuracy actual (mean of seeds) / linearized at δ*": f"{100 * actual:.2f} / {100 * lin_test:.2f}",
               "paper (Table 4), actual / linearized": {k: f"{a:.2f} / {b:.2f}" for k, (a, b) in PAPER_TABLE_4.items()},
               "n_test": n_test, "linearized train accuracy at δ*": lin_train,
               "linearized optimum: objective, rank, certified": f"{cert.objective:.6g}, {cert.rank}, {cert.certified}",
               "block ranks of δ*": block_ranks(opt.delta, layout),
               "training": f"peft LoRA r = {cfg.rank} on {task.weight_names}, zero init (A random, B = 0), full-batch "
                           f"GD, η = {cfg.lr:g}, {cfg.steps} steps, λ = {inst.lam:g}",
               "runs": runs, f"near miss: η = {TABLE4_NEAR_LR:g}, {cfg.near_steps} steps": near,
               "gross control: δ = 0 (zero-shot)": zero}
    check = CheckResult("table_4_linearization",
                        f"Actual LoRA training of all-MiniLM-L6-v2 (peft, rank {cfg.rank} on query and value, λ = "
                        f"{inst.lam:g}, GD at η = {cfg.lr:g}, {cfg.seeds} seeds) stays in the NTK regime and lands on "
                        "the certified linearized solution: on the test sentences it disagrees with δ*'s predictions "
                        f"(a) and with its own linearization at the trained δ (b) on at most {DISAGREE_MAX:g} "
                        "of them, so its test accuracy is on par with δ*'s (the paper's Table 4 criterion; the gap is "
                        "at most the disagreement rate).", "Appendix, Table 4", verdict, margin, [_name(task)],
                        t.seconds, details,
                        power=f"A disagreement rate whose exact {DISAGREE_CI_LEVEL:g} interval lies above "
                              f"{DISAGREE_MAX:g} refutes it ({k_refute} or more of {n_test} test sentences); a run whose "
                              "objective rises makes it inconclusive. Near miss: the same training at "
                              f"η = {TABLE4_NEAR_LR:g}, where GD catapults (its objective peak is printed) and still "
                              "trains; gross control: the pretrained network (δ = 0).",
                        resolution=f"on n = {n_test}: ≤ {k_hold} disagreements ({k_hold / n_test:.3f}) confirmed, ≥ {k_refute} "
                                   f"({k_refute / n_test:.3f}) refuted, between inconclusive; the onset of the "
                                   "catapult (η = 0.25) is not resolved")
    peaks = [r["objective peak / start"] for r in near]
    ends = [r["objective start / end"].split(" / ")[1] for r in near]
    ctrls = [control("table_4_catapult_step", "table_4_linearization",
                     f"'in the NTK regime' claimed for the same training at η = {TABLE4_NEAR_LR:g}, {cfg.near_steps} "
                     f"steps, seeds 0–{cfg.seeds - 1} (objective peaks {min(peaks):.2f}–{max(peaks):.2f}× the start, "
                     f"ends {', '.join(ends)}; a run whose objective ends above its start counts as diverged, not "
                     "caught)", nv, nm, kind=ControlKind.NEAR_MISS),
             control("table_4_zero_shot", "table_4_linearization",
                     "the pretrained network (δ = 0) offered as the trained one", zv, zm, kind=ControlKind.GROSS)]
    figure = {"kind": "table_4_objective", "curves": curves}
    return ClaimOutcome(check, ctrls, figures={"table_4_objective": figure})


CLAIMS = [ClaimSpec("table_4_linearization", "", "Appendix, Table 4", run_table_4, SECTION, profiles=("full",))]
