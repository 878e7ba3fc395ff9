"""Benchmarks of block and factored storage on the real all-MiniLM-L6-v2 (never timed assertions).

Run with ``pytest tests/benchmarks/test_bench_storage.py -m slow --benchmark-only``. Targets on 2 CPU cores:
- all 12 query/value matrices (``--weights "encoder.layer.*.attention.self.query.weight"
  "encoder.layer.*.attention.self.value.weight"``), N = 32: the instance written in ≤ 120 s and ≤ 1 GB on disk;
  its certified solve at r = 11 in ≤ 60 s with peak memory ≤ 2× the stored G;
- N = 1024 distinct training sentences of the shipped data set (1,088 in its train split) on the last layer
  (query + value), factored: extracted and certified in ≤ 10 minutes and ≤ 8 GB.
Peak memory is ``ru_maxrss`` of the process (torch's allocations included); ``extra_info`` records it, the
stored bytes of G and the certificate.
"""
from __future__ import annotations

import resource
import sys

import numpy as np
import pytest
import torch

from verify import data_text, entk, models
from verify.certify import certify_result
from verify.instance import load_instance
from verify.solvers.bm import solve_bm

ALL_LAYERS = ["encoder.layer.*.attention.self.query.weight", "encoder.layer.*.attention.self.value.weight"]
RANK = 11
N_ALL_LAYERS = 32
N_LARGE = 1024


def peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else 1024 * rss


def training_texts(n: int) -> tuple[list[str], list[int]]:
    """n distinct training sentences (drawn with default_rng(0))."""
    sample = data_text.sample_train(n, np.random.default_rng(0))
    assert len(set(sample.texts)) == n
    return list(sample.texts), list(sample.labels)


@pytest.fixture(scope="module")
def all_layer_file(tmp_path_factory):
    return tmp_path_factory.mktemp("all-layers") / "all.npz"


@pytest.mark.slow
def test_bench_all_layer_extraction(benchmark, all_layer_file):
    clf = models.PromptClassifier.build(models.load_minilm())
    names = entk.select_weights(clf.model, ALL_LAYERS)
    sample = data_text.sample_train(N_ALL_LAYERS, np.random.default_rng(0))

    def extract_and_write():
        inst = entk.extract_instance(clf, sample.texts, sample.labels, names, storage="auto")
        return inst.save(all_layer_file)

    path = benchmark.pedantic(extract_and_write, rounds=1, iterations=1)
    benchmark.extra_info.update(file_bytes=path.stat().st_size, peak_rss_gib=peak_rss_bytes() / 2**30,
                                threads=torch.get_num_threads(), matrices=len(names))
    assert len(names) == 12


@pytest.mark.slow
def test_bench_all_layer_certified_solve(benchmark, all_layer_file):
    if not all_layer_file.exists():
        pytest.skip("needs test_bench_all_layer_extraction first")
    inst = load_instance(all_layer_file)
    base = peak_rss_bytes()

    def solve():
        return certify_result(inst, solve_bm(inst, RANK, rng=np.random.default_rng(0), device="cpu"))

    c = benchmark.pedantic(solve, rounds=1, iterations=1)
    grown = peak_rss_bytes() - base
    benchmark.extra_info.update(certified=c.certified, gap_bound=c.gap_bound, rank=c.rank,
                                stored_G_bytes=inst.G.nbytes, peak_growth_bytes=grown,
                                peak_growth_over_G=grown / inst.G.nbytes)
    assert c.certified, c.reason


@pytest.mark.slow
def test_bench_last_layer_n1024(benchmark):
    clf = models.PromptClassifier.build(models.load_minilm())
    texts, labels = training_texts(N_LARGE)

    def extract_and_certify():
        inst = entk.extract_instance(clf, texts, labels, models.default_weight_names(clf.model), storage="factored")
        return inst, certify_result(inst, solve_bm(inst, RANK, rng=np.random.default_rng(0), device="cpu"))

    inst, c = benchmark.pedantic(extract_and_certify, rounds=1, iterations=1)
    benchmark.extra_info.update(certified=c.certified, gap_bound=c.gap_bound, rank=c.rank,
                                stored_G_bytes=inst.G.nbytes, peak_rss_gib=peak_rss_bytes() / 2**30,
                                distinct_sentences=len(set(texts)))
    assert c.certified, c.reason
