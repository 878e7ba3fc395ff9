"""argparse ``type=`` validators for numeric options: a bad value is a clear error (exit code 2)
naming the option — ``argument --starts: must be an integer ≥ 1, got '0'`` — never a traceback."""
from __future__ import annotations

import argparse
import math


def _number(kind, text: str, what: str):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer ≥ 1 (ranks, numbers of starts, iteration caps)."""
    value = _number(int, text, "an integer ≥ 1")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 1, got {text!r}")
    return value


def nonnegative_int(text: str) -> int:
    """An integer ≥ 0 (seeds)."""
    value = _number(int, text, "an integer ≥ 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer ≥ 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite real > 0 (tolerances)."""
    value = _number(float, text, "a finite number > 0")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite real ≥ 0 (λ, perturbation sizes)."""
    value = _number(float, text, "a finite number ≥ 0")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0, got {text!r}")
    return value
