"""Burer–Monteiro / LoRA solver for F_P in torch, all starts batched (Thm 4.1, Lemma 2.2; MATH.md §1–2).

Minimizes F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ over Q = [u; v] of shape (m + n, r).
By Lemma 2.2, F_0(u, v) ≥ L̂_λ(u vᵀ) with equality for balanced factors, and by Theorem 4.1 every
second-order stationary point is global when r(r+1)/2 > KN. The returned points are *not* trusted
here: ``verify.certify.certify`` checks them in float64.

Batching: S starts are one tensor Q of shape (S, m + n, r) and share one copy of the sensing matrix
Gmat = G as (N·K, m·n). One iteration reads Gmat twice:
  A(δ) = δ.reshape(S, m·n) @ Gmatᵀ                      (S, N·K)    forward pass, gives F_P
  S(δ) = (V.reshape(S, N·K) @ Gmat).reshape(S, m, n)    (S, m, n)   adjoint pass, gives ∇F_P
and the gradient is the explicit ∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q (cheaper than autograd).

Methods:
  "gd"    plain LoRA gradient descent with a fixed step (the honest training curve);
  "bb"    Barzilai–Borwein steps, one scalar per start (adaptive ABBmin rule);
  "lbfgs" L-BFGS directions, batched over starts (default: 2–3× fewer passes over G than "bb"
          on the gaussian benchmarks, the fastest way to a certifiable optimum).
"bb" and "lbfgs" share the nonmonotone Armijo line search of Zhang & Hager (SIAM J. Optim. 14, 2004),
so they cannot diverge; one iteration of either evaluates one trial point per start.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from theory.linearized_model import nuclear_norm
from theory.losses import get_loss
from verify.instance import Instance, check_rank
from verify.results import SolveResult, SolveStatus

#: default relative stopping tolerance ‖∇F_P‖_F ≤ tol · max(1, ‖Q‖_F), keyed by dtype. Measured on
#: gaussian instances (m = n ∈ {64, 256, 768}, λ ∈ {1e-3, 1e-2, 1e-1}, both losses): 1e-8 already
#: gives certified gap bounds ≤ 4e-7, 1e-9 gives ≤ 6e-8 (a 15× margin below the certificate's
#: default 1e-6) for ~20% more iterations. float32 cannot resolve gaps below ~1e-6: 1e-5 stops early.
GRAD_RTOL = {torch.float64: 1e-9, torch.float32: 1e-5}
METHODS = ("gd", "bb", "lbfgs")
INITS = ("lora", "random")

#: nonmonotone Armijo line search of "bb" and "lbfgs": sufficient-decrease constant, averaging weight
#: of the reference value C_k, backtracking factor, and the range of admissible trial steps
ARMIJO_SIGMA = 1e-4
NONMONOTONE_ETA = 0.85
BACKTRACK = 0.5
STEP_RANGE = (1e-12, 1e12)
#: BB steps remembered by the ABBmin rule; (s, y) pairs kept by L-BFGS; a pair enters L-BFGS only if
#: ⟨s,y⟩ > CURVATURE_RTOL · ‖s‖‖y‖
BB_MEMORY = 5
LBFGS_MEMORY = 10
CURVATURE_RTOL = 1e-10
#: roundoff slack of the Armijo test, in units of machine epsilon times max(1, |C_k|): near the optimum
#: the decrease σ α ‖∇F‖² falls below the rounding error of F itself
ARMIJO_SLACK_EPS = 100.0


def device_for(name: str = "auto") -> torch.device:
    """The torch device called ``name``: "auto" (cuda if available, else cpu), "cpu" or "cuda"."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available (torch.cuda.is_available() "
                             "is False); use device='cpu' or 'auto'")
        return torch.device("cuda")
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {name!r}: expected 'auto', 'cpu' or 'cuda'")


def initial_factors(inst: Instance, rank: int, starts: int, init, rng: np.random.Generator | None,
                    scale: float | None = None) -> np.ndarray:
    """Initial LoRA factors Q0 = [u; v] for every start, float64 of shape (starts, m + n, rank).

    init:
      "lora"   — u (m, r) i.i.d. N(0, scale²) with scale = 1/√m by default (the Kaiming-like scale of
                 PEFT's LoRA "A" factor, fan-in m: each column of u has norm ≈ 1), v = 0, so δ = u vᵀ = 0
                 at the start as in LoRA fine-tuning;
      "random" — all of Q i.i.d. N(0, scale²) with scale = 1/√(m + n) (columns of norm ≈ 1);
      an array of shape (m + n, rank) (one start) or (S, m + n, rank) (S starts; ``starts`` must be
                 1 or S).
    "zero" is refused: Q = 0 is a stationary point (∇F_P(0) = M·0 = 0) that no method leaves.
    Random inits draw from ``rng`` only (a numpy Generator; global RNG state is never touched).
    """
    rank = check_rank(rank)
    if isinstance(starts, bool) or int(starts) != starts or starts < 1:
        raise ValueError(f"starts must be an integer ≥ 1, got {starts!r}")
    shape = (int(starts), inst.m + inst.n, rank)
    if isinstance(init, str):
        return _random_factors(inst, shape, init, rng, scale)
    Q0 = np.asarray(init, dtype=float)
    Q0 = Q0[None] if Q0.ndim == 2 else Q0
    if Q0.ndim != 3 or Q0.shape[1:] != shape[1:] or shape[0] not in (1, Q0.shape[0]):
        raise ValueError(f"init array must have shape (m + n, rank) = {shape[1:]} or (S, m + n, rank) with "
                         f"starts = 1 or S; got shape {np.shape(init)} with starts = {shape[0]}")
    if not np.all(np.isfinite(Q0)):
        raise ValueError("init array contains NaN or Inf values")
    if not np.all(np.any(Q0 != 0, axis=(1, 2))):
        raise ValueError("init array has an all-zero start: Q = 0 is a stationary point of F_P (∇F_P(0) = 0)")
    return Q0.copy()


def _random_factors(inst: Instance, shape: tuple[int, int, int], init: str, rng, scale) -> np.ndarray:
    if init == "zero":
        raise ValueError("init 'zero' is not allowed: Q = 0 is a stationary point of F_P (∇F_P(0) = M·0 = 0), "
                         "so no gradient method leaves it; use 'lora' (v = 0, u random) instead")
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}: expected one of {INITS} or an array of factors")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"init {init!r} draws random factors and needs rng, a numpy.random.Generator; got {rng!r}")
    m = inst.m
    if scale is None:
        scale = 1.0 / np.sqrt(m if init == "lora" else shape[1])
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"init scale must be a positive finite number, got {scale!r}")
    Q0 = np.zeros(shape)
    if init == "lora":
        Q0[:, :m] = scale * rng.standard_normal((shape[0], m, shape[2]))
    else:
        Q0[:] = scale * rng.standard_normal(shape)
    return Q0


# ---------------------------------------------------------------------------------------------
# the objective in torch


class Evaluation(NamedTuple):
    """F_P at a batch of points with the by-products the gradient reuses.

    F (S,) values; yhat (S, N, K) outputs f0 + A(u vᵀ); PQ (S, m + n, r) P Q, or None when P = 0.
    """

    F: torch.Tensor
    yhat: torch.Tensor
    PQ: torch.Tensor | None


def _loss_value(loss: str, yhat: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """ℓ(ŷ_i, y_i) for every example: yhat (..., N, K) → (..., N)."""
    if loss == "squared":
        return torch.sum((yhat - Y) ** 2, dim=-1)
    picked = torch.gather(yhat, -1, Y.expand(*yhat.shape[:-1]).unsqueeze(-1)).squeeze(-1)
    return torch.logsumexp(yhat, dim=-1) - picked


def _loss_grad(loss: str, yhat: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """∂ℓ/∂ŷ: 2(ŷ − y) (squared) or softmax(ŷ) − e_y (cross-entropy), shape (..., N, K)."""
    if loss == "squared":
        return 2.0 * (yhat - Y)
    onehot = torch.nn.functional.one_hot(Y, yhat.shape[-1]).to(yhat.dtype)
    return torch.softmax(yhat, dim=-1) - onehot


@dataclass(frozen=True)
class TorchLoRAProblem:
    """F_P for a batch of factors on one device.

    Gmat (N·K, m·n) the sensing matrix; f0 (N, K); Y (N, K) floats or (N,) int64 labels;
    lam λ; P (m + n, m + n) or None; m rows of δ. Points are Q of shape (S, m + n, r).
    """

    Gmat: torch.Tensor
    f0: torch.Tensor
    Y: torch.Tensor
    loss: str
    lam: float
    P: torch.Tensor | None
    m: int

    @classmethod
    def from_arrays(cls, G, f0, Y, loss: str, lam: float, P=None, *, device=None, dtype=torch.float64):
        """Build from numpy arrays or tensors; G (N, K, m, n) is copied at most once (not at all when it is
        already a float64 CPU array and the target is float64 on the CPU)."""
        get_loss(loss)
        G = torch.as_tensor(G, dtype=dtype, device=device)
        n_ex, k, m, n = G.shape
        Y = torch.as_tensor(Y, device=device)
        Y = Y.to(torch.int64) if loss == "cross_entropy" else Y.to(dtype)
        P = None if P is None else torch.as_tensor(P, dtype=dtype, device=device)
        return cls(G.reshape(n_ex * k, m * n), torch.as_tensor(f0, dtype=dtype, device=device), Y, loss,
                   float(lam), P, m)

    @classmethod
    def from_instance(cls, inst: Instance, device=None, dtype=torch.float64) -> "TorchLoRAProblem":
        return cls.from_arrays(inst.G, inst.f0, inst.Y, inst.loss, inst.lam, inst.P, device=device, dtype=dtype)

    @property
    def N(self) -> int:
        return self.f0.shape[0]

    def outputs(self, Q: torch.Tensor) -> torch.Tensor:
        """ŷ = f0 + A(u vᵀ), shape (S, N, K), for Q of shape (S, m + n, r)."""
        u, v = Q[:, :self.m], Q[:, self.m:]
        delta = u @ v.transpose(1, 2)                                    # (S, m, n)
        A_delta = delta.reshape(Q.shape[0], -1) @ self.Gmat.T           # (S, N·K)
        return self.f0 + A_delta.reshape(Q.shape[0], *self.f0.shape)

    def evaluate(self, Q: torch.Tensor) -> Evaluation:
        """F_P(Q) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ for every start (one pass over Gmat)."""
        yhat = self.outputs(Q)
        F = _loss_value(self.loss, yhat, self.Y).mean(dim=-1) + 0.5 * self.lam * torch.sum(Q * Q, dim=(1, 2))
        PQ = None
        if self.P is not None:
            PQ = self.P @ Q
            F = F + torch.sum(Q * PQ, dim=(1, 2))
        return Evaluation(F, yhat, PQ)

    def risk_gradient(self, yhat: torch.Tensor) -> torch.Tensor:
        """S = A*(V) = ∇L̂(u vᵀ), shape (S, m, n), with V = (1/N) ∂ℓ/∂ŷ (one pass over Gmat)."""
        V = _loss_grad(self.loss, yhat, self.Y) / self.N                 # (S, N, K)
        n = self.Gmat.shape[1] // self.m
        return (V.reshape(V.shape[0], -1) @ self.Gmat).reshape(V.shape[0], self.m, n)

    def gradient(self, Q: torch.Tensor, ev: Evaluation) -> torch.Tensor:
        """∇F_P(Q) = M Q = [S v; Sᵀ u] + λ Q + 2 P Q, shape (S, m + n, r) (MATH.md §2)."""
        S = self.risk_gradient(ev.yhat)
        u, v = Q[:, :self.m], Q[:, self.m:]
        g = torch.cat([S @ v, S.transpose(1, 2) @ u], dim=1) + self.lam * Q
        return g if ev.PQ is None else g + 2.0 * ev.PQ


def torch_lora_objective(G, f0, Y, loss: str, lam: float, Q: torch.Tensor, P=None) -> torch.Tensor:
    """Differentiable F_P(u, v) = L̂(u vᵀ) + (λ/2)‖Q‖_F² + ⟨P, Q Qᵀ⟩ (Thm 4.1).

    G (N, K, m, n), f0 (N, K), Y as in ``Instance`` (arrays or tensors, converted to Q's dtype and
    device), Q (m + n, r) → scalar, or (S, m + n, r) → (S,). P (m + n, m + n) or None (P = 0).
    """
    batched = Q.dim() == 3
    prob = TorchLoRAProblem.from_arrays(G, f0, Y, loss, lam, P, device=Q.device, dtype=Q.dtype)
    F = prob.evaluate(Q if batched else Q.unsqueeze(0)).F
    return F if batched else F[0]


# ---------------------------------------------------------------------------------------------
# the batched iteration


def _norms(X: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of every start, (S, d, r) → (S,)."""
    return torch.linalg.vector_norm(X, dim=(1, 2))


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
    """⟨X, Y⟩_F of every start, (S,)."""
    return torch.sum(X * Y, dim=(1, 2))


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
    """Direction −H ∇F_P from the L-BFGS two-loop recursion (Nocedal & Wright, Alg. 7.4) over the last
    LBFGS_MEMORY pairs (s, y), batched: a start's pair with ρ = 0 (rejected step or ⟨s,y⟩ ≤ 0) is inert.
    H₀ = γ I with γ = ⟨s,y⟩/⟨y,y⟩ of the start's last curvature pair; unit trial step; −γ ∇F_P when the
    recursion fails to give a descent direction."""

    def __init__(self, gamma: torch.Tensor):
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.gamma = gamma

    def update(self, ok: torch.Tensor, s: torch.Tensor, y: torch.Tensor, st: _State):
        """After the steps s = Q⁺ − Q with y = ∇F(Q⁺) − ∇F(Q) accepted where ``ok``: (d, t) for every start."""
        sy, yy = _inner(s, y), _inner(y, y)
        curvature = ok & (sy > CURVATURE_RTOL * torch.sqrt(_inner(s, s) * yy))
        rho = torch.where(curvature, 1.0 / torch.where(curvature, sy, 1.0), 0.0)
        self.gamma = torch.where(curvature, sy / torch.where(curvature, yy, 1.0), self.gamma)
        self.pairs = (self.pairs + [(s, y, rho)])[-LBFGS_MEMORY:]
        d = -self._apply_inverse_hessian(st.g)
        descent = _inner(d, st.g) < 0
        d = torch.where(_bcast(descent), d, -_bcast(self.gamma) * st.g)
        return d, torch.ones_like(sy)

    def _apply_inverse_hessian(self, g: torch.Tensor) -> torch.Tensor:
        """H g for the L-BFGS inverse-Hessian approximation H, g (S, d, r)."""
        q, coef = g, []
        for s, y, rho in reversed(self.pairs):
            a = rho * _inner(s, q)
            q = q - _bcast(a) * y
            coef.append(a)
        r = _bcast(self.gamma) * q
        for (s, y, rho), a in zip(self.pairs, reversed(coef)):
            r = r + _bcast(a - rho * _inner(y, r)) * s
        return r


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


def safe_step(inst: Instance, Q0: np.ndarray) -> np.ndarray:
    """Default GD step η = 1/L̄ per start, L̄ a smoothness estimate of F_P on {F_P ≤ F_P(Q0)}, shape (S,).

    From ∇²F_P[W, W] = (1/N) Σ A(E)ᵀ∇²ℓ A(E) + ⟨M, W Wᵀ⟩ with ‖E‖_F ≤ √2 ‖Q‖_op ‖W‖_F (MATH.md §2):
    L̄ = (2c/N) ‖A‖²_op R² + ‖A‖_op g + λ + 2‖P‖_F, where c bounds ∇²ℓ, R² = 2 F_P(Q0)/λ bounds ‖Q‖_F²
    on the sublevel set (L̂ ≥ 0, ⟨P, QQᵀ⟩ ≥ 0) and g bounds ‖V‖_F there (squared: 2√(F_P(Q0)/N);
    cross-entropy: √(2/N)). Needs λ > 0; conservative by design (pass ``lr`` to train faster).
    """
    if inst.lam <= 0:
        raise ValueError("method 'gd' with λ = 0 needs an explicit lr: the sublevel set of F_P is unbounded, "
                         "so there is no safe default step")
    lossf = get_loss(inst.loss)
    A = inst.G.reshape(inst.kn, -1)
    a_op2 = float(np.linalg.eigvalsh(A @ A.T)[-1])
    F0 = np.array([inst.lora_objective(Q) for Q in Q0])
    g = 2.0 * np.sqrt(F0 / inst.N) if inst.loss == "squared" else lossf.lipschitz() / np.sqrt(inst.N)
    p = 0.0 if inst.P is None else 2.0 * float(np.linalg.norm(inst.P))
    L = 2 * lossf.hessian_bound / inst.N * a_op2 * (2 * F0 / inst.lam) + np.sqrt(a_op2) * g + inst.lam + p
    return 1.0 / L


# ---------------------------------------------------------------------------------------------
# the solver


@dataclass
class _Trace:
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


def _optimize(prob: TorchLoRAProblem, Q: torch.Tensor, method: str, lr, tol: float, max_iter: int,
              time_limit: float | None, record_every: int, t0: float) -> _Trace:
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
    return _Trace(Q=st.Q.cpu().double().numpy(), gnorm=cpu(st.gnorm.double()), iterations=cpu(st.iterations),
                  evaluations=cpu(st.evaluations), converged=cpu(st.converged), failed=cpu(st.failed),
                  stalled=cpu(st.stalled), history=series[0], grad_history=series[1], norm_history=series[2],
                  seconds=seconds, timed_out=timed_out)


def _status(trace: _Trace, s: int, tol: float) -> tuple[SolveStatus, str]:
    if trace.failed[s]:
        return SolveStatus.FAILED, "non-finite F_P or gradient (diverged)"
    if trace.converged[s]:
        return SolveStatus.CONVERGED, f"stopping test ‖∇F_P‖_F ≤ {tol:g}·max(1, ‖Q‖_F) passed"
    if trace.stalled[s]:
        return SolveStatus.INACCURATE, "line search stalled: the step no longer changes Q at working precision"
    return SolveStatus.MAX_ITER, "time limit reached" if trace.timed_out else "iteration budget exhausted"


def _result(inst: Instance, trace: _Trace, s: int, tol: float, extra: dict) -> SolveResult:
    """SolveResult of start s with δ = u vᵀ, L̂_λ(δ) and F_P(Q) recomputed in float64 numpy."""
    Q = trace.Q[s]
    delta = Q[:inst.m] @ Q[inst.m:].T
    status, message = _status(trace, s, tol)
    objective = F_P = float("nan")
    if np.all(np.isfinite(Q)):
        risk = inst.risk(delta)
        objective = risk + inst.lam * nuclear_norm(delta)
        F_P = risk + 0.5 * inst.lam * float(np.sum(Q * Q))
        F_P += 0.0 if inst.P is None else float(np.sum(Q * (inst.P @ Q)))
    return SolveResult(solver="bm", status=status, delta=delta, objective=objective,
                       solve_seconds=trace.seconds, iterations=int(trace.iterations[s]), Q=Q, message=message,
                       lifted_objective=F_P, grad_norm=float(trace.gnorm[s]), start=s, history=trace.history[s],
                       grad_history=trace.grad_history[s], norm_history=trace.norm_history[s],
                       extra={"evaluations": int(trace.evaluations[s]), **extra})


def _check_options(method, lr, max_iter, grad_tol, time_limit, dtype, record_every) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: expected one of {METHODS}")
    if dtype not in GRAD_RTOL:
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    if lr is not None and not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite step size, got {lr!r}")
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be an integer ≥ 0, got {max_iter!r}")
    if grad_tol is not None and not (np.isfinite(grad_tol) and grad_tol > 0):
        raise ValueError(f"grad_tol must be a positive finite number, got {grad_tol!r}")
    if time_limit is not None and not time_limit > 0:
        raise ValueError(f"time_limit must be positive seconds or None, got {time_limit!r}")
    if isinstance(record_every, bool) or int(record_every) != record_every or record_every < 1:
        raise ValueError(f"record_every must be an integer ≥ 1, got {record_every!r}")


def solve_bm_multistart(inst: Instance, rank: int, *, starts: int = 1, init="lora",
                        rng: np.random.Generator | None = None, method: str = "lbfgs", lr: float | None = None,
                        max_iter: int = 20000, grad_tol: float | None = None, time_limit: float | None = None,
                        device: str = "auto", dtype: torch.dtype = torch.float64, record_every: int = 1,
                        Q0=None) -> list[SolveResult]:
    """Minimize F_P over Q = [u; v] (m + n, rank) from ``starts`` starts optimized as one batch.

    init, rng: see ``initial_factors`` (rng is required for "lora" and "random"); Q0, an array of
    factors (m + n, rank) or (starts, m + n, rank), takes precedence over init.
    method: "lbfgs" (default), "bb", or "gd" with step ``lr`` (default ``safe_step``, one per start).
    grad_tol: per-start stopping test ‖∇F_P‖_F ≤ grad_tol · max(1, ‖Q‖_F), default GRAD_RTOL[dtype].
    max_iter: iterations of the batch (one trial evaluation per start each); time_limit: seconds or None.
    Returns one SolveResult per start: Q (m + n, r) and δ = u vᵀ (m, n) in float64; objective
    L̂_λ(δ) and lifted_objective = F_P recomputed in float64 numpy; status CONVERGED (stopping test passed),
    MAX_ITER (budget or time limit), INACCURATE (line search stalled at working precision) or FAILED
    (non-finite values); iterations = accepted steps; history (grad_history, norm_history) = F_P
    (‖∇F_P‖_F, ‖Q‖_F) at Q0 and after every
    ``record_every``-th accepted step; solve_seconds = wall time of the whole batched run, device
    set-up included (synchronized on cuda), float64 post-processing excluded.
    """
    _check_options(method, lr, max_iter, grad_tol, time_limit, dtype, record_every)
    grad_tol = GRAD_RTOL[dtype] if grad_tol is None else float(grad_tol)
    dev = device_for(device)
    factors = initial_factors(inst, rank, starts, init if Q0 is None else Q0, rng)
    steps = None
    if method == "gd":
        steps = np.full(factors.shape[0], float(lr)) if lr is not None else safe_step(inst, factors)
    t0 = time.perf_counter()
    prob = TorchLoRAProblem.from_instance(inst, dev, dtype)
    lr_t = None if steps is None else torch.as_tensor(steps, dtype=dtype, device=dev)
    trace = _optimize(prob, torch.as_tensor(factors, dtype=dtype, device=dev), method, lr_t, grad_tol,
                      int(max_iter), time_limit, int(record_every), t0)
    extra = {"device": str(dev), "method": method, "init": init if Q0 is None and isinstance(init, str) else "array",
             "dtype": str(dtype).removeprefix("torch."), "grad_tol": grad_tol}
    results = []
    for s in range(factors.shape[0]):
        step_info = {} if steps is None else {"lr": float(steps[s])}
        results.append(_result(inst, trace, s, grad_tol, {**extra, **step_info}))
    return results


def solve_bm(inst: Instance, rank: int, **kw) -> SolveResult:
    """The best start (smallest float64 F_P, failed starts last) of ``solve_bm_multistart``;
    extra["starts"] = number of starts."""
    results = solve_bm_multistart(inst, rank, **kw)
    best = min(results, key=lambda r: (r.status == SolveStatus.FAILED, np.nan_to_num(r.lifted_objective, nan=np.inf)))
    best.extra["starts"] = len(results)
    return best
