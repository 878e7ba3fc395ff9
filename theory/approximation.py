"""Corollary 4.2: an SOSP of the perturbed LoRA loss is an ε-approximate minimizer of (P).

Statement. Setup of Theorem 4.1 (r(r+1)/2 > KN), ε > 0, δ*_λ ∈ argmin L̂_λ, P ⪰ 0 drawn from a
distribution supported in {‖P‖_F < ε} and absolutely continuous. Then for any SOSP (û, v̂) of
F_P (almost surely a global minimizer of F_P by Theorem 4.1)

    L̂_λ(û v̂ᵀ) ≤ min_δ L̂_λ(δ) + 2ε ‖δ*_λ‖_*.

Proof chain (each link an exact quantity below; Q̂ = [û; v̂], Q* = balanced factors of δ*_λ):

    L̂_λ(û v̂ᵀ) ≤ F_0(û, v̂)                    (Lemma 2.2: ‖û v̂ᵀ‖_* ≤ ½‖Q̂‖_F²)
              ≤ F_P(û, v̂)                    (⟨P, Q̂ Q̂ᵀ⟩ ≥ 0 as P, Q̂ Q̂ᵀ ⪰ 0)
              ≤ F_P(u*, v*)                  (Theorem 4.1: the SOSP is a global minimizer)
              = L̂_λ(δ*_λ) + ⟨P, Q* Q*ᵀ⟩      (balanced factors: ½‖Q*‖_F² = ‖δ*_λ‖_*)
              ≤ L̂_λ(δ*_λ) + ‖P‖_F ‖Q*‖_F²    (Cauchy–Schwarz, ‖Q* Q*ᵀ‖_F ≤ ‖Q*‖_F²)
              = min L̂_λ + 2‖P‖_F ‖δ*_λ‖_*  < min L̂_λ + 2ε ‖δ*_λ‖_*.

Only the third link depends on Theorem 4.1; all others hold for any Q̂ and any P ⪰ 0.
Shapes: ``Q_hat`` (m + n, r), ``delta_opt`` (m, n), ``P`` (m + n, m + n).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theory.lemma_2_2 import balanced_lift
from theory.linearized_model import lora_objective, nuclear_norm, regularized_risk, split_factors


def corollary_4_2_bound(min_value: float, eps: float, nuclear_norm_opt: float) -> float:
    """min L̂_λ + 2ε‖δ*_λ‖_*: the Corollary 4.2 upper bound on L̂_λ(û v̂ᵀ)."""
    if eps < 0 or nuclear_norm_opt < 0:
        raise ValueError(f"ε and ‖δ*_λ‖_* must be ≥ 0, got ε = {eps}, ‖δ*_λ‖_* = {nuclear_norm_opt}")
    return float(min_value + 2.0 * eps * nuclear_norm_opt)


@dataclass(frozen=True)
class Corollary42Chain:
    """The proof chain of Corollary 4.2, link by link (see the module docstring).

    Each field is ≤ the next one: ``lhs`` ≤ ``unperturbed_lora`` ≤ ``perturbed_lora``
    [≤ ``perturbed_at_optimum`` needs Theorem 4.1] ≤ ``cauchy_schwarz_bound``.
    """

    lhs: float                   # L̂_λ(û v̂ᵀ)
    unperturbed_lora: float      # F_0(û, v̂)
    perturbed_lora: float        # F_P(û, v̂)
    perturbed_at_optimum: float  # F_P(u*, v*) = L̂_λ(δ*_λ) + ⟨P, Q* Q*ᵀ⟩
    cauchy_schwarz_bound: float  # L̂_λ(δ*_λ) + 2‖P‖_F ‖δ*_λ‖_*
    min_value: float             # L̂_λ(δ*_λ)
    nuclear_norm_opt: float      # ‖δ*_λ‖_*
    perturbation_norm: float     # ‖P‖_F (Corollary 4.2 needs ‖P‖_F < ε)


def corollary_4_2_chain(G, f0, Y, loss: str, lam: float, Q_hat, delta_opt, P) -> Corollary42Chain:
    """Every quantity of the Corollary 4.2 proof at (û, v̂) = Q_hat and a minimizer δ*_λ = delta_opt."""
    m = G.shape[2]
    u, v = split_factors(Q_hat, m)
    Q_star = balanced_lift(delta_opt)
    min_value = regularized_risk(G, f0, Y, loss, lam, delta_opt)
    nuc = nuclear_norm(delta_opt)
    p_norm = float(np.linalg.norm(P))
    return Corollary42Chain(
        lhs=regularized_risk(G, f0, Y, loss, lam, u @ v.T),
        unperturbed_lora=lora_objective(G, f0, Y, loss, lam, Q_hat),
        perturbed_lora=lora_objective(G, f0, Y, loss, lam, Q_hat, P),
        perturbed_at_optimum=lora_objective(G, f0, Y, loss, lam, Q_star, P),
        cauchy_schwarz_bound=corollary_4_2_bound(min_value, p_norm, nuc),
        min_value=min_value,
        nuclear_norm_opt=nuc,
        perturbation_norm=p_norm,
    )
