"""``lora-verify solve INSTANCE.npz --rank R [--solver bm|prox|cvxpy] [--method M] [--lam L] [--starts S]
[--json OUT]``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from verify.certify import GAP_RTOL, certify_result
from verify.commands.options import nonnegative_float, nonnegative_int, positive_float, positive_int
from verify.device import DEVICES
from verify.instance import load_instance
from verify.solvers import SOLVERS, run_solver
from verify.solvers.bm.driver import METHODS
from verify.solvers.bm.problem import LORA_FORMS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("solve", help="solve an instance and certify the returned point",
                       description="Solve an instance file and certify the point in float64 (gap bound of MATH.md §2).")
    p.add_argument("instance", help="instance .npz file (keys G, f0, Y, loss, lam, optional P)")
    p.add_argument("--rank", type=positive_int, required=True, help="LoRA rank r (bm); ignored by prox and cvxpy")
    p.add_argument("--solver", choices=SOLVERS, default="bm")
    p.add_argument("--lam", type=nonnegative_float, default=None, help="override the stored λ")
    p.add_argument("--starts", type=positive_int, default=1, help="number of batched starts (bm)")
    p.add_argument("--lora", choices=LORA_FORMS, default="shared",
                   help="bm: 'shared' (one rank-r factor of the block-diagonal update, default) or 'per-matrix' "
                        "(rank r on each tuned matrix)")
    p.add_argument("--method", choices=METHODS, default="lbfgs",
                   help="bm optimizer: batched L-BFGS (default), BB or GD in torch, or 'lbfgsb' (SciPy's L-BFGS-B, "
                        "float64 on the CPU, one start at a time: fastest on small instances)")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--cvxpy-solver", choices=["SCS", "CLARABEL"], default="SCS")
    p.add_argument("--tol", type=positive_float, default=GAP_RTOL,
                   help=f"relative gap tolerance for certification (default {GAP_RTOL:g})")
    p.add_argument("--json", type=Path, default=None, help="write the summary as JSON here")
    p.set_defaults(func=run)


def summarize(result, certificate) -> dict:
    """The fields ``solve`` prints (``certificate`` from ``certify_result``: the status rule applied)."""
    return {
        "objective": certificate.objective,
        "gap_bound": certificate.gap_bound,
        "certified": certificate.certified,
        "lambda_min_M": certificate.lambda_min_M,
        "lambda_min_M_side": certificate.lambda_min_M_side,
        "rank": certificate.rank,
        "solve_seconds": result.solve_seconds,
        "solver": result.solver,
        "status": result.status.value,
        "iterations": result.iterations,
        "first_order_residual": certificate.first_order_residual,
        "reason": certificate.reason,
    }


def run(args) -> int:
    inst = load_instance(args.instance, lam=args.lam)
    result = run_solver(inst, args.solver, rank=args.rank, starts=args.starts, seed=args.seed, lora=args.lora,
                        device=args.device, cvxpy_solver=args.cvxpy_solver, tol=args.tol, method=args.method)
    out = summarize(result, certify_result(inst, result, tol=args.tol))
    for key, value in out.items():
        print(f"{key:>22}: {value}")
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))
    return 0
