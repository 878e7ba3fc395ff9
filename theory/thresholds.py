"""Rank thresholds of Theorems 3.1 and 4.1 (exact integer arithmetic).

- Theorem 3.1 (low-rank existence): (P) has a global minimizer of rank r with r(r+1)/2 ≤ KN.
- Theorem 4.1 (no spurious SOSP): LoRA rank r with r(r+1)/2 > KN has, for almost every small
  P ⪰ 0, only global SOSPs.
"""
from __future__ import annotations

import math


def _check_kn(kn: int) -> int:
    if int(kn) != kn or kn < 1:
        raise ValueError(f"KN must be a positive integer, got {kn!r}")
    return int(kn)


def triangular(r: int) -> int:
    """r(r+1)/2: the dimension of symmetric r×r matrices."""
    return r * (r + 1) // 2


def existence_rank_bound(kn: int) -> int:
    """Largest r with r(r+1)/2 ≤ KN: Theorem 3.1 guarantees a global minimizer of rank ≤ this."""
    kn = _check_kn(kn)
    r = (math.isqrt(8 * kn + 1) - 1) // 2
    assert triangular(r) <= kn < triangular(r + 1)
    return r


def no_spurious_rank(kn: int) -> int:
    """Smallest LoRA rank r with r(r+1)/2 > KN (Theorem 4.1). For KN = 64 this is 11."""
    return existence_rank_bound(kn) + 1


def theorem_4_1_applies(rank: int, kn: int) -> bool:
    """Whether r(r+1)/2 > KN."""
    return triangular(rank) > _check_kn(kn)
