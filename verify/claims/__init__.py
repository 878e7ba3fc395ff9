"""The paper's claims as checks with negative controls. ``all_claims()`` lists them in report order."""
from __future__ import annotations

import importlib

from verify.claims.base import ClaimSpec

#: claim modules under verify.claims, each defining CLAIMS: list[ClaimSpec]
MODULES = ["lemma_2_2", "low_rank", "landscape_claims", "threshold_claims", "generalization_claims", "section_6",
           "mu_klabjan", "mu_klabjan_rule", "kim_claims", "kim_fails_loudly", "kim_lemma_1", "entk_claims", "entk_sdp",
           "actual_claims",
           "entk_all_layers",
           "entk_kim_claims"]


def all_claims() -> list[ClaimSpec]:
    specs: list[ClaimSpec] = []
    for name in MODULES:
        specs += importlib.import_module(f"verify.claims.{name}").CLAIMS
    ids = [s.id for s in specs]
    assert len(ids) == len(set(ids)), f"duplicate claim ids: {ids}"
    return specs
