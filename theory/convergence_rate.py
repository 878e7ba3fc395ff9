"""Mu & Klabjan: the convergence rate of plain LoRA gradient descent.

Statement (as summarised in ``papers/mu-klabjan-lora-gd-convergence-rate.md``). For LoRA
gradient descent with their step-size rule, the best gradient seen so far satisfies
    min_{t ≤ T} ‖∇_t‖² = O(1 / log T)   in general (no bounded-norm or smoothness assumption),
    min_{t ≤ T} ‖∇_t‖² = O(1 / T)       when the adapter norms stay bounded.
Both are UPPER bounds with unknown constants: a faster decay is consistent with them; only a
decay persistently slower than the stated rate speaks against them, and no finite run proves
an O(·) statement. The quantities below describe a measured curve; they prove nothing alone.

Shapes: ``T`` (k,) iteration counts ≥ 1 (≥ 2 for the 1/log T rate), increasing;
``grad_sq`` (k,) or ``min_grad_sq`` (k,) positive.
"""
from __future__ import annotations

import numpy as np

#: the two reference rates of the paper
RATES = ("1/T", "1/logT")


def running_min(grad_sq: np.ndarray) -> np.ndarray:
    """min_{t ≤ T} ‖∇_t‖² for T = 1, …, len(grad_sq), shape (k,)."""
    return np.minimum.accumulate(np.asarray(grad_sq, dtype=float))


def reference_rate(T: np.ndarray, rate: str) -> np.ndarray:
    """1/T or 1/log T at the iteration counts T, shape (k,)."""
    T = np.asarray(T, dtype=float)
    if rate == "1/T":
        return 1.0 / T
    if rate == "1/logT":
        if np.any(T <= 1):
            raise ValueError("the 1/log T rate needs T ≥ 2")
        return 1.0 / np.log(T)
    raise ValueError(f"unknown rate {rate!r}: expected one of {RATES}")


def _log_positive(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    if np.any(y <= 0):
        raise ValueError("squared gradient norms must be > 0 for a log-log fit")
    return np.log(y)


def fit_rate_constant(T: np.ndarray, min_grad_sq: np.ndarray, rate: str) -> float:
    """c minimising Σ (log y − log(c · rate(T)))²: c = exp(mean(log y − log rate(T)))."""
    return float(np.exp(np.mean(_log_positive(min_grad_sq) - np.log(reference_rate(T, rate)))))


def log_fit_residual(T: np.ndarray, min_grad_sq: np.ndarray, rate: str) -> float:
    """Root-mean-square of log y − log(c · rate(T)) at the fitted c (smaller = closer in shape)."""
    resid = _log_positive(min_grad_sq) - np.log(fit_rate_constant(T, min_grad_sq, rate)
                                                 * reference_rate(T, rate))
    return float(np.sqrt(np.mean(resid ** 2)))


def empirical_rate_exponent(T: np.ndarray, min_grad_sq: np.ndarray) -> float:
    """Least-squares slope of log(min_{t ≤ T} ‖∇_t‖²) against log T (−1 for an exact 1/T curve)."""
    logT = np.log(np.asarray(T, dtype=float))
    if logT.size < 2 or np.ptp(logT) == 0:
        raise ValueError("need at least two distinct iteration counts")
    return float(np.polyfit(logT, _log_positive(min_grad_sq), 1)[0])
