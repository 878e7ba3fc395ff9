"""The batched iteration of the Burer–Monteiro solver: every start moves at once, one trial point per
start and iteration (Q of shape (S, m + n, r); per-start scalars are (S,) tensors).

  ``_GradientDescent``    Q ← Q − η ∇F_P(Q) with a fixed step per start;
  ``_LineSearchDescent``  the nonmonotone Armijo line search of Zhang & Hager (SIAM J. Optim. 14, 2004)
                          along the direction of a rule: ``_BarzilaiBorweinRule`` ("bb") or ``_LBFGSRule``
                          ("lbfgs"); it cannot diverge.
``optimize`` runs one of them until every start passes its stopping test, fails or stalls.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from verify.solvers.bm.problem import Evaluation, TorchLoRAProblem
from verify.tolerances import CURVATURE_RTOL

#: nonmonotone Armijo line search of "bb" and "lbfgs": sufficient-decrease constant, averaging weight
#: of the reference value C_k, backtracking factor, and the range of admissible trial steps
ARMIJO_SIGMA = 1e-4
NONMONOTONE_ETA = 0.85
BACKTRACK = 0.5
STEP_RANGE = (1e-12, 1e12)
#: BB steps remembered by the ABBmin rule; (s, y) pairs kept by L-BFGS (a pair enters L-BFGS only if
#: ⟨s,y⟩ > CURVATURE_RTOL · ‖s‖‖y‖, verify.tolerances)
BB_MEMORY = 5
LBFGS_MEMORY = 10
#: roundoff slack of the Armijo test, in units of machine epsilon times max(1, |C_k|): near the optimum
#: the decrease σ α ‖∇F‖² falls below the rounding error of F itself
ARMIJO_SLACK_EPS = 100.0


def _norms(X: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of every start, (S, d, r) → (S,)."""
    return torch.linalg.vector_norm(X.flatten(1), dim=1)


def _bcast(mask: torch.Tensor) -> torch.Tensor:
    return mask[:, None, None]


class _State:
    """The iterate of every start: Q (S, d, r), its evaluation, gradient, norms and per-start flags."""

    def __init__(self, prob: TorchLoRAProblem, Q: torch.Tensor, tol: float):
        self.tol = tol
        self.Q, self.ev = Q, prob.evaluate(Q)
        self.g = prob.gradient(Q, self.ev)
        self.gnorm, self.qnorm = _norms(self.g), _norms(Q)
        S = Q.shape[0]
        self.iterations = torch.zeros(S, dtype=torch.int64, device=Q.device)
        self.evaluations = torch.zeros_like(self.iterations)
        self.stalled = torch.zeros(S, dtype=torch.bool, device=Q.device)
        self.failed = torch.zeros_like(self.stalled)
        self.converged = torch.zeros_like(self.stalled)
        self._check()

    @property
    def F(self) -> torch.Tensor:
        return self.ev.F

    def active(self) -> torch.Tensor:
        return ~(self.converged | self.failed | self.stalled)

    def accept(self, mask: torch.Tensor, Q: torch.Tensor, ev: Evaluation, g: torch.Tensor) -> None:
        """Move the starts in ``mask`` to Q with evaluation ``ev`` and gradient ``g``."""
        b = _bcast(mask)
        self.Q, self.g = torch.where(b, Q, self.Q), torch.where(b, g, self.g)
        PQ = None if ev.PQ is None else torch.where(b, ev.PQ, self.ev.PQ)
        self.ev = Evaluation(torch.where(mask, ev.F, self.ev.F), torch.where(b, ev.yhat, self.ev.yhat), PQ)
        self.gnorm, self.qnorm = _norms(self.g), _norms(self.Q)
        self.iterations += mask
        self._check()

    def _check(self) -> None:
        """Per-start stopping test ‖∇F_P‖_F ≤ tol · max(1, ‖Q‖_F); non-finite values mark a failure."""
        self.failed |= ~(torch.isfinite(self.F) & torch.isfinite(self.gnorm))
        self.converged |= ~self.failed & (self.gnorm <= self.tol * torch.clamp(self.qnorm, min=1.0))


class _GradientDescent:
    """Q ← Q − η ∇F_P(Q) with a fixed step η per start (S,)."""

    def __init__(self, lr: torch.Tensor):
        self.lr = lr

    def __call__(self, prob: TorchLoRAProblem, st: _State, active: torch.Tensor) -> None:
        Q = st.Q - _bcast(torch.where(active, self.lr, 0.0)) * st.g
        ev = prob.evaluate(Q)
        st.accept(active, Q, ev, prob.gradient(Q, ev))


def _inner(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """⟨X, Y⟩_F of every start, (S,) (one fused kernel)."""
    return torch.linalg.vecdot(X.flatten(1), Y.flatten(1))


class _BarzilaiBorweinRule:
    """Direction −∇F_P with a BB step per start: the adaptive ABBmin rule (Bonettini, Zanella & Zanni,
    Inverse Problems 25, 2009) takes α¹ = ⟨s,s⟩/⟨s,y⟩ unless α²/α¹ < τ, α² = ⟨s,y⟩/⟨y,y⟩, in which case it
    takes the smallest α² of the last BB_MEMORY steps; τ shrinks (×0.9) or grows (×1.1) accordingly.
    ‖s‖/‖y‖ replaces the step when ⟨s,y⟩ ≤ 0 (negative curvature)."""

    def __init__(self, st: _State):
        S = st.Q.shape[0]
        self.recent = torch.full((S, BB_MEMORY), float("inf"), dtype=st.Q.dtype, device=st.Q.device)
        self.tau = torch.full((S,), 0.5, dtype=st.Q.dtype, device=st.Q.device)

    def update(self, ok: torch.Tensor, s: torch.Tensor, y: torch.Tensor, st: _State):
        """After the steps s = Q⁺ − Q with y = ∇F(Q⁺) − ∇F(Q) accepted where ``ok``: (d, t) for every start."""
        ss, sy, yy = _inner(s, s), _inner(s, y), _inner(y, y)
        tiny = torch.finfo(s.dtype).tiny
        long_step = ss / torch.clamp(sy, min=tiny)
        short_step = torch.where(sy > 0, sy / torch.clamp(yy, min=tiny), float("inf"))
        recent = torch.cat([self.recent[:, 1:], short_step[:, None]], dim=1)
        use_short = short_step < self.tau * long_step
        alpha = torch.where(use_short, recent.min(dim=1).values, long_step)
        alpha = torch.where(sy > 0, alpha, torch.sqrt(ss / torch.clamp(yy, min=tiny)))
        self.recent = torch.where(ok[:, None], recent, self.recent)
        self.tau = torch.where(ok, torch.where(use_short, 0.9 * self.tau, 1.1 * self.tau), self.tau)
        return -st.g, alpha.clamp(*STEP_RANGE)


class _LBFGSRule:
    """Direction −H ∇F_P of L-BFGS over the last LBFGS_MEMORY pairs (s, y), batched, H in the compact
    representation of Byrd, Nocedal & Schnabel (Math. Prog. 63, 1994, Thm 2.2):
      H g = γ g + S p + γ Y q,   q = −R⁻¹ Sᵀg,   p = R⁻ᵀ((D + γ YᵀY) R⁻¹ Sᵀg − γ Yᵀg),
    S, Y (D, M) the pairs as columns, R the upper triangle of SᵀY, D its diagonal — the same H as the two-loop
    recursion (Nocedal & Wright, Alg. 7.4) in a fixed number of batched matrix products (no loop over pairs).
    A start's pair is stored as zeros when rejected (step not accepted or ⟨s,y⟩ ≤ CURVATURE_RTOL‖s‖‖y‖); its
    diagonal entry of R is then set to 1, which leaves it inert. H₀ = γ I with γ = ⟨s,y⟩/⟨y,y⟩ of the start's last
    curvature pair; unit trial step; −γ ∇F_P when H fails to give a descent direction."""

    def __init__(self, gamma: torch.Tensor):
        self.gamma = gamma
        self.count = 0            # pairs pushed so far; slot k % LBFGS_MEMORY holds the k-th
        self.S_buf = self.Y_buf = self.inert = None

    def push(self, s: torch.Tensor, y: torch.Tensor, curvature: torch.Tensor) -> None:
        """Store the pair (s, y) (S, D) of every start (zeros where not ``curvature``) in the ring buffers
        (S, LBFGS_MEMORY, D), overwriting the oldest: no buffer is reallocated after the first pair (restacking
        ten (S, D) pairs every step took a third of an all-layer solve's time and its working set)."""
        if self.S_buf is None:
            S, D = s.shape
            self.S_buf = s.new_zeros(S, LBFGS_MEMORY, D)
            self.Y_buf = s.new_zeros(S, LBFGS_MEMORY, D)
            self.inert = torch.ones(S, LBFGS_MEMORY, dtype=torch.bool, device=s.device)
        slot = self.count % LBFGS_MEMORY
        keep = curvature[:, None]
        self.S_buf[:, slot] = torch.where(keep, s, 0.0)
        self.Y_buf[:, slot] = torch.where(keep, y, 0.0)
        self.inert[:, slot] = ~curvature
        self.count += 1

    def update(self, ok: torch.Tensor, s: torch.Tensor, y: torch.Tensor, st: _State):
        """After the steps s = Q⁺ − Q with y = ∇F(Q⁺) − ∇F(Q) accepted where ``ok``: (d, t) for every start."""
        sy, yy = _inner(s, y), _inner(y, y)
        curvature = ok & (sy > CURVATURE_RTOL * torch.sqrt(_inner(s, s) * yy))
        self.gamma = torch.where(curvature, sy / torch.where(curvature, yy, 1.0), self.gamma)
        self.push(s.flatten(1), y.flatten(1), curvature)
        d = -self._apply_inverse_hessian(st.g)
        descent = _inner(d, st.g) < 0
        d = torch.where(_bcast(descent), d, -_bcast(self.gamma) * st.g)
        return d, torch.ones_like(sy)

    def _apply_inverse_hessian(self, g: torch.Tensor) -> torch.Tensor:
        """H g for the L-BFGS inverse-Hessian approximation H, g (S, d, r). The buffers are in slot order; the
        compact form needs the pairs in the order they came (R is a triangle of SᵀY), so only the small
        (M, ·) products are permuted (``order``: slots oldest first; empty slots are inert zeros)."""
        order = torch.arange(self.count, self.count + LBFGS_MEMORY, device=g.device) % LBFGS_MEMORY
        Sm, Ym = self.S_buf, self.Y_buf                                      # (S, M, D) in slot order
        inert = self.inert[:, order]                                         # (S, M) oldest first
        gamma = self.gamma[:, None, None]
        gf = g.flatten(1)[:, :, None]                                        # (S, D, 1)
        SY = (Sm @ Ym.transpose(1, 2))[:, order][:, :, order]               # (S, M, M) oldest first
        YY = (Ym @ Ym.transpose(1, 2))[:, order][:, :, order]
        R = torch.triu(SY) + torch.diag_embed(inert.to(SY.dtype))
        Ria = torch.linalg.solve_triangular(R, (Sm @ gf)[:, order], upper=True)  # R⁻¹ Sᵀg
        inner = torch.diag_embed(torch.diagonal(SY, dim1=1, dim2=2)) + gamma * YY
        p = torch.linalg.solve_triangular(R.transpose(1, 2), inner @ Ria - gamma * (Ym @ gf)[:, order], upper=False)
        slots = torch.empty_like(order)
        slots[order] = torch.arange(LBFGS_MEMORY, device=g.device)        # position of each slot in ``order``
        Hg = gamma * gf + Sm.transpose(1, 2) @ p[:, slots] - gamma * (Ym.transpose(1, 2) @ Ria[:, slots])
        return Hg.reshape(g.shape)


class _LineSearchDescent:
    """Q ← Q + t d with the nonmonotone Armijo test F(Q + t d) ≤ C + σ t ⟨∇F, d⟩ (+ roundoff slack) of
    Zhang & Hager, C the weighted average of past values; a rejected trial halves t. The rule (BB or
    L-BFGS) gives the next d and t after every accepted step. A start whose trial step no longer
    changes Q at working precision is marked stalled. One call = one trial evaluation per start."""

    def __init__(self, st: _State, method: str):
        first_step = (st.qnorm / torch.clamp(st.gnorm, min=torch.finfo(st.Q.dtype).tiny)).clamp(*STEP_RANGE)
        self.rule = _BarzilaiBorweinRule(st) if method == "bb" else _LBFGSRule(first_step)
        self.d, self.t = -st.g, first_step
        self.C, self.weight = st.F.clone(), torch.ones_like(st.F)
        self.eps = torch.finfo(st.Q.dtype).eps

    def __call__(self, prob: TorchLoRAProblem, st: _State, active: torch.Tensor) -> None:
        step = torch.where(active, self.t, 0.0)
        Q = st.Q + _bcast(step) * self.d
        ev = prob.evaluate(Q)
        slack = ARMIJO_SLACK_EPS * self.eps * torch.clamp(self.C.abs(), min=1.0)
        sufficient = ev.F <= self.C + ARMIJO_SIGMA * step * _inner(st.g, self.d) + slack
        ok = active & torch.isfinite(ev.F) & sufficient
        tiny_step = step * _norms(self.d) <= self.eps * torch.clamp(st.qnorm, min=1.0)
        st.stalled |= active & ~ok & tiny_step
        self.t = torch.where(active & ~ok, self.t * BACKTRACK, self.t)
        if bool(ok.any()):
            g = prob.gradient(Q, ev)
            s, y = Q - st.Q, g - st.g
            weight = NONMONOTONE_ETA * self.weight + 1.0
            C = (NONMONOTONE_ETA * self.weight * self.C + ev.F) / weight
            self.C, self.weight = torch.where(ok, C, self.C), torch.where(ok, weight, self.weight)
            st.accept(ok, Q, ev, g)
            d, t = self.rule.update(ok, s, y, st)
            self.d, self.t = torch.where(_bcast(ok), d, self.d), torch.where(ok, t, self.t)



@dataclass
class Trace:
    """Everything one batched run hands back, already on the CPU."""

    Q: np.ndarray            # (S, d, r) float64
    gnorm: np.ndarray        # (S,)
    iterations: np.ndarray   # (S,) accepted steps
    evaluations: np.ndarray  # (S,) trial points evaluated
    converged: np.ndarray    # (S,) bool
    failed: np.ndarray
    stalled: np.ndarray
    history: list[list[float]]       # F_P at the recorded iterations, per start
    grad_history: list[list[float]]  # ‖∇F_P‖_F at the same iterations
    norm_history: list[list[float]]  # ‖Q‖_F at the same iterations
    seconds: float
    timed_out: bool


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def optimize(prob: TorchLoRAProblem, Q: torch.Tensor, method: str, lr, tol: float, max_iter: int,
             time_limit: float | None, record_every: int, t0: float) -> Trace:
    """Iterate all starts together until each one passes its stopping test, fails or stalls, or until
    max_iter iterations or time_limit seconds (measured from ``t0``)."""
    st = _State(prob, Q, tol)
    step = _GradientDescent(lr) if method == "gd" else _LineSearchDescent(st, method)
    rec = [torch.stack([st.F, st.gnorm, st.qnorm])]
    mask_rec = [torch.ones_like(st.converged)]
    timed_out = False
    for _ in range(max_iter):
        active = st.active()
        if not bool(active.any()):
            break
        if time_limit is not None and time.perf_counter() - t0 > time_limit:
            timed_out = True
            break
        before = st.iterations.clone()
        step(prob, st, active)
        st.evaluations += active
        rec.append(torch.stack([st.F, st.gnorm, st.qnorm]))
        mask_rec.append((st.iterations > before) & (st.iterations % record_every == 0))
    _synchronize(Q.device)
    seconds = time.perf_counter() - t0
    rec_h, mask_h = torch.stack(rec).cpu().double().numpy(), torch.stack(mask_rec).cpu().numpy()  # (T, 3, S), (T, S)
    series = [[rec_h[mask_h[:, s], k, s].tolist() for s in range(Q.shape[0])] for k in range(3)]
    cpu = lambda t: t.cpu().numpy()  # noqa: E731
    return Trace(Q=st.Q.cpu().double().numpy(), gnorm=cpu(st.gnorm.double()), iterations=cpu(st.iterations),
                 evaluations=cpu(st.evaluations), converged=cpu(st.converged), failed=cpu(st.failed),
                 stalled=cpu(st.stalled), history=series[0], grad_history=series[1], norm_history=series[2],
                 seconds=seconds, timed_out=timed_out)
