"""The shipped sentiment data set (verify/data/sentiment.tsv): size, balance, splits, uniqueness, labels."""
from __future__ import annotations

import csv
import re
from collections import Counter
from itertools import combinations

import pytest
import torch

from verify import data_text, models, real_task, report
from verify.claims import entk_claims

#: requirements on the shipped file (issue 11 §2): at least this many rows, and this many held out
MIN_ROWS, MIN_TEST = 1300, 250
#: sentence length in words, inclusive
MIN_WORDS, MAX_WORDS = 3, 40
#: two sentences may not open with the same this-many normalised words (near-duplicate check) ...
PREFIX_WORDS = 6
#: ... nor share this fraction of their word sets (Jaccard index of the normalised words)
NEAR_DUPLICATE_JACCARD = 0.6
#: the first this-many data rows are the original set, kept unchanged; it has deliberate contrast pairs
#: ("I enjoyed / hated every minute of this show.") that the two checks above exempt, inside it only
ORIGINAL_ROWS = 240


def _rows() -> list[dict[str, str]]:
    with open(data_text.DATA_PATH, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def _normalised(text: str) -> str:
    """Lower case, punctuation dropped (apostrophes kept), whitespace collapsed."""
    return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())


def test_columns_splits_and_labels_are_valid():
    rows = _rows()
    assert all(set(r) == {"split", "label", "text"} for r in rows)
    assert {r["split"] for r in rows} == set(data_text.SPLITS)
    assert {r["label"] for r in rows} == set(data_text.LABEL_NAMES)
    assert all(r["text"] and r["text"].strip() == r["text"] and "\t" not in r["text"] for r in rows)


def test_size_and_balance_per_split():
    train, test = data_text.load_sentiment("train"), data_text.load_sentiment("test")
    assert len(train) + len(test) == len(_rows()) >= MIN_ROWS
    assert len(test) >= MIN_TEST
    for split in (train, test):
        assert 2 * sum(split.labels) == len(split), "classes must be exactly balanced within each split"


def test_sentence_lengths():
    lengths = [len(r["text"].split()) for r in _rows()]
    assert MIN_WORDS <= min(lengths) and max(lengths) <= MAX_WORDS


def test_no_duplicates_or_near_duplicates():
    norm = [_normalised(r["text"]) for r in _rows()]
    assert len(set(norm)) == len(norm), [t for t, c in Counter(norm).items() if c > 1]
    rows_by_opening: dict[tuple[str, ...], list[int]] = {}
    for i, t in enumerate(norm):
        rows_by_opening.setdefault(tuple(t.split()[:PREFIX_WORDS]), []).append(i)
    shared = [rows for rows in rows_by_opening.values() if len(rows) > 1 and max(rows) >= ORIGINAL_ROWS]
    assert not shared, [[norm[i] for i in rows] for rows in shared]
    words = [set(t.split()) for t in norm]
    close = [(norm[a], norm[b]) for a, b in combinations(range(len(norm)), 2)
             if b >= ORIGINAL_ROWS and len(words[a] & words[b]) >= NEAR_DUPLICATE_JACCARD * len(words[a] | words[b])]
    assert not close, close


def test_unknown_label_is_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("split\tlabel\ttext\ntrain\tneutral\tIt was fine.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unknown label 'neutral'"):
        data_text.load_sentiment("train", path=bad)


def test_report_cache_is_keyed_by_the_data():
    assert report._cache_key()["data_sha256"] == data_text.data_sha256()


def test_real_instance_cache_folder_is_keyed_by_the_data(tmp_path, monkeypatch):
    """The eNTK claims' instance cache lives in a folder named after the data hash and the storage (tiny BERT stands in)."""
    monkeypatch.setattr(real_task, "load_text_model",
                        lambda name: models.tiny_bert(torch.Generator().manual_seed(0)))
    task = entk_claims._task.__wrapped__(str(tmp_path), 0)
    folder = tmp_path / f"data{data_text.data_sha256()[:12]}-minilm-n{entk_claims.N_TRAIN}-seed0-auto"
    assert sorted(f.name for f in folder.iterdir()) == ["test.npz", "train.npz"]
    assert task.train.provenance["data_sha256"] == data_text.data_sha256()
