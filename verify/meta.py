"""Provenance recorded in every report: seeds, package and solver versions, device, git revision."""
from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path

PACKAGES = ("numpy", "scipy", "cvxpy", "scs", "clarabel", "torch", "transformers", "safetensors",
            "matplotlib", "hypothesis", "lora-ntk-verify")


def git_revision(root: Path | None = None) -> str:
    """``git rev-parse HEAD`` plus ``-dirty`` when the tree has changes; "unknown" outside git."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_description(device: str) -> str:
    """The hardware behind the device choice (``verify.device.describe``; torch is imported on first use)."""
    from verify.device import describe

    return describe(device)


def collect(seed: int, profile: str, device: str) -> dict:
    return {"seed": seed, "profile": profile, "device": device_description(device),
            "git_revision": git_revision(), "versions": versions(),
            "command_line": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
            "platform": platform.platform()}
