"""Claims on *actual* LoRA training of the real network (peft adapters, verify.actual_training) beside the
linearized instance of the same training (verify.entk): the main paper's Table 4.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from verify import actual_training as at
from verify import data_text, entk
from verify.claims.base import ClaimOutcome, ClaimSpec, Context, ControlKind, Profiles, Timer, control
from verify.claims.entk_claims import SECTION, _name, accuracy_verdict, actual_task_for, optimum_for
from verify.commands.train import block_ranks
from verify.results import CheckResult, Verdict
from verify.tolerances import NTK_ACC_HOLD_SE, NTK_ACC_REFUTE_SE, TABLE4_NEAR_LRS

#: the paper's Table 4 (Appendix), accuracy actual / linearized, averaged over 3 runs
PAPER_TABLE_4 = {"image classification": (86.20, 87.00), "speech classification": (74.67, 73.67)}


@dataclass(frozen=True)
class Table4Config:
    #: LoRA rank per tuned matrix, training seeds (peft's random A; B = 0), GD steps and step size
    rank: int
    seeds: int
    steps: int
    lr: float


#: full profile only (real model); 3 seeds × 100 full-batch steps at η = 0.5 plus the step-size scan: 1–4 min on
#: 2 shared cores (per-step time varied 0.06–0.7 s with the machine's load while this was written)
TABLE_4 = Profiles(quick=Table4Config(rank=8, seeds=3, steps=100, lr=0.5),
                   full=Table4Config(rank=8, seeds=3, steps=100, lr=0.5))


def _data(task):
    """Tokenized train / test texts and labels, on the task's classifier's device."""
    clf = task.classifier
    train = data_text.sample_train(task.train.N, np.random.default_rng(task.train.provenance.get("seed", 0)))
    test = data_text.load_sentiment("test")
    device = clf.label_embeddings.device
    return {name: (clf.encode(s.texts), torch.tensor(s.labels, device=device))
            for name, s in (("train", train), ("test", test))}


def _run_actual(task, data, cfg: Table4Config, lr: float, seed: int, lam: float):
    lora = at.attach(task.classifier, task.weight_names,
                     at.TrainConfig(rank=cfg.rank, lam=lam, steps=cfg.steps, lr=lr, seed=seed))
    result = at.train(lora, *data["train"])
    return lora, result, {name: at.evaluate(lora, *d) for name, d in data.items()}


def run_table_4(ctx: Context) -> ClaimOutcome:
    """Table 4 on text: test accuracy of actual LoRA training (peft, full-batch GD, weight decay λ, zero init, 3
    seeds) against the certified optimum δ* of the linearized problem at the same λ (δ* is the global optimum at
    every LoRA rank ≥ rank δ*, so at the rank trained here too)."""
    cfg = TABLE_4.of(ctx)
    with Timer() as t:
        task = actual_task_for(ctx)
        opt, cert = optimum_for(ctx)
        inst, data = task.train, _data(task)
        layout = entk.BlockLayout.of(task.classifier.model, task.weight_names)
        n_test = int(data["test"][1].shape[0])
        lin_test, lin_train = entk.test_accuracy(task.test, opt.delta), entk.test_accuracy(inst, opt.delta)
        runs = []
        for seed in range(cfg.seeds):
            lora, res, ev = _run_actual(task, data, cfg, cfg.lr, seed, inst.lam)
            d = lora.delta()
            runs.append({"seed": seed, "test accuracy": ev["test"]["accuracy"], "train accuracy": ev["train"]["accuracy"],
                         "training objective (actual)": res.objective_history[-1],
                         "linearized objective L̂_λ at the actual δ": inst.objective(d),
                         "‖δ − δ*‖_F / ‖δ*‖_F": float(np.linalg.norm(d - opt.delta) / np.linalg.norm(opt.delta)),
                         "block ranks": block_ranks(d, layout)})
        actual = float(np.mean([r["test accuracy"] for r in runs]))
        verdict, margin = accuracy_verdict(actual, lin_test, n_test)
        p = (round(lin_test * n_test) + 1) / (n_test + 2)
        se = float(np.sqrt(p * (1 - p) / n_test))
        # near miss: the smallest step size of the scan at which the actual model leaves the NTK regime
        scan = {}
        for lr in TABLE4_NEAR_LRS:
            _, _, ev = _run_actual(task, data, cfg, lr, 0, inst.lam)
            scan[lr] = (ev["test"]["accuracy"], *accuracy_verdict(ev["test"]["accuracy"], lin_test, n_test))
            if scan[lr][1] is Verdict.VIOLATED:
                break
    caught = next((lr for lr, (_, v, _) in scan.items() if v is Verdict.VIOLATED), None)
    near_lr = caught if caught is not None else TABLE4_NEAR_LRS[-1]
    details = {"test accuracy actual (mean of seeds) / linearized at δ*": f"{100 * actual:.2f} / {100 * lin_test:.2f}",
               "paper (Table 4), actual / linearized": {k: f"{a:.2f} / {b:.2f}" for k, (a, b) in PAPER_TABLE_4.items()},
               "n_test": n_test, "binomial SE used (linearized accuracy, add-one smoothing)": se,
               "linearized train accuracy at δ*": lin_train, "linearized optimum: objective, rank, certified":
               f"{cert.objective:.6g}, {cert.rank}, {cert.certified}",
               "block ranks of δ*": block_ranks(opt.delta, layout),
               "training": f"peft LoRA r = {cfg.rank} on {task.weight_names}, zero init (A random, B = 0), full-batch "
                           f"GD, η = {cfg.lr:g}, {cfg.steps} steps, λ = {inst.lam:g}",
               "runs": runs,
               "step-size scan (seed 0): test accuracy, verdict, margin in SE":
                   {f"η = {lr:g}": f"{a:.3f}, {v.value}, {m:.2f}" for lr, (a, v, m) in scan.items()}}
    check = CheckResult("table_4_linearization",
                        f"Actual LoRA training of all-MiniLM-L6-v2 (peft, rank {cfg.rank} on query and value, λ = "
                        f"{inst.lam:g}, {cfg.seeds} seeds) reaches the test accuracy of the certified linearized "
                        f"solution within {NTK_ACC_HOLD_SE:g} binomial SE (the paper's Table 4 criterion: accuracy on "
                        "par).", "Appendix, Table 4", verdict, margin, [_name(task)], t.seconds, details,
                        power=f"A gap beyond {NTK_ACC_REFUTE_SE:g} SE ({NTK_ACC_REFUTE_SE * se:.3f} in accuracy on "
                              f"n = {n_test} test sentences) refutes it; the near miss (the same training at the "
                              f"smallest step size of {TABLE4_NEAR_LRS} that leaves the NTK regime) is caught.",
                        resolution=f"accuracy differences ≥ {NTK_ACC_REFUTE_SE:g} SE ≈ {NTK_ACC_REFUTE_SE * se:.3f}; "
                                   f"agreement claimed only within {NTK_ACC_HOLD_SE:g} SE ≈ {se:.3f}: with this test "
                                   "set accuracy cannot resolve smaller departures from linearity")
    _, nv, nm = scan[near_lr]
    ctrls = [control("table_4_large_step", "table_4_linearization",
                     f"'still linear' claimed for actual training at step size η = {near_lr:g} (smallest of "
                     f"{TABLE4_NEAR_LRS} at which the test accuracy leaves the linearized one)", nv, nm,
                     kind=ControlKind.NEAR_MISS)]
    return ClaimOutcome(check, ctrls)


CLAIMS = [ClaimSpec("table_4_linearization", "", "Appendix, Table 4", run_table_4, SECTION, profiles=("full",))]
