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


# engine
#: certify: certified iff the gap bound ≤ GAP_RTOL · max(1, |objective|)
GAP_RTOL = 1e-6
#: Instance: P is symmetric iff max |P − Pᵀ| ≤ SYMMETRY_RTOL · max |P| (float64)
SYMMETRY_RTOL = 1e-10
#: Instance: P is PSD iff λ_min(P) ≥ −PSD_RTOL · max |P| (float64)
PSD_RTOL = 1e-10
#: bm default stopping test ‖∇F_P‖_F ≤ GRAD_RTOL · max(1, ‖Q‖_F), keyed by dtype. Measured on gaussian
#: instances (m = n ∈ {64, 256, 768}, λ ∈ {1e-3, 1e-2, 1e-1}, both losses): 1e-8 already gives certified
#: gap bounds ≤ 4e-7, 1e-9 gives ≤ 6e-8 (a 15× margin below GAP_RTOL) for ~20% more iterations.
#: float32 cannot resolve gaps below ~1e-6: 1e-5 stops early.
GRAD_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-5}
#: bm L-BFGS: a pair (s, y) enters the memory only if ⟨s,y⟩ > CURVATURE_RTOL · ‖s‖‖y‖
CURVATURE_RTOL = 1e-10


# sosp
# Second-order test (verify.sosp): every tolerance is relative to a scale of the problem at the point.
#: gradient test ‖∇F_P(Q)‖_F ≤ SOSP_GRAD_RTOL · max(1, ‖Q‖_F) · max(1, |F_P(Q)|)
SOSP_GRAD_RTOL = 1e-6
#: curvature test λ_min(∇²F_P(Q)) ≥ −SOSP_HESS_RTOL · ‖∇²F_P(Q)‖ (‖·‖ estimated by max |eigenvalue|)
SOSP_HESS_RTOL = 1e-6
#: strict modulo rotations: λ_min of ∇²F_P restricted to the complement of the rotation tangent
#: > SOSP_STRICT_RTOL · ‖∇²F_P(Q)‖
SOSP_STRICT_RTOL = 1e-6
#: Q counts as rank deficient (a larger symmetry orbit, hence degenerate) when σ_r(Q) ≤ this · σ_1(Q)
SOSP_RANK_RTOL = 1e-6
#: iterative eigen-solver: residual tolerance ‖Hw − ρw‖ ≤ SOSP_EIG_RTOL · ‖∇²F_P‖ (lobpcg and eigsh)
SOSP_EIG_RTOL = 1e-9
#: an iterative eigenpair counts as converged when ‖Hw − ρw‖ ≤ SOSP_RESIDUAL_RTOL · ‖∇²F_P‖
SOSP_RESIDUAL_RTOL = 1e-8
#: rounding allowance between two float64 computations of one Hessian eigenvalue, relative to ‖∇²F_P‖
SOSP_ROUNDING_RTOL = 1e-9


# claims
# Tolerances that decide the verdicts of ``verify.claims`` (the theorems' own parameters, such as ε and
# η of Theorem 5.1, stay beside their claims).

#: Lemma 2.2: relative error of ‖δ‖_* = ½(‖u‖² + ‖v‖²) accepted as equality
LEMMA_2_2_RTOL = 100 * EXACT_RTOL[np.dtype(np.float64)]
#: Theorem 3.1 step 2: |⟨(λ/2)I + P, QWQᵀ⟩| relative residual accepted as zero
LINEAR_TERM_TOL = 1e-8
#: λ = 0 convex case: ‖∇L̂(δ)‖_F at or below this is first-order optimality (float64)
KKT_TOL = 1e-10
#: Figure 1 toy examples: a value ≤ TOY_VALUE_TOL above the global minimum is a global minimum; local minima
#: closer than TOY_CLUSTER_RADIUS are one; the rank-1 infimum of (c) must exceed the minimum by TOY_GAP_TOL;
#: the rank-1 minima of (a) form a curve when more than TOY_CURVE_MIN_POINTS distinct ones are found
TOY_VALUE_TOL = 1e-9
TOY_CLUSTER_RADIUS = 1e-3
TOY_GAP_TOL = 1e-6
TOY_CURVE_MIN_POINTS = 10
#: Theorem 4.1's proof step: σ_r(Q)/σ_1(Q) at or below this counts as rank deficient
RANK_DEFICIENT_RTOL = 1e-3
#: saddle escape, in units of the certificate's GAP_RTOL: a relative decrease below F(0) of at most
#: SADDLE_AT_RTOL·GAP_RTOL is an end at the saddle, of at least SADDLE_ESCAPE_RTOL·GAP_RTOL an escape
SADDLE_AT_RTOL, SADDLE_ESCAPE_RTOL = 1.0, 10.0
#: Section 6: relative distances to the certified optimum at which iteration counts are read; the first
#: (a training-loss plot's resolution) decides the verdict, the second is reported
RANK_SPEED_RTOLS = (1e-3, 1e-6)
#: Section 6 measured: relative tolerances (of max(1, |F*|)) at which iteration counts are read, per profile
S6_RTOLS_QUICK = (1e-1, 1e-3, 1e-6)
S6_RTOLS_FULL = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
#: Section 6: −Spearman ρ(rank, iterations) above this holds, below its negative is violated
RANK_SPEED_RHO_TOL = 0.5
#: Mu & Klabjan: min_T (1 − T^p·min ‖∇‖²/C) above this holds, below its negative is violated
RATE_MARGIN_TOL = 1e-9
#: Mu & Klabjan near miss: the step η = 2(1 + MK_STEP_OVERSHOOT)/L, just past the descent lemma's η < 2/L
#: (η = 2/L still satisfies the bound on the claim's instance; 2.02/L breaks it)
MK_STEP_OVERSHOOT = 0.01
#: significance level of the one-sided binomial tests (Theorem 5.1)
BINOMIAL_ALPHA = 0.05
#: Lemma C.4: the Monte-Carlo mean must clear the bound by this many standard errors
RADEMACHER_SE = 3.0
#: NTK regime (Table 4's criterion): the actual model's accuracy at W₀ + δ* agrees with the linearized one when
#: within NTK_ACC_HOLD_SE binomial standard errors, disagrees beyond NTK_ACC_REFUTE_SE (SE from the linearized
#: accuracy with add-one smoothing, so that 100% accuracy has a nonzero SE)
NTK_ACC_HOLD_SE, NTK_ACC_REFUTE_SE = 1.0, 3.0
#: eNTK certificate near miss: relative noise on Q* just past the certificate's resolution (one probe draw on
#: MiniLM seed 0: gap bound 8e-8 at 1e-4, 8.6e-7 at 1e-3 (passes), 1.3e-6 at 1.5e-3 (refuted); GAP_RTOL = 1e-6)
NTK_CERT_NOISE = 1.5e-3
#: eNTK Theorem 4.1: ‖P‖_F of the full-rank P ⪰ 0; ⟨P, Q*Q*ᵀ⟩ ≈ 1.7e-4, ~170× the gap tolerance (1e-6 was 0.2×)
NTK_P_NORM = 1e-3
#: eNTK Theorem 4.1 near miss: iterations of a run that gets close but is not certified (MiniLM seed 0: gap 1.6e-5
#: after 60, 5.4e-6 after 80, certified after 100)
NTK_NEAR_TRUNCATED_STEPS = 75
#: eNTK NTK-regime near miss: scales s of the actual update s·δ* compared with the linearized model at δ*
NTK_SHRINK_SCALES = (0.75, 0.5, 0.25, 0.125, 0.0)
#: eNTK Lemma C.4 near miss: the bound scaled by this fraction of the largest factor the Monte-Carlo check resolves
NTK_C4_RESOLVED_FRACTION = 0.99
