"""Named numerical tolerances, keyed by dtype where the dtype matters (never magic numbers in tests)."""
from __future__ import annotations

import numpy as np

#: relative agreement expected between two exact float computations of the same quantity
EXACT_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
#: relative agreement expected between two optimisation solvers that both reached a certified optimum
SOLVER_AGREEMENT_RTOL = 1e-5
#: cvxpy's own accuracy: agreement of SCS / Clarabel optima with a certified optimum
CVXPY_AGREEMENT_RTOL = 1e-3


def exact_rtol(dtype) -> float:
    """Relative tolerance for exact formulas evaluated in ``dtype``."""
    return EXACT_RTOL[np.dtype(dtype)]
