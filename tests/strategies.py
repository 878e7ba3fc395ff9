"""The one instance builder of the test suite and the hypothesis strategies that feed it.

Hypothesis draws the structure of a case — dimensions, loss, λ, the kind of perturbation P, a seed —
and ``InstanceSpec.build`` makes the arrays from it deterministically (raw random floats drawn by
hypothesis give NaNs and useless cases). A spec is what a failing example prints: a short, exact
recipe, not a page of arrays.

The instance (``build_instance`` / ``InstanceSpec.build``), from ``numpy.random.default_rng(seed)``:

- G, f0, Y: ``verify.synthetic.gaussian`` — G[i, j] has i.i.d. N(0, 1/(m n)) entries (‖G[i, j]‖_F ≈ 1),
  f0 and Y from the loss's ``random_offsets`` / ``random_targets``;
- P (only when ``perturbation`` names a kind of ``verify.experiments.landscape.PERTURBATIONS``): drawn next from
  the same generator by ``verify.experiments.landscape.random_perturbation``, a PSD matrix (m+n, m+n) scaled to
  ‖P‖_F = ``eps`` (default ``PERTURBATION_NORM``). Because P is drawn after G, f0, Y, the same spec with
  and without a perturbation gives the same G, f0, Y.

Import as ``from strategies import ...`` (pytest puts ``tests/`` on ``sys.path`` through its conftest).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
from hypothesis import strategies as st

from theory.losses import LOSS_NAMES, TargetError, get_loss
from verify import synthetic
from verify.instance import Instance
from verify.experiments.landscape import PERTURBATIONS, random_perturbation

#: seeds of numpy Generators
seeds = st.integers(0, 2**32 - 1)
#: sizes N, K, m, n, r of the derivative checks (dense autograd: keep them tiny)
sizes = st.integers(1, 4)
#: sizes N, m, n of the instances the convex solvers solve exactly
dims = st.integers(1, 6)
#: every registered loss
losses = st.sampled_from(LOSS_NAMES)
#: regularisation strengths λ > 0 (a certificate needs λ > 0 for cross-entropy)
LAMBDAS = (0.01, 0.1, 1.0)
lams = st.sampled_from(LAMBDAS)
#: the kinds of PSD perturbation P
perturbation_kinds = st.sampled_from(PERTURBATIONS)
#: a kind of perturbation or none
perturbations = st.none() | perturbation_kinds

#: ‖P‖_F of a perturbed test instance: small next to the risk's curvature (≈ 1), large enough that
#: a mistake in the P terms of F_P, ∇F_P, ∇²F_P shows far above float64 rounding
PERTURBATION_NORM = 0.3
#: the largest K tried by ``min_outputs``
_MAX_OUTPUTS = 8


@cache
def min_outputs(loss: str) -> int:
    """The fewest outputs K the loss accepts, asked of the loss itself (its ``targets`` check on one
    label), so that no test branches on a loss name: 1 for the squared loss, 2 for cross-entropy."""
    lossf = get_loss(loss)
    for K in range(1, _MAX_OUTPUTS + 1):
        try:
            lossf.targets(lossf.targets_from_labels(np.zeros(1, dtype=np.int64), K), 1, K)
        except TargetError:
            continue
        return K
    raise ValueError(f"loss {loss!r} accepts no K ≤ {_MAX_OUTPUTS}")


@dataclass(frozen=True)
class InstanceSpec:
    """The recipe of a test instance: N examples, K outputs, δ of shape (m, n), the loss, λ, the kind
    of perturbation P (None: no P) and its Frobenius norm ``eps``, and the seed of every array."""

    seed: int
    N: int
    K: int
    m: int
    n: int
    loss: str = "squared"
    lam: float = 0.1
    perturbation: str | None = None
    eps: float = PERTURBATION_NORM

    def build(self) -> Instance:
        """The instance, built as the module docstring says (same spec, same arrays)."""
        if self.K < min_outputs(self.loss):
            raise ValueError(f"the {self.loss} loss needs K ≥ {min_outputs(self.loss)}, got K = {self.K}")
        rng = np.random.default_rng(self.seed)
        inst = synthetic.gaussian(rng, self.N, self.K, self.m, self.n, loss=self.loss, lam=self.lam)
        if self.perturbation is not None:
            inst = inst.with_(P=random_perturbation(rng, self.m + self.n, self.perturbation, self.eps))
        return inst

    def rng(self, stream: int = 1) -> np.random.Generator:
        """A generator for the points a test draws beside the instance (stream ≥ 1; stream 0 is the
        instance's own), independent of the instance's arrays."""
        if stream < 1:
            raise ValueError("stream 0 is the instance's own generator")
        return np.random.default_rng([self.seed, stream])

    def without_perturbation(self) -> "InstanceSpec":
        """The same G, f0, Y, λ without P."""
        return replace(self, perturbation=None)


def build_instance(seed: int, N: int, K: int, m: int, n: int, loss: str = "squared", lam: float = 0.1,
                   perturbation: str | None = None, eps: float = PERTURBATION_NORM) -> Instance:
    """``InstanceSpec(...).build()`` for the tests that fix their instance by hand."""
    return InstanceSpec(seed, N, K, m, n, loss, lam, perturbation, eps).build()


@st.composite
def loss_and_outputs(draw, loss=losses, K=sizes) -> tuple[str, int]:
    """A loss name and a number of outputs K it accepts: a drawn K below the loss's ``min_outputs`` is
    raised to it (cross-entropy gets K ≥ 2, the squared loss keeps K = 1)."""
    name = draw(loss)
    return name, max(draw(K), min_outputs(name))


@st.composite
def instance_specs(draw, *, N=sizes, K=sizes, m=sizes, n=sizes, loss=losses, lam=st.just(0.1),
                   perturbation=st.none()) -> InstanceSpec:
    """An ``InstanceSpec`` with every field drawn from the given strategies (K as ``loss_and_outputs``)."""
    name, k = draw(loss_and_outputs(loss, K))
    return InstanceSpec(seed=draw(seeds), N=draw(N), K=k, m=draw(m), n=draw(n), loss=name, lam=draw(lam),
                        perturbation=draw(perturbation))


# block and factored storage (theory.sensing) ------------------------------------------------------------
def random_block_sensing(rng: np.random.Generator, N: int, K: int, kinds: tuple[str, ...],
                         shapes: tuple[tuple[int, int], ...], tokens: int):
    """A ``theory.sensing.BlockSensing`` with one block per kind ("dense" or "factored") of the given (m_t, n_t),
    standard normal entries scaled so that ‖G_t[i, j]‖_F ≈ 1; in a factored block each example has 0 … ``tokens``
    tokens (drawn; example 0 has ``tokens``), as examples of different lengths do."""
    from theory.sensing import BlockSensing, DenseBlock, FactoredBlock, token_offsets

    blocks = []
    for kind, (mt, nt) in zip(kinds, shapes):
        if kind == "dense":
            blocks.append(DenseBlock(rng.standard_normal((N, K, mt, nt)) / np.sqrt(mt * nt)))
        else:
            counts = np.concatenate([[tokens], rng.integers(0, tokens + 1, N - 1)])
            T, scale = int(counts.sum()), 1.0 / np.sqrt(tokens * mt * nt)
            blocks.append(FactoredBlock(rng.standard_normal((T, K, mt)) * np.sqrt(scale),
                                        rng.standard_normal((T, nt)) * np.sqrt(scale),
                                        token_offsets(counts)))
    return BlockSensing(tuple(blocks))


@st.composite
def block_instance_pairs(draw, perturbation=st.none()) -> tuple[Instance, Instance]:
    """(dense Instance, the same Instance with block storage): 1–3 blocks, each dense or factored, sizes 1–4."""
    T = draw(st.integers(1, 3))
    kinds = tuple(draw(st.sampled_from(("dense", "factored"))) for _ in range(T))
    shapes = tuple((draw(sizes), draw(sizes)) for _ in range(T))
    name, K = draw(loss_and_outputs())
    N, tokens, seed = draw(sizes), draw(sizes), draw(seeds)
    rng = np.random.default_rng(seed)
    op = random_block_sensing(rng, N, K, kinds, shapes, tokens)
    lossf = get_loss(name)
    f0, Y = lossf.random_offsets(rng, N, K), lossf.random_targets(rng, N, K)
    kind = draw(perturbation)
    m, n = op.shape[2:]
    P = None if kind is None else random_perturbation(rng, m + n, kind, PERTURBATION_NORM)
    lam = draw(lams)
    return Instance(op.dense(), f0, Y, name, lam, P), Instance(op, f0, Y, name, lam, P)
def low_span(inst: Instance, rng: np.random.Generator, p: int, q: int) -> Instance:
    """The instance with every G[i, j] replaced by Π_a G[i, j] Π_b, Π_a / Π_b orthogonal projections onto
    random p- / q-dimensional subspaces (p ≤ m, q ≤ n): a data span of dimension ≤ (p, q) (reduction tests)."""
    Ua = np.linalg.qr(rng.standard_normal((inst.m, p)))[0]
    Vb = np.linalg.qr(rng.standard_normal((inst.n, q)))[0]
    return inst.with_(G=np.einsum("ma,ijmn,nb->ijab", Ua @ Ua.T, inst.G, Vb @ Vb.T))
