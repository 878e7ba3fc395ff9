"""Benchmarks of block and factored storage on the real all-MiniLM-L6-v2 (never timed assertions).

Run with ``pytest tests/benchmarks/test_bench_storage.py -m slow --benchmark-only``. Targets on 2 CPU cores:
- all 12 query/value matrices (``--weights "encoder.layer.*.attention.self.query.weight"
  "encoder.layer.*.attention.self.value.weight"``), N = 32: the instance written in ≤ 120 s and ≤ 1 GB on disk;
  its certified solve at r = 11 in ≤ 60 s with peak memory ≤ 2× the stored G;
- N = 1024 distinct training sentences of the shipped data set (1,088 in its train split) on the last layer
  (query + value), factored: extracted and certified in ≤ 10 minutes and ≤ 8 GB.
Peak memory of the certified solve is its growth above the loaded instance, the resident set size sampled in a
thread while it runs (``PeakMemory``; torch's allocations and the library code first paged in included).
``ru_maxrss`` would hide it: the process's maximum is reached earlier, while the model is loaded and the
instance extracted (and the memory freed since then is handed back first, else the solve reuses it unseen);
tracemalloc, which sees numpy's allocations but not torch's, inflates the resident set
by its own bookkeeping, so it is not run alongside. The all-layer solve is measured twice: the timed first solve
(library code paged in on first use included) and an untimed second one (``second_solve_growth_bytes``: the
working set of the solve itself). Elsewhere peak memory is ``ru_maxrss``; ``extra_info`` records it, the stored
bytes of G and the certificate.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import resource
import sys
import threading
import time

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
#: seconds between two samples of the resident set size in ``PeakMemory``
RSS_SAMPLE_SECONDS = 0.001


def peak_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else 1024 * rss


def current_rss_bytes() -> int:
    """The resident set size of this process now (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Context manager: ``rss``, the peak resident set size of its body above the value at entry, in bytes,
    sampled every ``RSS_SAMPLE_SECONDS`` by a thread (every allocation, torch's included; a spike shorter than
    the interval can be missed). On entry the memory freed earlier (e.g. by the extraction) is handed back to
    the system (glibc ``malloc_trim``), else the body reuses it unseen."""

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        ctypes.CDLL(ctypes.util.find_library("c")).malloc_trim(0)
        self._stop = threading.Event()
        self._base = self._peak = current_rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_SECONDS):
            self._peak = max(self._peak, current_rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.rss = max(self._peak, current_rss_bytes()) - self._base


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
    peak = PeakMemory()

    def solve():
        with peak:
            return certify_result(inst, solve_bm(inst, RANK, rng=np.random.default_rng(0), device="cpu"))

    c = benchmark.pedantic(solve, rounds=1, iterations=1)
    cold = peak.rss
    solve()  # again, untimed: the library code is paged in and first-use buffers exist now
    benchmark.extra_info.update(certified=c.certified, gap_bound=c.gap_bound, rank=c.rank,
                                stored_G_bytes=inst.G.nbytes, peak_growth_bytes=cold,
                                peak_growth_over_G=cold / inst.G.nbytes, second_solve_growth_bytes=peak.rss,
                                second_solve_growth_over_G=peak.rss / inst.G.nbytes)
    assert c.certified, c.reason


@pytest.mark.slow
def test_bench_last_layer_n1024(benchmark):
    clf = models.PromptClassifier.build(models.load_minilm())
    texts, labels = training_texts(N_LARGE)

    split = {}

    def extract_and_certify():
        t0 = time.perf_counter()
        inst = entk.extract_instance(clf, texts, labels, models.default_weight_names(clf.model), storage="factored")
        split["extraction_s"] = time.perf_counter() - t0
        c = certify_result(inst, solve_bm(inst, RANK, rng=np.random.default_rng(0), device="cpu"))
        split["solve_and_certificate_s"] = time.perf_counter() - t0 - split["extraction_s"]
        return inst, c

    inst, c = benchmark.pedantic(extract_and_certify, rounds=1, iterations=1)
    benchmark.extra_info.update(certified=c.certified, gap_bound=c.gap_bound, rank=c.rank,
                                stored_G_bytes=inst.G.nbytes, peak_rss_gib=peak_rss_bytes() / 2**30,
                                distinct_sentences=len(set(texts)), tokens=[b.tokens for b in inst.G.blocks],
                                **split)
    assert c.certified, c.reason
