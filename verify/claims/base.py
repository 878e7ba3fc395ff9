"""The vocabulary of claims: a claim's spec, its run context, verdicts from margins, and controls.

Every claim returns a ``CheckResult`` (verdict, signed margin: > 0 means the claim holds with that
slack) and a list of ``ControlResult``: planted false variants that the same check must catch.
"""
from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from verify.results import CheckResult, Verdict


@dataclass
class Context:
    """Run settings shared by all claims. ``rng(key)`` is a generator derived from (seed, key) only."""

    profile: str = "quick"
    seed: int = 0
    device: str = "auto"
    cache_dir: Path | None = None

    @property
    def quick(self) -> bool:
        return self.profile == "quick"

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, zlib.crc32(key.encode())]))


@dataclass
class ControlResult:
    """A planted false claim (or wrong answer) and whether the check caught it (verdict VIOLATED)."""

    id: str
    claim: str
    description: str
    caught: bool
    verdict: Verdict
    margin: float


@dataclass
class ClaimOutcome:
    check: CheckResult
    controls: list[ControlResult] = field(default_factory=list)
    #: plain-JSON data for the claim's figures, drawn by verify.figures
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimSpec:
    """A claim: ``run(ctx)`` checks it and its negative controls. ``section`` groups the report."""

    id: str
    statement: str
    reference: str
    run: Callable[[Context], ClaimOutcome]
    section: str = "Jang, Lee, Ryu (ICML 2024) on synthetic instances"
    #: the report profiles that run this claim (``--only`` runs it in any profile)
    profiles: tuple[str, ...] = ("quick", "full")


def verdict_equality(error: float, tol: float, refute_factor: float = 100.0) -> Verdict:
    """Equality claims: HOLDS if error ≤ tol, VIOLATED if error > refute_factor·tol, else INCONCLUSIVE."""
    if not np.isfinite(error):
        return Verdict.INCONCLUSIVE
    if error <= tol:
        return Verdict.HOLDS
    return Verdict.VIOLATED if error > refute_factor * tol else Verdict.INCONCLUSIVE


def verdict_from_margin(margin: float, tol: float, conclusive: bool = True) -> Verdict:
    """HOLDS if margin > tol, VIOLATED if margin < −tol, else (or if not conclusive) INCONCLUSIVE."""
    if not conclusive or not np.isfinite(margin):
        return Verdict.INCONCLUSIVE
    if margin > tol:
        return Verdict.HOLDS
    if margin < -tol:
        return Verdict.VIOLATED
    return Verdict.INCONCLUSIVE


def combine(verdicts: list[Verdict]) -> Verdict:
    """VIOLATED if any is, else INCONCLUSIVE if any is, else HOLDS (empty → INCONCLUSIVE)."""
    if not verdicts:
        return Verdict.INCONCLUSIVE
    if Verdict.VIOLATED in verdicts:
        return Verdict.VIOLATED
    if Verdict.INCONCLUSIVE in verdicts:
        return Verdict.INCONCLUSIVE
    return Verdict.HOLDS


def control(id: str, claim: str, description: str, verdict: Verdict, margin: float) -> ControlResult:
    """A control is caught exactly when its check says VIOLATED."""
    return ControlResult(id, claim, description, verdict == Verdict.VIOLATED, verdict, float(margin))


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self):
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
