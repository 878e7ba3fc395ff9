"""Shared fixtures, the hypothesis profiles and the ``gpu`` marker.

Profiles: ``ci`` (default: few examples, derandomized, no deadline) and ``thorough`` (many examples),
chosen with ``--hypothesis-profile thorough`` or ``HYPOTHESIS_PROFILE=thorough``.
Tests marked ``gpu`` need CUDA and are skipped where ``torch.cuda.is_available()`` is False.
Instances and hypothesis strategies: ``tests/strategies.py``.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=200, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator per test."""
    return np.random.default_rng(20240211)


def pytest_collection_modifyitems(config, items):
    """Skip the tests marked ``gpu`` on a machine without CUDA (with the reason in the report)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="gpu: needs CUDA, torch.cuda.is_available() is False")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)
