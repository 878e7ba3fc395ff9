"""Burer–Monteiro / LoRA solver for F_P in torch, all starts batched (Thm 4.1, Lemma 2.2; MATH.md §1–2).

Minimizes F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ over Q = [u; v] of shape (m + n, r).
By Lemma 2.2, F_0(u, v) ≥ L̂_λ(u vᵀ) with equality for balanced factors, and by Theorem 4.1 every
second-order stationary point is global when r(r+1)/2 > KN. The returned points are *not* trusted
here: ``verify.certify.certify`` checks them in float64.

One module per job:
  ``problem``         the objective F_P and its gradient M Q in torch (``TorchLoRAProblem``);
  ``optimizers``      the batched iteration: per-start state, GD, BB, L-BFGS, the line search;
  ``initialisation``  the starting factors (``initial_factors``);
  ``driver``          options, the default GD step (``safe_step``), ``solve_bm_multistart``, ``solve_bm``.

Methods:
  "gd"    plain LoRA gradient descent with a fixed step (the honest training curve);
  "bb"    Barzilai–Borwein steps, one scalar per start (adaptive ABBmin rule);
  "lbfgs" L-BFGS directions, batched over starts (default: 2–3× fewer passes over G than "bb"
          on the gaussian benchmarks, the fastest way to a certifiable optimum).
"bb" and "lbfgs" share the nonmonotone Armijo line search of Zhang & Hager (SIAM J. Optim. 14, 2004),
so they cannot diverge; one iteration of either evaluates one trial point per start.
"""
from verify.device import device_for
from verify.solvers.bm.driver import METHODS, grad_rtol, safe_step, solve_bm, solve_bm_multistart
from verify.solvers.bm.initialisation import INITS, initial_factors
from verify.solvers.bm.problem import Evaluation, TorchLoRAProblem, torch_lora_objective

__all__ = ["INITS", "METHODS", "Evaluation", "TorchLoRAProblem", "device_for", "grad_rtol", "initial_factors",
           "safe_step", "solve_bm", "solve_bm_multistart", "torch_lora_objective"]
