"""Synthetic instance generators. Every one takes an explicit ``numpy.random.Generator``.

Scaling: each G[i, j] has i.i.d. N(0, 1/(m n)) entries, so ‖G[i, j]‖_F ≈ 1 and A(δ) = O(‖δ‖_F).
"""
from __future__ import annotations

import numpy as np

from theory.linearized_model import apply_A
from verify.instance import Instance, InstanceError, check_dims, loss_named


def gaussian(rng: np.random.Generator, N: int, K: int, m: int, n: int, *, loss: str = "squared",
             lam: float = 0.01, name: str = "gaussian") -> Instance:
    """Gaussian sensing; offsets and targets from the loss's ``random_offsets`` / ``random_targets``
    (squared: f0 = 0, Y ~ N(0, 1); cross-entropy: f0 ~ 0.5·N(0, 1), uniform random labels)."""
    check_dims(N=N, K=K, m=m, n=n)
    lossf = loss_named(loss)
    G = rng.standard_normal((N, K, m, n)) / np.sqrt(m * n)
    f0 = lossf.random_offsets(rng, N, K)
    Y = lossf.random_targets(rng, N, K)
    return Instance(G, f0, Y, loss, lam, name=name)


def planted(rng: np.random.Generator, N: int, K: int, m: int, n: int, *, rank: int = 2,
            scale: float = 1.0, noise: float = 0.0, loss: str = "squared", lam: float = 0.01,
            name: str = "planted") -> tuple[Instance, np.ndarray]:
    """Gaussian sensing with a planted rank-``rank`` teacher δ_teacher (m, n) of nuclear norm ``scale``.

    Returns (instance, δ_teacher). Targets come from the loss's ``sample_targets`` at the teacher's
    outputs f0 + A(δ_teacher) (squared: plus ``noise``·N(0, 1); cross-entropy: labels from the softmax).
    """
    check_dims(N=N, K=K, m=m, n=n, rank=rank)
    lossf = loss_named(loss)
    G = rng.standard_normal((N, K, m, n)) / np.sqrt(m * n)
    U = np.linalg.qr(rng.standard_normal((m, rank)))[0]
    V = np.linalg.qr(rng.standard_normal((n, rank)))[0]
    s = np.sort(rng.uniform(0.5, 1.0, rank))[::-1]
    teacher = (U * (scale * s / s.sum())) @ V.T * np.sqrt(m * n)
    f0 = lossf.random_offsets(rng, N, K)
    A_t = np.einsum("nkab,ab->nk", G, teacher)
    return Instance(G, f0, lossf.sample_targets(rng, f0 + A_t, noise), loss, lam, name=name), teacher


def ill_conditioned(rng: np.random.Generator, N: int, K: int, m: int, n: int, *, cond: float = 1e3,
                    loss: str = "squared", lam: float = 0.01, name: str = "ill_conditioned") -> Instance:
    """Sensing map A with singular values log-spaced over [1/cond, 1] (condition number ``cond``)."""
    check_dims(N=N, K=K, m=m, n=n)
    if not cond >= 1:
        raise InstanceError(f"cond must be ≥ 1, got {cond}")
    kn, mn = N * K, m * n
    base = rng.standard_normal((kn, mn)) / np.sqrt(mn)
    U, _, Vt = np.linalg.svd(base, full_matrices=False)
    s = np.logspace(0, -np.log10(cond), U.shape[1])
    G = ((U * s) @ Vt).reshape(N, K, m, n)
    inst = gaussian(rng, N, K, m, n, loss=loss, lam=lam)
    return Instance(G, inst.f0, inst.Y, loss, lam, name=name)


def block_diagonal(rng: np.random.Generator, N: int, K: int, blocks: list[tuple[int, int]], *,
                   loss: str = "squared", lam: float = 0.01, name: str = "block_diagonal") -> Instance:
    """T > 1 tuned matrices: G[i, j] = diag(G_1[i, j], …, G_T[i, j]) with block t of shape blocks[t]."""
    if len(blocks) < 1:
        raise InstanceError("blocks must list at least one (m_t, n_t)")
    for t, (mt, nt) in enumerate(blocks):
        check_dims(**{f"m_{t}": mt, f"n_{t}": nt})
    m, n = sum(b[0] for b in blocks), sum(b[1] for b in blocks)
    check_dims(N=N, K=K)
    G = np.zeros((N, K, m, n))
    r0 = c0 = 0
    for mt, nt in blocks:
        G[:, :, r0:r0 + mt, c0:c0 + nt] = rng.standard_normal((N, K, mt, nt)) / np.sqrt(mt * nt * len(blocks))
        r0, c0 = r0 + mt, c0 + nt
    inst = gaussian(rng, N, K, 1, 1, loss=loss, lam=lam)
    return Instance(G, inst.f0, inst.Y, loss, lam, name=name, provenance={"blocks": [list(b) for b in blocks]})


def orthogonal_rank_one(rng: np.random.Generator, N: int, K: int, m: int, n: int, *, target: float,
                        lam: float, name: str = "orthogonal_rank_one") -> Instance:
    """Squared loss, f0 = 0, every target ``target``; measurement (i, k) is the unit rank-one matrix
    G[i, k] = u_j v_jᵀ, j = K i + k, with u_j, v_j columns of Haar-orthogonal U (m, m), V (n, n) (QR of Gaussians).
    So example i's gradient ∇_δ ℓ_i = 2 Σ_k (⟨G[i, k], δ⟩ − target) G[i, k] has rank ≤ K (K = 1: a linear layer fed
    one vector per example). Writing δ = Σ_jk M_jk u_j v_kᵀ + (the rest), the measurements see only diag M and
    ‖δ‖_* ≥ Σ_j |M_jj|, so the optimal value separates over j, (1/N)(x − target)² + λ|x| each, and
    δ* = (target − Nλ/2) Σ_j u_j v_jᵀ (rank N K) is a minimizer when target > Nλ/2 — not the only one: any M with that
    diagonal and ‖M‖_* = its trace (e.g. PSD M) is too, possibly of lower rank. Needs N K ≤ min(m, n)."""
    check_dims(N=N, K=K, m=m, n=n)
    if N * K > min(m, n):
        raise InstanceError(f"orthogonal rank-one measurements need N·K = {N * K} ≤ min(m, n) = {min(m, n)}")
    if not np.isfinite(target):
        raise InstanceError(f"target must be finite, got {target}")
    U = np.linalg.qr(rng.standard_normal((m, m)))[0]
    V = np.linalg.qr(rng.standard_normal((n, n)))[0]
    j = np.arange(N * K)
    G = np.einsum("aj,bj->jab", U[:, j], V[:, j]).reshape(N, K, m, n)
    return Instance(G, np.zeros((N, K)), np.full((N, K), float(target)), "squared", lam, name=name)


def trace_sensing(rng: np.random.Generator, N: int, K: int, n: int, *, loss: str = "squared",
                  lam: float = 0.01, name: str = "trace_sensing") -> Instance:
    """Degenerate sensing G[i, j] = c_ij I_n (m = n): A(δ) = c · tr δ sees only the trace.

    For λ > 0 every PSD (or NSD) δ with the optimal trace t* is a global minimizer of (P), so the
    full-rank δ* = (t*/n) I is one: the starting point that Theorem 3.1's reduction must bring down.
    """
    check_dims(N=N, K=K, n=n)
    coef = rng.standard_normal((N, K))
    G = coef[:, :, None, None] * np.eye(n)[None, None] / np.sqrt(n)
    base = gaussian(rng, N, K, 1, 1, loss=loss, lam=lam)
    return Instance(G, base.f0, base.Y, loss, lam, name=name)


def trace_sensing_optimum(inst: Instance) -> np.ndarray:
    """The full-rank global minimizer (t*/n)·I of a ``trace_sensing`` instance.

    t* minimizes the 1-D convex problem φ(t) = L̂((t/n) I) + λ|t| (min ‖δ‖_* over tr δ = t is |t|);
    solved by bracketing and then Newton steps with the exact φ', φ'' on the smooth piece.
    """
    from scipy.optimize import minimize_scalar

    n, loss = inst.n, inst.loss_fn
    d = np.eye(n) / n
    a = apply_A(inst.G, d)  # (N, K): ŷ = f0 + t·a
    phi = lambda t: inst.risk(t * d) + inst.lam * abs(t)  # noqa: E731
    t = float(minimize_scalar(phi, bracket=(-1.0, 1.0), tol=1e-12).x)
    for _ in range(30):
        yhat = inst.f0 + t * a
        g = float(np.mean(np.sum(a * loss.grad(yhat, inst.Y), axis=1))) + inst.lam * np.sign(t)
        h = float(np.mean(np.sum(a * loss.hess_apply(yhat, inst.Y, a), axis=1)))
        if h <= 0 or np.sign(t - g / h) != np.sign(t) or abs(g) <= 1e-15:
            break
        t -= g / h
    return t * d
