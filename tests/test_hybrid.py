"""Hybrid retrieval: RRF and score fusion by hand, the refusal of indexes over different documents, end to end."""

import numpy as np
import pyarrow as pa
import pytest
from dense_fixtures import embedder, tiny_corpus, tiny_queries

from tamis.errors import ConfigError, IntegrityError
from tamis.indexes import bm25, dense
from tamis.retrievers.bm25 import BM25Retriever
from tamis.retrievers.dense import DenseRetriever
from tamis.retrievers.hybrid import HybridConfig, HybridRetriever, rrf, score_fusion


class Fixed:
    """A retriever that answers every query with the same list."""

    def __init__(self, ids, scores, all_ids=None):
        self.hits = (ids, np.asarray(scores, float))
        self.index = type("I", (), {"ids": list(all_ids or ids)})()

    def search(self, queries, k=10, vectors=None):
        return [self.hits[0][:k] for _ in queries], [self.hits[1][:k] for _ in queries]

    def encode(self, queries):
        return np.zeros((len(queries), 2), np.float32)


def test_rrf_sums_reciprocal_ranks():
    ids, scores = rrf(["a", "b", "c"], [9, 5, 1], ["c", "a"], [0.9, 0.1], HybridConfig(k=60))
    assert ids == ["a", "c", "b"]
    assert scores == pytest.approx([1 / 61 + 1 / 62, 1 / 63 + 1 / 61, 1 / 62])
    assert rrf(["a", "b"], [2, 1], ["b", "a"], [2, 1], HybridConfig(k=0))[1] == pytest.approx([1.5, 1.5])


def test_score_fusion_min_max_normalizes_then_weights():
    ids, scores = score_fusion(["a", "b", "c"], [10, 6, 2], ["c", "b"], [0.8, 0.4], HybridConfig(method="score", weight=0.75))
    # bm25 normalized: a 1, b .5, c 0; dense normalized: c 1, b 0
    assert dict(zip(ids, scores, strict=True)) == pytest.approx({"a": 0.25, "b": 0.125, "c": 0.75})
    assert ids[0] == "c"
    only = score_fusion(["a"], [3.0], [], [], HybridConfig(method="score", weight=0.5))
    assert only[0] == ["a"] and only[1] == pytest.approx([0.5])


def test_the_hybrid_cuts_to_k_and_checks_its_config():
    both = HybridRetriever(Fixed(["a", "b", "c"], [3, 2, 1]), Fixed(["c", "b", "a"], [3, 2, 1]))
    ids, scores = both.search(["q", "r"], k=2)
    assert [len(i) for i in ids] == [2, 2] and all(len(s) == 2 for s in scores)
    with pytest.raises(ConfigError, match="weight"):
        HybridConfig(weight=1.5)
    with pytest.raises(ConfigError, match="'k'"):
        both.search(["q"], k=0)


def test_indexes_over_different_documents_are_refused():
    with pytest.raises(IntegrityError, match="only in BM25: \\['d'\\].*only in dense: \\['e'\\]"):
        HybridRetriever(Fixed(["a"], [1], all_ids=["a", "b", "d"]), Fixed(["a"], [1], all_ids=["a", "b", "e"]))
    with pytest.raises(IntegrityError):  # the same set size but one id repeated is still different
        HybridRetriever(Fixed(["a"], [1], all_ids=["a", "a"]), Fixed(["a"], [1], all_ids=["a", "b"]))


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("hybrid") / "dense")
    dense.build(tiny_corpus(), root, dense.DenseConfig(device="cpu"), embedder())
    return BM25Retriever(bm25.build(tiny_corpus())), DenseRetriever(dense.load(root), embedder=embedder(), device="cpu")


def test_bm25_and_dense_over_the_same_corpus_fuse(real):
    sparse, dense_retriever = real
    hybrid = HybridRetriever(sparse, dense_retriever)
    ids, _ = hybrid.search(tiny_queries(), k=3)
    assert ids[0][0] in {"d1", "d6"} and all(len(set(i)) == len(i) <= 3 for i in ids)
    vectors = hybrid.encode(tiny_queries())
    assert hybrid.search(tiny_queries(), k=3, vectors=vectors)[0] == ids


def test_a_bm25_index_of_a_subset_is_refused(real):
    _, dense_retriever = real
    subset = BM25Retriever(bm25.build(tiny_corpus().slice(0, 11)))
    with pytest.raises(IntegrityError, match="do not hold the same ids"):
        HybridRetriever(subset, dense_retriever)
    renamed = tiny_corpus().set_column(0, "id", pa.array([f"x{i}" for i in range(12)]))
    with pytest.raises(IntegrityError):
        HybridRetriever(BM25Retriever(bm25.build(renamed)), dense_retriever)


def test_tamis_search_opens_a_dense_index_and_fuses_it_with_bm25(tmp_path, capsys):
    import json

    from tamis.cli import main

    dense_root = str(tmp_path / "dense")
    dense.build(tiny_corpus(), dense_root, dense.DenseConfig(device="cpu"), embedder())
    bm25.save(bm25.build(tiny_corpus(), bm25.BM25Config(store_text=True)), str(tmp_path / "bm25"))
    query = tiny_queries()[0]
    assert main(["search", "--index", dense_root, query, "-k", "3", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert len(alone["hits"]) == 3 and alone["hits"][0]["id"] in {"d1", "d6"}
    assert main(["search", "--index", str(tmp_path / "bm25"), "--index", dense_root, query, "-k", "3", "--json"]) == 0
    fused = json.loads(capsys.readouterr().out)
    assert fused["hits"][0]["id"] in {"d1", "d6"} and fused["text_stored"] and "snippet" in fused["hits"][0]
    assert main(["search", "--index", dense_root, "--index", dense_root, query]) == 2
