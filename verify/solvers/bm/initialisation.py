"""Starting factors Q0 = [u; v] of the Burer–Monteiro / LoRA solver (one per start)."""
from __future__ import annotations

import numpy as np

from verify.instance import Instance, check_int, check_rank

INITS = ("lora", "random")


def initial_factors(inst: Instance, rank: int, starts: int, init, rng: np.random.Generator | None,
                    scale: float | None = None) -> np.ndarray:
    """Initial LoRA factors Q0 = [u; v] for every start, float64 of shape (starts, m + n, rank).

    init:
      "lora"   — u (m, r) i.i.d. N(0, scale²) with scale = 1/√m by default (the Kaiming-like scale of
                 PEFT's LoRA "A" factor, fan-in m: each column of u has norm ≈ 1), v = 0, so δ = u vᵀ = 0
                 at the start as in LoRA fine-tuning;
      "random" — all of Q i.i.d. N(0, scale²) with scale = 1/√(m + n) (columns of norm ≈ 1);
      an array of shape (m + n, rank) (one start) or (S, m + n, rank) (S starts; ``starts`` must be
                 1 or S).
    "zero" is refused: Q = 0 is a stationary point (∇F_P(0) = M·0 = 0) that no method leaves.
    Random inits draw from ``rng`` only (a numpy Generator; global RNG state is never touched).
    """
    rank = check_rank(rank)
    shape = (check_int("starts", starts, error=ValueError), inst.m + inst.n, rank)
    if isinstance(init, str):
        return _random_factors(inst, shape, init, rng, scale)
    Q0 = np.asarray(init, dtype=float)
    Q0 = Q0[None] if Q0.ndim == 2 else Q0
    if Q0.ndim != 3 or Q0.shape[1:] != shape[1:] or shape[0] not in (1, Q0.shape[0]):
        raise ValueError(f"init array must have shape (m + n, rank) = {shape[1:]} or (S, m + n, rank) with "
                         f"starts = 1 or S; got shape {np.shape(init)} with starts = {shape[0]}")
    if not np.all(np.isfinite(Q0)):
        raise ValueError("init array contains NaN or Inf values")
    if not np.all(np.any(Q0 != 0, axis=(1, 2))):
        raise ValueError("init array has an all-zero start: Q = 0 is a stationary point of F_P (∇F_P(0) = 0)")
    return Q0.copy()


def _random_factors(inst: Instance, shape: tuple[int, int, int], init: str, rng, scale) -> np.ndarray:
    if init == "zero":
        raise ValueError("init 'zero' is not allowed: Q = 0 is a stationary point of F_P (∇F_P(0) = M·0 = 0), "
                         "so no gradient method leaves it; use 'lora' (v = 0, u random) instead")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {INITS} or an array of factors")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"init {init!r} draws random factors and needs rng, a numpy.random.Generator; got {rng!r}")
    m = inst.m
    if scale is None:
        scale = 1.0 / np.sqrt(m if init == "lora" else shape[1])
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"init scale must be a positive finite number, got {scale!r}")
    Q0 = np.zeros(shape)
    if init == "lora":
        Q0[:, :m] = scale * rng.standard_normal((shape[0], m, shape[2]))
    else:
        Q0[:] = scale * rng.standard_normal(shape)
    return Q0
