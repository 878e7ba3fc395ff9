"""Rewrite the README speed table from the last benchmark run (``.benchmarks/ratios.json``, written by
``tests/benchmarks/conftest.py`` at the end of ``python -m pytest tests/benchmarks -m slow --benchmark-only``).

The table sits in README.md between the lines ``<!-- speed-table -->`` and ``<!-- /speed-table -->``; every
number in it comes from that one run, with the machine named. Usage: ``python tests/benchmarks/speed_table.py
[--ratios .benchmarks/ratios.json] [--readme README.md]``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

BEGIN, END = "<!-- speed-table -->", "<!-- /speed-table -->"
SOLVER_NAMES = {"bm": "Burer–Monteiro (`bm`, L-BFGS, float64)",
                "bm-lbfgsb": "`bm`, SciPy L-BFGS-B, one thread (`method=\"lbfgsb\"`)",
                "bm-f32warm": "`bm`, float32 passes, float64 where the certificate needs it (`warm_dtype`)", "prox": "FISTA (`prox`)",
                "cvxpy-SCS": "cvxpy SCS (nuclear norm, defaults)", "cvxpy-CLARABEL": "cvxpy Clarabel (nuclear norm)"}


def table(data: dict) -> str:
    """Markdown table of the run: size, solver, median time, certified, gap bound, speed-up vs cvxpy-SCS."""
    lines = [f"Measured in one run on: {data['machine']}.", "",
             "| m = n | solver | median time | certified | gap bound | speed-up vs cvxpy-SCS |", "|---|---|---|---|---|---|"]
    for row in sorted(data["rows"], key=lambda r: (int(r["group"].split("=")[-1]), r["solver"])):
        ratio = row.get("speedup_vs_cvxpy-SCS")
        lines.append(f"| {row['group'].split('=')[-1]} | {SOLVER_NAMES.get(row['solver'], row['solver'])} | "
                     f"{row['median_s']:.3g} s | {'yes' if row['certified'] else 'no'} | {row['gap_bound']:.1e} | "
                     f"{'' if ratio is None else f'{ratio:.1f}×'} |")
    return "\n".join(lines)


def rewrite(readme: str, body: str) -> str:
    """README text with the block between BEGIN and END replaced by ``body``."""
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"README has no {BEGIN} … {END} block")
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ratios", type=Path, default=Path(".benchmarks/ratios.json"))
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    args = ap.parse_args()
    args.readme.write_text(rewrite(args.readme.read_text(), table(json.loads(args.ratios.read_text()))))


if __name__ == "__main__":
    main()
