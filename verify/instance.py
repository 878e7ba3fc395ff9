"""The validated matrix-sensing instance and its ``.npz`` file format (MATH.md §1).

File format (``numpy.savez``): ``G`` float (N, K, m, n) — or, for block storage (``theory.sensing``),
``n_blocks`` T and per block t either ``G_<t>`` float (N, K, m_t, n_t) (dense block) or ``left_<t>`` float
(N, K, L_t, m_t) and ``right_<t>`` float (N, L_t, n_t) (factored block); ``f0`` float (N, K); ``Y`` float (N, K)
for the squared loss or integer (N,) class indices for cross-entropy; ``loss`` a name in
``theory.losses.LOSSES`` ("squared", "cross_entropy"); ``lam`` float ≥ 0; optional ``P`` float
(m + n, m + n) symmetric PSD; optional ``provenance`` a JSON string (model hash, weight names, data hash, seed, ...).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from theory import linearized_model as lm
from theory.losses import Loss, TargetError, get_loss
from theory.sensing import BlockSensing, DenseBlock, FactoredBlock, factor_singular_values, is_operator
from verify.tolerances import PSD_RTOL, SYMMETRY_RTOL


class InstanceError(ValueError):
    """Bad instance input; the message names the offending quantity."""


def _finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        bad = "NaN" if np.isnan(a).any() else "Inf"
        raise InstanceError(f"{name} contains {bad} values")


def check_lam(lam) -> float:
    """λ as a float; raises InstanceError for negative, NaN or infinite λ."""
    try:
        lam = float(lam)
    except (TypeError, ValueError):
        raise InstanceError(f"lam (λ) must be a real number, got {lam!r}") from None
    if not np.isfinite(lam):
        raise InstanceError(f"lam (λ) must be finite, got {lam}")
    if lam < 0:
        raise InstanceError(f"lam (λ) must be ≥ 0, got {lam}")
    return lam


def check_int(name: str, value, minimum: int = 1, error: type[ValueError] = InstanceError) -> int:
    """``value`` as an int ≥ ``minimum``; raises ``error`` "<name> must be an integer ≥ <minimum>" otherwise
    (booleans and non-integral numbers are refused)."""
    if isinstance(value, bool) or int(value) != value or value < minimum:
        raise error(f"{name} must be an integer ≥ {minimum}, got {value!r}")
    return int(value)


def check_dims(**dims) -> None:
    """Every keyword an integer ≥ 1 (``check_int``), else InstanceError naming it."""
    for name, value in dims.items():
        check_int(name, value)


def loss_named(name) -> Loss:
    """The loss called ``name`` (``theory.losses.get_loss``), else InstanceError naming the allowed losses."""
    try:
        return get_loss(name)
    except ValueError as exc:
        raise InstanceError(str(exc)) from None


def check_rank(rank) -> int:
    """LoRA rank r as an int ≥ 1."""
    return check_int("rank", rank)


def check_perturbation(P, size: int) -> np.ndarray:
    """P as a float64 (size, size) symmetric PSD matrix, else InstanceError naming the defect."""
    P = np.asarray(P, dtype=float)
    if P.shape != (size, size):
        raise InstanceError(f"P must have shape (m + n, m + n) = ({size}, {size}), got {P.shape}")
    _finite("P", P)
    scale = max(float(np.abs(P).max(initial=0.0)), np.finfo(float).tiny)
    asym = float(np.abs(P - P.T).max(initial=0.0))
    if asym > SYMMETRY_RTOL * scale:
        raise InstanceError(f"P must be symmetric: max |P − Pᵀ| = {asym:.3g}")
    P = 0.5 * (P + P.T)
    lmin = float(np.linalg.eigvalsh(P)[0])
    if lmin < -PSD_RTOL * scale:
        raise InstanceError(f"P must be positive semidefinite: λ_min(P) = {lmin:.3g} < 0")
    return P


def _checked_blocks(G: BlockSensing) -> BlockSensing:
    """A BlockSensing with float64 contiguous, finite blocks, else InstanceError naming the block."""
    blocks = []
    for t, b in enumerate(G.blocks):
        arrays = {"G": b.G} if isinstance(b, DenseBlock) else {"left": b.left, "right": b.right}
        for key, a in arrays.items():
            if 0 in a.shape[1:] or (key == "G" and 0 in a.shape):
                raise InstanceError(f"{key}_{t} must have positive sizes, got {a.shape}")
            _finite(f"{key}_{t}", a)
        arrays = {k: np.ascontiguousarray(a, dtype=float) for k, a in arrays.items()}
        if isinstance(b, FactoredBlock):
            arrays["offsets"] = _checked_offsets(t, b)
        blocks.append(type(b)(**arrays))
    try:
        return BlockSensing(tuple(blocks))
    except ValueError as exc:
        raise InstanceError(str(exc)) from None


def _checked_offsets(t: int, b: FactoredBlock) -> np.ndarray:
    """The token offsets (N + 1,) of factored block t as int64, else InstanceError: they must rise from 0 to the
    number of tokens, right must have one row per token, and there must be at least one example."""
    off = np.asarray(b.offsets)
    if off.ndim != 1 or off.size < 2 or not np.issubdtype(off.dtype, np.integer):
        raise InstanceError(f"offsets_{t} must be an integer vector of N + 1 ≥ 2 token offsets, got {off.dtype} {off.shape}")
    if b.left.ndim != 3 or b.right.ndim != 2 or b.right.shape[0] != b.left.shape[0]:
        raise InstanceError(f"left_{t} (T, K, m_t) and right_{t} (T, n_t) must have one row per token, got "
                            f"{b.left.shape} and {b.right.shape}")
    if off[0] != 0 or off[-1] != b.left.shape[0] or np.any(np.diff(off) < 0):
        raise InstanceError(f"offsets_{t} must rise from 0 to the number of tokens {b.left.shape[0]}, "
                            f"got {off[0]} … {off[-1]}")
    return off.astype(np.int64)


@dataclass(frozen=True)
class Instance:
    """A matrix-sensing instance: G (N, K, m, n), f0 (N, K), Y, loss, λ, optional P (m+n, m+n).

    ``G`` is a dense (N, K, m, n) array or a ``theory.sensing.BlockSensing`` (T diagonal blocks, each dense
    or factored); both have ``shape`` (N, K, m, n) and every procedure accepts either.
    """

    G: np.ndarray
    f0: np.ndarray
    Y: np.ndarray
    loss: str
    lam: float
    P: np.ndarray | None = None
    name: str = "instance"
    provenance: dict = field(default_factory=dict)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731  (frozen dataclass)
        lossf = loss_named(self.loss)
        G = _checked_blocks(self.G) if is_operator(self.G) else np.asarray(self.G)
        if G.ndim != 4 or 0 in G.shape:
            raise InstanceError(f"G must have shape (N, K, m, n) with positive sizes, got {G.shape}")
        if not is_operator(G):
            G = np.ascontiguousarray(G, dtype=float)
            _finite("G", G)
        N, K, m, n = G.shape
        f0 = np.asarray(self.f0, dtype=float)
        if f0.shape != (N, K):
            raise InstanceError(f"f0 must have shape (N, K) = ({N}, {K}), got {f0.shape}")
        _finite("f0", f0)
        try:
            Y = lossf.targets(self.Y, N, K)
        except TargetError as exc:
            raise InstanceError(str(exc)) from None
        set_("G", G)
        set_("f0", f0)
        set_("Y", Y)
        set_("lam", check_lam(self.lam))
        if self.P is not None:
            set_("P", check_perturbation(self.P, m + n))

    # shapes ---------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return self.G.shape

    N = property(lambda self: self.G.shape[0])
    K = property(lambda self: self.G.shape[1])
    m = property(lambda self: self.G.shape[2])
    n = property(lambda self: self.G.shape[3])
    kn = property(lambda self: self.G.shape[0] * self.G.shape[1])

    @property
    def loss_fn(self) -> Loss:
        """The loss object (``theory.losses``) named by ``loss``."""
        return get_loss(self.loss)

    def with_(self, **changes) -> "Instance":
        """A validated copy with fields replaced (e.g. ``lam=0.1`` or ``P=...``)."""
        return replace(self, **changes)

    # the objective ---------------------------------------------------------------------------
    def risk(self, delta: np.ndarray) -> float:
        """L̂(δ)."""
        return lm.empirical_risk(self.G, self.f0, self.Y, self.loss, delta)

    def objective(self, delta: np.ndarray) -> float:
        """L̂_λ(δ) = L̂(δ) + λ‖δ‖_* (problem (P))."""
        return lm.regularized_risk(self.G, self.f0, self.Y, self.loss, self.lam, delta)

    def factor_objective(self, Q: np.ndarray) -> float:
        """L̂_λ(u vᵀ) for Q = [u; v] (m + n, r), ‖u vᵀ‖_* from two thin QRs (``theory.sensing.factor_singular_values``,
        no SVD of an (m, n) matrix); with block storage without forming u vᵀ at all."""
        u, v = Q[:self.m], Q[self.m:]
        if is_operator(self.G):
            risk = float(np.mean(self.loss_fn.value(self.f0 + self.G.apply_factors(u, v), self.Y)))
        else:
            risk = self.risk(u @ v.T)
        return risk + self.lam * float(factor_singular_values(u, v).sum())

    def lora_objective(self, Q: np.ndarray) -> float:
        """F_P(u, v) with Q = [u; v] (m + n, r)."""
        return lm.lora_objective(self.G, self.f0, self.Y, self.loss, self.lam, Q, self.P)

    def gradient(self, delta: np.ndarray) -> np.ndarray:
        """S(δ) = ∇L̂(δ), shape (m, n)."""
        return lm.risk_gradient(self.G, self.f0, self.Y, self.loss, delta)

    # file format -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the ``.npz`` file (atomically: a temporary file renamed into place)."""
        path = Path(path)
        arrays = dict(_sensing_arrays(self.G), f0=self.f0, Y=self.Y, loss=np.array(self.loss), lam=np.array(self.lam),
                      provenance=np.array(json.dumps(self.provenance, sort_keys=True)))
        if self.P is not None:
            arrays["P"] = self.P
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
        return path


def _sensing_arrays(G) -> dict[str, np.ndarray]:
    """The npz keys of G: ``G`` for a dense array; ``n_blocks`` and ``G_<t>`` or ``left_<t>``, ``right_<t>``,
    ``offsets_<t>``."""
    if not is_operator(G):
        return {"G": G}
    out = {"n_blocks": np.array(len(G.blocks))}
    for t, b in enumerate(G.blocks):
        out.update({f"G_{t}": b.G} if isinstance(b, DenseBlock)
                   else {f"left_{t}": b.left, f"right_{t}": b.right, f"offsets_{t}": b.offsets})
    return out


def _read_sensing(data, files: set[str], path: Path):
    """G from an open npz: the dense ``G`` key, or the block keys of ``_sensing_arrays``."""
    if "G" in files:
        return data["G"]
    if "n_blocks" not in files:
        raise InstanceError(f"instance file {path} lacks the keys ['G'] (or the block keys 'n_blocks', 'G_0', ...)")
    blocks = []
    for t in range(int(data["n_blocks"])):
        if f"G_{t}" in files:
            blocks.append(DenseBlock(data[f"G_{t}"]))
        elif {f"left_{t}", f"right_{t}", f"offsets_{t}"} <= files:
            blocks.append(FactoredBlock(data[f"left_{t}"], data[f"right_{t}"], data[f"offsets_{t}"]))
        elif {f"left_{t}", f"right_{t}"} <= files and data[f"left_{t}"].ndim == 4:  # the padded form of earlier files
            blocks.append(FactoredBlock.padded(data[f"left_{t}"], data[f"right_{t}"]))
        else:
            raise InstanceError(f"instance file {path} lacks block {t} (keys G_{t}, or left_{t}, right_{t} and "
                                f"offsets_{t})")
    return BlockSensing(tuple(blocks))


def load_instance(path: str | os.PathLike, *, lam: float | None = None) -> Instance:
    """Read and validate an instance file; ``lam`` overrides the stored λ."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            files = set(data.files)
            missing = {"f0", "Y", "loss", "lam"} - files
            if missing:
                raise InstanceError(f"instance file {path} lacks the keys {sorted(missing)}")
            fields = {k: data[k] for k in ("f0", "Y")}
            fields["G"] = _read_sensing(data, files, path)
            loss = str(data["loss"])
            stored_lam = data["lam"]
            P = data["P"] if "P" in files else None
            prov = json.loads(str(data["provenance"])) if "provenance" in files else {}
    except InstanceError:
        raise
    except Exception as exc:  # OSError, zipfile.BadZipFile, ValueError, JSONDecodeError, ...
        raise InstanceError(f"cannot read instance file {path}: {type(exc).__name__}: {exc}") from exc
    if stored_lam.shape != ():
        raise InstanceError(f"lam must be a scalar, got shape {stored_lam.shape}")
    return Instance(fields["G"], fields["f0"], fields["Y"], loss,
                    stored_lam.item() if lam is None else lam, P, name=path.stem, provenance=prov)
