"""Mu & Klabjan's LoRA gradient descent, V = [B; Aᵀ], with their step-size rule (Lemma 3.4), run on the
project's linearized problem (``TorchLoRAProblem``), and gradient descent on δ (full fine-tuning) beside it.

One code path serves every check and its controls: ``run_rule`` takes a step multiplier (1 = the rule), or
``beyond_curvature`` = ε for the near-miss control — at every point V_t of the rule's run it records, in place of
the rule's step, the probe step (1 + ε)·3/(2h_t) and J after it, h_t = gᵀ∇²J g/‖g‖² the curvature along the
gradient g: just past the largest step at which a quadratic J still decreases by (step/4)‖g‖² (where h_t ≤ 0 no
step breaks it and the rule's step is recorded); the run itself goes on by the rule — and returns the per-step
record the checks read. Starts of different LoRA
ranks share one batch: a rank-r start is a (m + n, r_max) factor with zero columns beyond r, and gradient
descent keeps zero columns zero (∇J(V) = [S v; Sᵀ u] + λ V acts column by column).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from theory.convergence_rate import smoothness_constant, step_size
from theory.linearized_model import sensing_norm_squared
from theory.sensing import is_operator
from verify.device import device_for
from verify.instance import Instance
from verify.solvers.bm import TorchLoRAProblem


@dataclass(frozen=True)
class RuleRun:
    """Per-step record of S runs of T steps each (arrays (S, T) unless said).

    J the objective J(V_t) (with (λ/2)‖V_t‖² when λ > 0), J_next J(V_{t+1}), grad_sq ‖∇J(V_t)‖²_F,
    eta the step the rule gives η_t (before the multiplier), step the step taken (multiplier·η_t),
    V_sq ‖V_t‖²_F, gradL ‖∇𝓛(δ_t)‖_F; L the smoothness constant of 𝓛; ranks (S,) the LoRA ranks; multiplier the
    largest step ÷ η_t used; curvature h_t along ∇J (NaN unless ``beyond_curvature`` was given); reading the rule's
    reading (``theory.convergence_rate.STEP_READINGS``).
    """

    J: np.ndarray
    J_next: np.ndarray
    grad_sq: np.ndarray
    eta: np.ndarray
    step: np.ndarray
    V_sq: np.ndarray
    gradL: np.ndarray
    L: float
    ranks: tuple[int, ...]
    multiplier: float
    curvature: np.ndarray
    reading: str = "transcribed"


def instance_smoothness(inst: Instance) -> float:
    """L of the instance's risk 𝓛(δ) (``theory.convergence_rate.smoothness_constant``)."""
    return smoothness_constant(inst.loss_fn.hessian_bound, sensing_norm_squared(inst.G), inst.N)


def lora_starts(inst: Instance, ranks, norm_sq: float, rng: np.random.Generator) -> np.ndarray:
    """One start per rank, padded to (S, m + n, max rank): Gaussian u, v in the first r columns scaled to
    ‖V₀‖²_F = ``norm_sq`` for every rank (so J(V₀)'s norm term and the rule's first step do not favour a
    rank), zeros beyond. Non-zero: V = 0 is a stationary point of J (their Section 3)."""
    r_max = max(ranks)
    Q = np.zeros((len(ranks), inst.m + inst.n, r_max))
    for s, r in enumerate(ranks):
        block = rng.standard_normal((inst.m + inst.n, r))
        Q[s, :, :r] = block * np.sqrt(norm_sq / np.sum(block * block))
    return Q


def in_units(inst: Instance, a: float, c: float) -> Instance:
    """The squared-loss instance with δ and the loss in other units: 𝓛'(δ) = c·𝓛(aδ), i.e. G, f0, Y scaled by
    √c·a, √c, √c (the same problem: δ' = δ/a, loss values ×c). Raises ValueError for another loss (the
    cross-entropy of c·outputs is not c times the cross-entropy), for λ ≠ 0 or P set (they would need rescaling
    too) and for a block/factored G (dense (N, K, m, n) only)."""
    if inst.loss != "squared":
        raise ValueError(f"in_units needs the squared loss, got {inst.loss!r}")
    if inst.lam != 0 or inst.P is not None or is_operator(inst.G):
        raise ValueError("in_units needs λ = 0, no P and a dense G")
    rc = np.sqrt(c)
    return inst.with_(G=inst.G * (rc * a), f0=inst.f0 * rc, Y=inst.Y * rc,
                      name=f"{inst.name} in units a = {a:.3g}, c = {c:.3g} (𝓛' = c·𝓛(a·))")


def ascent_start(inst: Instance, norm_sq: float, r: int) -> np.ndarray:
    """V₀ = ε[a₁; b₁] padded to (m + n, r), (a₁, b₁) the top singular pair of ∇𝓛(0) (J rises along it:
    ⟨∇𝓛(0), a₁b₁ᵀ⟩ = σ₁ > 0), ‖V₀‖²_F = ``norm_sq``."""
    U, _, Vt = np.linalg.svd(inst.gradient(np.zeros((inst.m, inst.n))))
    Q = np.zeros((inst.m + inst.n, r))
    Q[:, 0] = np.sqrt(0.5 * norm_sq) * np.concatenate([U[:, 0], Vt[0]])
    return Q


def curvature_along(prob: TorchLoRAProblem, Q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """h = gᵀ∇²J(Q)g / ‖g‖²_F per start (S,): the directional derivative of the gradient along g (forward mode,
    ``torch.func.jvp``), Q, g (S, m + n, r)."""
    _, Hg = torch.func.jvp(lambda X: prob.gradient(X, prob.evaluate(X)), (Q,), (g,))
    return torch.sum(g * Hg, dim=(1, 2)) / torch.sum(g * g, dim=(1, 2))


def run_rule(inst: Instance, Q0: np.ndarray, steps: int, *, multiplier: float = 1.0,
             beyond_curvature: float | None = None, device=None, reading: str = "transcribed") -> RuleRun:
    """LoRA gradient descent V_{t+1} = V_t − c·η_t ∇J(V_t), η_t from Lemma 3.4 (``step_size`` in the rule's
    ``reading``), c = ``multiplier``, for ``steps`` steps from Q0 (S, m + n, r); λ = inst.lam enters J and the rule.
    With
    ``beyond_curvature`` = ε, step and J_next record the probe (1 + ε)·3/(2h_t) where h_t > 0 (module docstring).
    ``device``: 'auto', 'cpu', 'cuda' or None (= 'auto'), resolved by ``verify.device``."""
    device = device_for(device or "auto")
    prob = TorchLoRAProblem.from_instance(inst, device=device)
    L = instance_smoothness(inst)
    Q = torch.as_tensor(Q0, dtype=torch.float64, device=device).clone()
    S = Q.shape[0]
    rec = {k: np.empty((S, steps)) for k in ("J", "J_next", "grad_sq", "eta", "step", "V_sq", "gradL")}
    rec["curvature"] = np.full((S, steps), np.nan)
    ev = prob.evaluate(Q)
    for t in range(steps):
        g = prob.gradient(Q, ev)                                               # ∇J = [S v; Sᵀ u] + λ Q
        V_sq = torch.sum(Q * Q, dim=(1, 2)).cpu().numpy()
        gL = prob.risk_gradient_norm(ev.yhat).cpu().numpy()                    # ‖∇L(u vᵀ)‖_F
        eta = step_size(V_sq, gL, L, inst.lam, reading)                        # (S,)
        step = multiplier * eta
        Q_rule = Q - torch.as_tensor(step, dtype=Q.dtype, device=Q.device)[:, None, None] * g
        ev_next = prob.evaluate(Q_rule)
        rec["J_next"][:, t] = ev_next.F.cpu().numpy()
        if beyond_curvature is not None:  # probe a step past the curvature limit; the run goes on by the rule
            h = curvature_along(prob, Q, g).cpu().numpy()
            rec["curvature"][:, t] = h
            step = np.where(h > 0, (1.0 + beyond_curvature) * 1.5 / np.where(h > 0, h, 1.0), step)
            probe = Q - torch.as_tensor(step, dtype=Q.dtype, device=Q.device)[:, None, None] * g
            rec["J_next"][:, t] = prob.evaluate(probe).F.cpu().numpy()
        Q = Q_rule
        rec["J"][:, t] = ev.F.cpu().numpy()
        rec["grad_sq"][:, t] = torch.sum(g * g, dim=(1, 2)).cpu().numpy()
        rec["eta"][:, t], rec["step"][:, t], rec["V_sq"][:, t], rec["gradL"][:, t] = eta, step, V_sq, gL
        ev = ev_next
    ranks = tuple(int(torch.count_nonzero(torch.linalg.vector_norm(Q0s, dim=0))) for Q0s in
                  torch.as_tensor(Q0))
    return RuleRun(rec["J"], rec["J_next"], rec["grad_sq"], rec["eta"], rec["step"], rec["V_sq"], rec["gradL"], L,
                   ranks, float(np.max(rec["step"] / rec["eta"])), rec["curvature"], reading)


def run_full_gd(inst: Instance, steps: int) -> tuple[np.ndarray, float]:
    """Full fine-tuning: gradient descent on δ from δ₀ = 0 with η = 1/L (numpy, float64).
    Returns (‖∇(𝓛 + λ‖·‖²_F/2)(δ_t)‖²_F for t < steps, shape (steps,), F(δ₀)); λ enters as a smooth
    Frobenius penalty, the full-rank counterpart of LoRA weight decay (Lemma 2.2 at λ = 0 is the same)."""
    L = instance_smoothness(inst) + inst.lam
    delta = np.zeros((inst.m, inst.n))
    out = np.empty(steps)
    for t in range(steps):
        grad = inst.gradient(delta) + inst.lam * delta
        out[t] = float(np.sum(grad * grad))
        delta = delta - grad / L
    return out, inst.risk(np.zeros((inst.m, inst.n)))
