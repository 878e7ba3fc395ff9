"""Block and factored storage of G (theory.sensing) agree with the dense G: the maps A and A*, ‖A‖, the objective,
the torch objective and gradient, the certificate, the file format; per-matrix LoRA; hook extraction on tiny BERT;
λ_min(M) is a lower bound."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, strategies as st

from strategies import block_instance_pairs, perturbation_kinds, random_block_sensing, seeds
from theory import linearized_model as lm
from theory import optimality
from theory.sensing import BlockSensing, DenseBlock, FactoredBlock, factor_singular_values, from_dense_blocks
from verify import entk, models
from verify.certify import certify, certify_result, lambda_min_M
from verify.instance import Instance, InstanceError, load_instance
from verify.results import SolveResult
from verify.solvers import run_solver
from verify.solvers.bm import solve_bm
from verify.solvers.bm.problem import TorchLoRAProblem, per_matrix_mask
from verify.tolerances import exact_rtol

TOL = exact_rtol(np.float64)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL * max(1.0, float(np.max(np.abs(b), initial=0.0))))


def point(inst: Instance, seed: int, r: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((inst.m + inst.n, r))


@given(block_instance_pairs(), seeds)
def test_maps_and_norm_agree(pair, seed):
    dense, block = pair
    rng = np.random.default_rng(seed)
    delta = rng.standard_normal((dense.m, dense.n))
    V = rng.standard_normal((dense.N, dense.K))
    close(lm.apply_A(block.G, delta), lm.apply_A(dense.G, delta))
    close(lm.apply_A_adjoint(block.G, V), lm.apply_A_adjoint(dense.G, V))
    close(lm.sensing_norm_squared(block.G), lm.sensing_norm_squared(dense.G))
    Q = point(dense, seed)
    close(block.G.apply_factors(Q[:dense.m], Q[dense.m:]), lm.apply_A(dense.G, Q[:dense.m] @ Q[dense.m:].T))


@given(block_instance_pairs(perturbation=st.none() | perturbation_kinds), seeds)
def test_objective_gradient_and_certificate_agree(pair, seed):
    dense, block = pair
    Q = point(dense, seed)
    close(block.lora_objective(Q), dense.lora_objective(Q))
    close(block.factor_objective(Q), dense.objective(Q[:dense.m] @ Q[dense.m:].T))
    close(optimality.lora_gradient(block.G, block.f0, block.Y, block.loss, block.lam, Q, block.P),
          optimality.lora_gradient(dense.G, dense.f0, dense.Y, dense.loss, dense.lam, Q, dense.P))
    W = point(dense, seed + 1)
    args = lambda inst: (inst.G, inst.f0, inst.Y, inst.loss, inst.lam, Q, W, inst.P)  # noqa: E731
    close(optimality.hessian_vector_product(*args(block)), optimality.hessian_vector_product(*args(dense)))
    cd, cb = certify(dense, Q=Q), certify(block, Q=Q)
    for field in ("objective", "lifted_objective", "gap_bound", "lambda_min_M", "first_order_residual"):
        close(getattr(cb, field), getattr(cd, field))
    assert cb.certified == cd.certified and cb.rank == cd.rank
    pd, pb = TorchLoRAProblem.from_instance(dense), TorchLoRAProblem.from_instance(block)
    Qt = torch.as_tensor(np.stack([Q, -0.5 * Q]))
    ed, eb = pd.evaluate(Qt), pb.evaluate(Qt)
    close(eb.F.numpy(), ed.F.numpy())
    close(pb.gradient(Qt, eb).numpy(), pd.gradient(Qt, ed).numpy())


@given(block_instance_pairs(), seeds)
def test_block_file_round_trip(tmp_path_factory, pair, seed):
    _, block = pair
    path = block.save(tmp_path_factory.mktemp("blocks") / "inst.npz")
    back = load_instance(path)
    assert [type(b) for b in back.G.blocks] == [type(b) for b in block.G.blocks]
    Q = point(block, seed)
    assert back.lora_objective(Q) == block.lora_objective(Q)


def test_old_dense_file_converts_to_blocks(tmp_path):
    """The README's conversion: load a dense block-diagonal file, keep its diagonal blocks, save."""
    rng = np.random.default_rng(0)
    op = random_block_sensing(rng, 3, 2, ("dense", "dense"), ((2, 3), (4, 1)), 1)
    dense = Instance(op.dense(), np.zeros((3, 2)), rng.integers(0, 2, 3), "cross_entropy", 0.1)
    dense.save(tmp_path / "old.npz")
    old = load_instance(tmp_path / "old.npz")
    new = old.with_(G=from_dense_blocks(old.G, [(2, 3), (4, 1)]))
    new.save(tmp_path / "new.npz")
    np.testing.assert_array_equal(load_instance(tmp_path / "new.npz").G.dense(), dense.G)
    with pytest.raises(ValueError, match="do not tile"):
        from_dense_blocks(old.G, [(2, 3)])


def test_bad_blocks_are_named():
    with pytest.raises(InstanceError, match="left_1 contains NaN"):
        Instance(BlockSensing((DenseBlock(np.ones((2, 2, 1, 1))),
                               FactoredBlock.padded(np.full((2, 2, 1, 1), np.nan), np.ones((2, 1, 1))))),
                 np.zeros((2, 2)), np.zeros(2, dtype=int), "cross_entropy", 0.1)
    with pytest.raises(ValueError, match="same"):
        BlockSensing((DenseBlock(np.ones((2, 2, 1, 1))), DenseBlock(np.ones((3, 2, 1, 1)))))


@given(seeds, st.integers(1, 4))
def test_factor_singular_values(seed, r):
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal((5, r)), rng.standard_normal((3, r))
    close(np.sort(factor_singular_values(u, v))[::-1][:min(3, r)], scipy.linalg.svdvals(u @ v.T)[:min(3, r)])


def test_shared_and_per_matrix_lora_are_certified():
    """Shared LoRA (one factor of the block-diagonal update) and per-matrix LoRA (rank r per block, the factor
    pattern of per_matrix_mask) both reach a certified global optimum of (P) at a rank above its threshold."""
    rng = np.random.default_rng(1)
    op = random_block_sensing(rng, 3, 2, ("factored", "dense"), ((5, 4), (3, 6)), 2)
    inst = Instance(op, np.zeros((3, 2)), rng.integers(0, 2, 3), "cross_entropy", 0.05)
    shared = solve_bm(inst, 4, rng=np.random.default_rng(2), device="cpu")
    mask = per_matrix_mask(op.block_shapes, 4)
    per_matrix = run_solver(inst, "bm", rank=4, seed=3, device="cpu", lora="per-matrix")
    assert per_matrix.Q.shape == mask.shape
    assert np.all(per_matrix.Q[mask == 0] == 0)
    cs, cp = certify_result(inst, shared), certify_result(inst, per_matrix)
    assert cs.certified and cp.certified
    assert abs(cs.objective - cp.objective) <= 2 * TOL * 1e3 * max(1.0, abs(cs.objective)) + cs.gap_bound + cp.gap_bound


@given(seeds, st.integers(1, 6), st.integers(1, 6))
def test_lambda_min_M_is_a_lower_bound(seed, m, n):
    """The certificate's λ_min(M) is on the safe side: ≤ the exact λ − σ_max(S) (P = 0) and ≤ the dense
    eigenvalue of M (P ≠ 0), by no more than its rounding bound; blocks give the largest block's σ_max."""
    rng = np.random.default_rng(seed)
    S1, S2 = rng.standard_normal((m, n)), rng.standard_normal((n, m))
    exact = 0.1 - max(scipy.linalg.svdvals(S1)[0], scipy.linalg.svdvals(S2)[0])
    got = lambda_min_M([S1, S2], 0.1, None)
    assert got <= exact and exact - got <= 10 * (2 * (m + n)) * np.finfo(float).eps * (0.1 + abs(exact) + 0.1)
    P = np.eye(m + n) * 0.01
    assert lambda_min_M(S1, 0.1, P) <= scipy.linalg.eigvalsh(optimality.certificate_matrix(S1, 0.1, P))[0]


# extraction by hooks ------------------------------------------------------------------------------------
TEXTS = ["Great fun.", "The plot made no sense and the ending was a mess.", "Sturdy build quality.",
         "I was bored within the first ten minutes."]
LABELS = [1, 0, 1, 0]


@pytest.fixture(scope="module")
def clf() -> models.PromptClassifier:
    return models.PromptClassifier.build(models.tiny_bert(torch.Generator().manual_seed(0)))


@pytest.fixture(scope="module")
def two_layers(clf) -> list[str]:
    return ["encoder.layer.0.attention.self.query.weight", "encoder.layer.1.attention.self.value.weight"]


@pytest.mark.parametrize("storage", ["factored", "block", "auto"])
def test_hook_extraction_matches_dense(clf, two_layers, storage):
    batch = clf.encode(TEXTS)
    G, f0 = entk.empirical_ntk(clf.model, clf.outputs, two_layers, batch, chunk=3)
    op, f1 = entk.empirical_ntk_blocks(clf.model, clf.outputs, two_layers, batch, chunk=3, storage=storage)
    kind = {"factored": FactoredBlock, "block": DenseBlock}.get(storage)
    assert kind is None or all(isinstance(b, kind) for b in op.blocks)
    close(op.dense(), G)
    close(f1, f0)


def test_hook_extraction_keeps_each_examples_own_tokens(clf, two_layers):
    """The factored blocks keep no padded position: at most Σ_i L_i tokens (the attention mask's ones), fewer than
    the N·L of the padded batch — and still the dense G (previous test)."""
    batch = clf.encode(TEXTS)
    op, _ = entk.empirical_ntk_blocks(clf.model, clf.outputs, two_layers, batch, chunk=3, storage="factored")
    mask = batch["attention_mask"]
    assert all(b.tokens <= int(mask.sum()) < mask.numel() for b in op.blocks)
    assert all(np.all(np.diff(b.offsets) <= mask.sum(dim=1).numpy()) for b in op.blocks)


@given(seeds)
def test_padded_tokens_drop_exactly(seed):
    """FactoredBlock.padded followed by without_zero_tokens (zero left factors, a whole example's included) is the
    same G, with the zero tokens gone."""
    rng = np.random.default_rng(seed)
    left, right = rng.standard_normal((3, 2, 4, 2)), rng.standard_normal((3, 4, 3))
    left[0, :, 2:] = 0.0
    left[1] = 0.0
    padded = FactoredBlock.padded(left, right)
    kept = padded.without_zero_tokens()
    assert kept.tokens == 2 + 0 + 4 and list(kept.offsets) == [0, 2, 2, 6]
    np.testing.assert_array_equal(kept.dense_rows(slice(None)), padded.dense_rows(slice(None)))
    close(padded.dense_rows(slice(None)), np.einsum("nkla,nlb->nkab", left, right))


def test_padded_factored_files_of_earlier_versions_load(tmp_path):
    """A file written before the token offsets (left_0 (N, K, L, m_t), right_0 (N, L, n_t)) loads as the same G."""
    rng = np.random.default_rng(3)
    left, right = rng.standard_normal((3, 2, 4, 2)), rng.standard_normal((3, 4, 3))
    np.savez(tmp_path / "old.npz", n_blocks=np.array(1), left_0=left, right_0=right, f0=np.zeros((3, 2)),
             Y=np.array([0, 1, 0]), loss=np.array("cross_entropy"), lam=np.array(0.1))
    close(load_instance(tmp_path / "old.npz").G.dense(), np.einsum("nkla,nlb->nkab", left, right))


@pytest.mark.parametrize("offsets, match", [([0, 2, 1], "rise from 0"), ([0, 2, 5], "rise from 0"),
                                            ([0.0, 3.0], "be an integer vector"), ([0], "be an integer vector")])
def test_bad_token_offsets_are_named(offsets, match):
    N = max(len(offsets) - 1, 1)
    block = FactoredBlock(np.ones((3, 2, 1)), np.ones((3, 1)), np.array(offsets))
    with pytest.raises(InstanceError, match=f"offsets_0 must {match}"):
        Instance(BlockSensing((block,)), np.zeros((N, 2)), np.zeros(N, dtype=int), "cross_entropy", 0.1)


def test_extracted_instances_certify_alike(clf, two_layers):
    dense = entk.extract_instance(clf, TEXTS, LABELS, two_layers, chunk=2)
    factored = entk.extract_instance(clf, TEXTS, LABELS, two_layers, chunk=2, storage="factored")
    assert factored.provenance["storage"] == "factored" and factored.shape == dense.shape
    result = solve_bm(factored, 3, rng=np.random.default_rng(0), device="cpu")
    cf, cd = certify_result(factored, result), certify_result(dense, result)
    assert cf.certified and cd.certified
    close(cf.objective, cd.objective)
    close(entk.test_accuracy(factored, result.delta), entk.test_accuracy(dense, result.delta))


def test_hook_extraction_needs_linear_weights(clf):
    with pytest.raises(entk.WeightSelectionError, match="nn.Linear"):
        entk.empirical_ntk_blocks(clf.model, clf.outputs, ["embeddings.word_embeddings.weight"],
                                  clf.encode(TEXTS[:1]))
    with pytest.raises(ValueError, match="storage"):
        entk.extract_instance(clf, TEXTS, LABELS, ["encoder.layer.0.attention.self.query.weight"], storage="sparse")


def test_other_solvers_and_second_order_test_accept_blocks():
    """The proximal solver, cvxpy (through the materialised sensing matrix, small sizes) and the SOSP test run on
    block storage and give what they give on the dense G."""
    from verify.solvers.cvxpy_sdp import solve_cvxpy
    from verify.solvers.prox import solve_prox
    from verify.sosp import hessian_min_eig

    rng = np.random.default_rng(4)
    op = random_block_sensing(rng, 2, 2, ("factored", "dense"), ((3, 2), (2, 3)), 2)
    Y = rng.integers(0, 2, 2)
    block = Instance(op, np.zeros((2, 2)), Y, "cross_entropy", 0.1)
    dense = Instance(op.dense(), np.zeros((2, 2)), Y, "cross_entropy", 0.1)
    p_block, p_dense = solve_prox(block, max_iter=200, history=False), solve_prox(dense, max_iter=200, history=False)
    close(p_block.objective, p_dense.objective)
    c_block = solve_cvxpy(block)
    assert abs(c_block.objective - solve_cvxpy(dense).objective) <= 1e-6
    Q = point(dense, 5)
    close(hessian_min_eig(block, Q, method="dense")[0], hessian_min_eig(dense, Q, method="dense")[0])


#: (m_t, n_t) of the factored blocks of ``test_block_solve_and_certificate_never_form_a_dense_delta``: enough blocks
#: that one dense (m, n) δ or S (2.9 MB) outweighs the per-block S_t and their SVDs on the path together
NO_DENSE_BLOCKS = ((150, 150),) * 4


def test_block_solve_and_certificate_never_form_a_dense_delta(monkeypatch):
    """solve_bm + certify_result on a block instance keep Q only: the result stores no δ, its lazy ``delta`` is
    never read on the way, and numpy's peak allocation (tracemalloc; torch's are not traced) stays below one
    (m, n) float64 matrix."""
    rng = np.random.default_rng(6)
    op = random_block_sensing(rng, 3, 2, ("factored",) * len(NO_DENSE_BLOCKS), NO_DENSE_BLOCKS, 2)
    inst = Instance(op, np.zeros((3, 2)), rng.integers(0, 2, 3), "cross_entropy", 0.05)
    dense_bytes = inst.m * inst.n * np.dtype(float).itemsize
    monkeypatch.setattr(SolveResult, "delta", property(lambda self: pytest.fail("δ (m, n) was formed")))
    tracemalloc.start()
    try:
        res = solve_bm(inst, 3, rng=np.random.default_rng(7), max_iter=50, device="cpu")
        cert = certify_result(inst, res)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.stored_delta is None and np.isfinite(cert.gap_bound)
    assert peak < dense_bytes, f"numpy peaked at {peak} bytes, a dense δ takes {dense_bytes}"


def test_dense_materialisation_is_refused_when_huge():
    op = BlockSensing((FactoredBlock.padded(np.zeros((64, 2, 1, 4096)), np.zeros((64, 1, 4096))),))
    with pytest.raises(MemoryError, match="GiB"):
        op.dense()
    assert op.dense_rows(slice(0, 1)).shape == (1, 2, 4096, 4096)


@given(seeds, st.integers(1, 5))
def test_gram_by_chunks(seed, N):
    """A Aᵀ assembled from chunks of one example (the off-diagonal chunk pairs included) equals the dense one."""
    op = random_block_sensing(np.random.default_rng(seed), N, 2, ("factored", "dense"), ((3, 2), (2, 2)), 2)
    Gm = op.dense().reshape(2 * N, -1)
    close(op.gram(chunk_bytes=1), Gm @ Gm.T)


@given(block_instance_pairs(), seeds)
def test_row_norms_radius_rademacher_and_seen_columns_agree(pair, seed):
    """The generalization quantities (R, the exact Lemma C.4 sup per sign draw, its Frobenius bound) and the
    columns A can see (Kim's sampled constants) are those of the dense G on block storage."""
    from theory import generalization as gen
    from theory.linearized_model import seen_columns
    dense, block = pair
    rng = np.random.default_rng(seed)
    close(block.G.row_norms_squared(), gen.row_norms_squared(dense.G))
    close(gen.sensing_radius(block.G), gen.sensing_radius(dense.G))
    signs = rng.choice([-1.0, 1.0], size=(3, dense.N, dense.K))
    close(gen.rademacher_sup(block.G, signs, 2.0), gen.rademacher_sup(dense.G, signs, 2.0))
    close(gen.rademacher_sup(block.G, signs[0], 2.0), gen.rademacher_sup(dense.G, signs[0], 2.0))
    close(gen.rademacher_frobenius_bound(block.G, 2.0), gen.rademacher_frobenius_bound(dense.G, 2.0))
    delta = rng.standard_normal((dense.m, dense.n))
    for G in (dense.G, block.G):
        A, cols = seen_columns(G)
        close(A @ delta.reshape(-1)[cols], lm.apply_A(dense.G, delta).reshape(-1))
    for t, (r, c) in enumerate(block.G.slices()):
        close(block.G.diagonal_block(t), dense.G[:, :, r, c])


@given(block_instance_pairs(), seeds)
def test_mu_klabjan_rule_runs_alike_on_blocks(pair, seed):
    """Mu–Klabjan's step-size rule (‖∇L‖_F from the diagonal blocks) gives the dense run's records on blocks."""
    from verify.experiments.mu_klabjan import lora_starts, run_rule
    dense, block = pair
    Q0 = lora_starts(dense, (1, 2), 1.0, np.random.default_rng(seed))
    a, b = run_rule(dense, Q0, 3, device="cpu"), run_rule(block, Q0, 3, device="cpu")
    for field in ("J", "J_next", "grad_sq", "eta", "V_sq", "gradL"):
        close(getattr(b, field), getattr(a, field))
