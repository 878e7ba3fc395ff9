"""The one place where a device choice "auto" / "cpu" / "cuda" becomes a device (CLI, solvers, metadata)."""
from __future__ import annotations

import os
import platform

import torch

#: the accepted device choices (CLI ``--device``)
DEVICES = ("auto", "cpu", "cuda")
#: cuBLAS workspace setting that makes its matrix products deterministic on CUDA ≥ 10.2; without it
#: ``torch.use_deterministic_algorithms(True)`` (``actual_training.deterministic``) raises on the first CUDA product
#: (torch's "Reproducibility" notes). Set at import, before any CUDA work of this package; a user's value is kept.
CUBLAS_WORKSPACE = ":4096:8"
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)


def resolve(name: str = "auto") -> str:
    """"cpu" or "cuda" for the choice ``name``: "auto" is cuda when available, else cpu.

    Raises ValueError for an unknown name, and for "cuda" on a machine without CUDA.
    """
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available (torch.cuda.is_available() "
                             "is False); use device='cpu' or 'auto'")
        return "cuda"
    if name == "cpu":
        return "cpu"
    raise ValueError(f"unknown device {name!r}: expected one of {', '.join(map(repr, DEVICES))}")


def device_for(name: str = "auto") -> torch.device:
    """The torch device for the choice ``name`` (see ``resolve``)."""
    return torch.device(resolve(name))


def describe(name: str = "auto") -> str:
    """A line naming the hardware behind the choice ``name``: the GPU's name, or the CPU and torch's threads."""
    if resolve(name) == "cuda":
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
