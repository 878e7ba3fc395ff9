"""Report figures, drawn from the plain-JSON data that claims return (so a resumed run redraws them).

Each drawer takes (data: dict, path: Path) and writes one PNG.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str | None = None) -> Path:
    """Label the axes, add the title and legend, and save."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rank_reduction(data: dict, path: Path) -> Path:
    """Theorem 3.1: rank against reduction step, with the bound r(r+1)/2 ≤ KN marked."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for p in data["paths"]:
        ax.plot(range(len(p["ranks"])), p["ranks"], marker="o", ms=3, label=f"{p['label']} (bound {p['bound']})")
        ax.axhline(p["bound"], ls=":", lw=0.8, color=ax.lines[-1].get_color())
    return _finish(fig, ax, path, "reduction step", "rank of the global minimizer",
                   "Thm 3.1 made constructive: objective unchanged, rank drops to the bound")


def spurious_fraction(data: dict, path: Path) -> Path:
    """Fraction of starts ending at a spurious SOSP against LoRA rank r, threshold r(r+1)/2 > KN marked."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for s in data["series"]:
        ax.plot(s["ranks"], s["fractions"], marker="o", label=f"{s['label']} (KN = {s['kn']})")
        ax.axvline(s["threshold"], ls=":", color=ax.lines[-1].get_color())
    return _finish(fig, ax, path, "LoRA rank r", "fraction of starts at a spurious SOSP",
                   "Thm 4.1: dotted line = smallest r with r(r+1)/2 > KN")


def excess_risk(data: dict, path: Path) -> Path:
    """Thm 5.1 / C.6: observed excess risk (quantile 1 − η over resampled training sets) and the bound."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.loglog(data["N"], data["bound"], marker="s", label="bound (Thm C.6)")
    ax.loglog(data["N"], data["observed_quantile"], marker="o", label=f"observed, quantile {data['quantile']:.2f}")
    ax.loglog(data["N"], data["observed_mean"], marker=".", ls="--", label="observed, mean")
    return _finish(fig, ax, path, "N (training examples)", "excess population risk")


def rademacher(data: dict, path: Path) -> Path:
    """Lemma C.4: exact empirical Rademacher complexity of the nuclear ball against R·D·√K/√N."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.loglog(data["N"], data["bound"], marker="s", label="R·D·√K/√N")
    ax.loglog(data["N"], data["exact"], marker="o", label="exact (dual norm, mean over signs)")
    return _finish(fig, ax, path, "N", "Rademacher complexity")


def rank_protocol_counts(data: dict, path: Path) -> Path:
    """Section 6 measured: iterations to each relative tolerance against the rank, one panel per protocol,
    one line per tolerance (seed median; gaps where a seed never reached it); dotted: rank(δ*)."""
    protocols = list(dict.fromkeys(line["protocol"] for line in data["lines"]))
    fig, axes = plt.subplots(1, len(protocols), figsize=(3.2 * len(protocols), 3.4), sharey=True, squeeze=False)
    for ax, p in zip(axes[0], protocols):
        for line in (ln for ln in data["lines"] if ln["protocol"] == p):
            y = [float("nan") if v is None else v for v in line["iterations"]]
            ax.loglog(data["ranks"], y, marker="o", ms=3, label=f"tol {line['tol']}")
        ax.axvline(data["optimum_rank"], ls=":", color="gray", lw=0.8)
        ax.set_title(p, fontsize=7)
        ax.set_xlabel("LoRA rank r")
        ax.legend(fontsize=6)
    axes[0][0].set_ylabel("iterations to tolerance")
    fig.suptitle(data.get("title", "Section 6"), fontsize=8)
    return _save(fig, path)


def kim_constants(data: dict, path: Path) -> Path:
    """Kim et al. on synthetic squared loss: sampled α (an upper bound) and β (a lower bound) against the exact
    value or proven bound, one pair of bars per (instance, rank)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    labels = [s["label"] for s in data["series"]]
    x = range(len(labels))
    for ax, key, side in ((axes[0], "alpha", "α"), (axes[1], "beta", "β")):
        ax.bar([i - 0.2 for i in x], [s[f"{key}_sampled"] for s in data["series"]], 0.4, label=f"sampled {side}")
        ax.bar([i + 0.2 for i in x], [s[f"{key}_true_or_bound"] for s in data["series"]], 0.4,
               label=f"exact / proven {side}")
        ax.set_xticks(list(x), labels, rotation=30, ha="right", fontsize=6)
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.legend(fontsize=7)
    axes[0].set_title("α: sampled min ≥ true", fontsize=8)
    axes[1].set_title("β: sampled max ≤ true", fontsize=8)
    return _save(fig, path)


def kim_rank_curves(data: dict, path: Path) -> Path:
    """Kim et al.'s table against r: α (upper bounds), β (lower bounds) and β/α, ours (linearized, actual model)
    beside the paper's (RoBERTa-base, SST-2)."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    r = data["ranks"]
    paper = [data["paper"].get(str(k)) for k in r]
    for ax, key, idx, title in ((axes[0], "alpha_upper", 1, "α (sampled: upper bound)"),
                                (axes[1], "beta_lower", 2, "β (sampled: lower bound)"),
                                (axes[2], "beta_over_alpha", 0,
                                 "sampled β/α: N/A, the witness proves α ≤ 0" if data.get("alpha_refuted")
                                 else "sampled β/α: lower bound if α > 0")):
        for name in ("ours_linearized", "ours_actual"):
            y = [row[key] if row[key] is not None else float("nan") for row in data[name]]
            ax.plot(r, y, marker="o", label=name.replace("_", ", "))
        ax.plot(r, [p[idx] if p and p[idx] is not None else float("nan") for p in paper], marker="s", ls="--",
                label="paper (RoBERTa, SST-2)")
        ax.set_xscale("log", base=2)
        if key == "alpha_upper":
            ax.set_yscale("symlog", linthresh=1e-5)
            if "witness_actual" in data:
                ax.axhline(data["witness_actual"], color="red", lw=0.8, ls=":", label="witness (actual): α ≤ this")
                if data.get("alpha_refuted"):
                    ax.axhline(0.0, color="grey", lw=0.8, ls="-.", label="witness (linearized): α = 0")
        else:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("LoRA rank r")
        ax.legend(fontsize=6)
    return _save(fig, path)


def min_grad_rates(data: dict, path: Path) -> Path:
    """Mu & Klabjan: min_{t<T} ‖∇J(V_t)‖² against T on log axes, one colour per run, with its bounds (dashed,
    dotted; labelled on the first run) and the fitted c/T and c/log T curves (thin) where given."""
    fig, ax = plt.subplots(figsize=(8.4, 4.2))
    styles = ["--", ":", "-."]
    for i, s in enumerate(data["series"]):
        T = np.asarray(s["T"], dtype=float)
        ax.loglog(T, s["min_grad"], lw=1.5, label=s["label"])
        colour = ax.lines[-1].get_color()
        for (name, values), ls in zip(s.get("bounds", {}).items(), styles):
            ax.loglog(T, values, ls=ls, lw=0.8, color=colour,
                      label=f"bound: {name}" if i == 0 or "fine-tuning" in s["label"] else None)
        for rate, c in s.get("fits", {}).items():
            ref = 1.0 / T if rate == "1/T" else 1.0 / np.log(T)
            ax.loglog(T, c * ref, lw=0.5, alpha=0.6, color=colour, label=f"{s['label']}: fit {c:.2g}·{rate}")
    ax.set_xlabel("T (iterations)")
    ax.set_ylabel("min_{t<T} ‖∇J(V_t)‖²")
    ax.set_title(data.get("title", ""), fontsize=8)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def kim_end_points(data: dict, path: Path) -> Path:
    """Kim et al.: end points by ‖X‖_F (log) and rank, colour = initial scale (0 = zero init), marker = model,
    filled = λ > 0, hollow = λ = 0, red ring = spurious (certified not global); each point annotated with its
    accuracy (test where there is a test set)."""
    fig, ax = plt.subplots(figsize=(7.6, 4))
    markers = {"synthetic": "o", "linearized MiniLM": "s", "actual": "^", "SDP-built": "D"}
    scales = sorted({p["scale"] for p in data["points"]})
    cmap = plt.get_cmap("viridis", max(2, len(scales)))
    for model, mk in markers.items():
        pts = [p for p in data["points"] if p["model"] == model]
        for p in pts:
            c, x = cmap(scales.index(p["scale"])), max(p["norm"], 1e-12)
            ax.scatter(x, p["rank"], marker=mk, s=30, edgecolors=c, facecolors=c if p["lam"] > 0 else "none")
            if p["label"] == "spurious":
                ax.scatter(x, p["rank"], marker="o", s=110, facecolors="none", edgecolors="red", linewidths=0.8)
            ax.annotate(f"{p['acc']:.2f}", (x, p["rank"]), fontsize=5)
        if pts:
            ax.scatter([], [], marker=mk, color="gray", label=model)
    if any(p["label"] == "spurious" for p in data["points"]):
        ax.scatter([], [], marker="o", facecolors="none", edgecolors="red", label="spurious")
    for s in scales:
        ax.scatter([], [], marker="o", color=cmap(scales.index(s)), label=f"init scale {s:.3g}")
    ax.set_xscale("log")
    ax.set_xlabel("‖X‖_F of the end point")
    ax.set_ylabel("rank of X")
    ax.set_title("fails loudly: filled λ > 0, hollow λ = 0 (actual λ > 0: after L-BFGS)", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, path)


def table_4_objective(data: dict, path: Path) -> Path:
    """Table 4: the training objective of each actual LoRA run against the GD step (log scale): the runs in the
    verdict and the near miss, whose catapult (a rise above the start) shows."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, h in data["curves"].items():
        ax.semilogy(range(len(h)), h, lw=1.0, ls="--" if "near miss" in label else "-", label=label)
    return _finish(fig, ax, path, "GD step", "training objective (mean CE + weight decay)",
                   "Table 4: actual LoRA training of MiniLM")


DRAWERS = {"table_4_objective": table_4_objective,
           "rank_protocol_counts": rank_protocol_counts, "rank_reduction": rank_reduction,
           "kim_constants": kim_constants, "kim_rank_curves": kim_rank_curves, "min_grad_rates": min_grad_rates,
           "kim_end_points": kim_end_points,
           "spurious_fraction": spurious_fraction, "excess_risk": excess_risk, "rademacher": rademacher}


def draw(name: str, data: dict, path: Path) -> Path:
    kind = data.get("kind", name)
    return DRAWERS[kind](data, path)
