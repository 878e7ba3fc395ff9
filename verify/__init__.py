"""Numerical verification of LoRA-in-the-NTK-regime theory: instances, solvers, certificates,
claims, report and command line. The mathematics itself lives in the ``theory`` package."""
