"""``lora-verify report [--profile quick|full] [--out DIR] [--seed S]``: the verification report."""
from __future__ import annotations

import argparse
from pathlib import Path

from verify.commands.options import nonnegative_int
from verify.device import DEVICES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="run every claim and write the verification report",
                       description="Run the claims with their negative controls and write report.md, "
                                   "report.html, report.json and figures. Resumes an interrupted run.")
    p.add_argument("--profile", choices=["quick", "full"], default="quick")
    p.add_argument("--out", type=Path, default=Path("reports"))
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--fresh", action="store_true", help="ignore finished claims from an earlier run")
    p.add_argument("--only", nargs="+", metavar="CLAIM", help="run only these claim ids (spaces or commas between)")
    p.set_defaults(func=run)


def run(args) -> int:
    from verify.report import generate
    only = None if args.only is None else [c for a in args.only for c in a.split(",") if c]
    report = generate(args.profile, args.out, seed=args.seed, device=args.device, fresh=args.fresh, only=only)
    s = report["summary"]
    print(f"{s['HOLDS']} HOLDS, {s['VIOLATED']} VIOLATED, {s['INCONCLUSIVE']} INCONCLUSIVE; "
          f"controls {s['controls_caught']} caught, {s['controls_missed']} missed -> {args.out}/report.md")
    return 0
