"""The BM25 kernel's pruning is exact: MaxScore and term-at-a-time give the brute-force top k, ties included."""

import json

import numpy as np
import pyarrow as pa
import pytest

from tamis.indexes import bm25
from tamis.io import manifest
from tamis.retrievers import bm25_kernel
from tamis.retrievers.bm25 import BM25Retriever

VOCAB = [f"w{i:03d}" for i in range(400)]


@pytest.fixture(scope="module")
def zipf_corpus() -> pa.Table:
    """12,000 short documents of Zipf-distributed words: long postings (so MaxScore windows and blocks are
    pruned) and many exact score ties (documents with the same length and counts)."""
    rng = np.random.default_rng(7)
    p = 1.0 / np.arange(1, len(VOCAB) + 1) ** 1.1
    p /= p.sum()
    texts = [" ".join(rng.choice(VOCAB, size=int(rng.integers(3, 30)), p=p)) for _ in range(12_000)]
    return pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts, "source": ["a", "b"] * 6_000})


@pytest.fixture(scope="module")
def zipf_queries() -> list[str]:
    rng = np.random.default_rng(8)
    return [" ".join(rng.choice(VOCAB[:120], size=int(rng.integers(1, 6)))) for _ in range(60)] + [
        "w000",  # the most common word alone
        "w000 w000 w001",  # a repeated word counts twice
        "w399 w000",
        "nothing matches this",
    ]


def brute_force(retriever: BM25Retriever, queries: list[str], k: int, allow: np.ndarray | None = None):
    """Every document's score by numpy, then the k best with ties by document order."""
    index = retriever.index
    out = []
    for q in queries:
        tids, weights = retriever.query_terms(q)
        scores, docs = [], []
        for base, shard in zip(retriever._bases, index.shards, strict=False):
            acc = np.zeros(shard.n_docs)
            for t, w in zip(tids, weights, strict=True):
                a, b = shard.indptr[t], shard.indptr[t + 1]
                acc[shard.indices[a:b]] += w * shard.data[a:b].astype(np.float64)
            hit = np.flatnonzero(acc != 0)
            scores.append(acc[hit])
            docs.append(hit + base)
        s, d = np.concatenate(scores), np.concatenate(docs)
        if allow is not None:
            keep = allow[d]
            s, d = s[keep], d[keep]
        order = np.lexsort((d, -s))[:k]
        shift = float(retriever._shift[tids] @ weights) if len(tids) else 0.0  # bm25l/bm25+: every document's
        out.append((d[order], s[order] + shift))
    return out


@pytest.mark.parametrize("variant", ["lucene", "bm25+", "okapi"])
@pytest.mark.parametrize("shard_docs", [12_000, 5_000])
@pytest.mark.parametrize("strategy", ["auto", "maxscore", "term-at-a-time", "dense"])
def test_every_strategy_gives_the_brute_force_top_k(zipf_corpus, zipf_queries, variant, shard_docs, strategy):
    retriever = BM25Retriever(bm25.build(zipf_corpus, bm25.BM25Config(variant=variant, shard_docs=shard_docs)))
    if retriever._strategy == bm25_kernel.DENSE:  # okapi's negative idf here: the retriever scores densely
        assert variant == "okapi" and (retriever.index.vocab.idf < 0).any()
        strategy = "dense"
    retriever._strategy = {
        "auto": bm25_kernel.AUTO,
        "maxscore": bm25_kernel.MAXSCORE,
        "term-at-a-time": bm25_kernel.TERM_AT_A_TIME,
        "dense": bm25_kernel.DENSE,
    }[strategy]
    for k in (1, 10, 100):
        positions, scores = retriever.search_positions(zipf_queries, k)
        for q, (want_docs, want_scores), got_docs, got_scores in zip(
            zipf_queries, brute_force(retriever, zipf_queries, k), positions, scores, strict=True
        ):
            assert got_docs.tolist() == want_docs.tolist(), (q, k)
            np.testing.assert_allclose(got_scores, want_scores, rtol=1e-12)


def test_maxscore_keeps_ties_in_document_order(zipf_corpus):
    retriever = BM25Retriever(bm25.build(zipf_corpus))
    retriever._strategy = bm25_kernel.MAXSCORE
    positions, scores = retriever.search_positions(["w000"], 50)
    ties = np.flatnonzero(np.diff(scores[0]) == 0)
    assert len(ties) > 10  # equal scores are common here ...
    assert all(positions[0][i] < positions[0][i + 1] for i in ties)  # ... and the earlier document comes first


def test_a_filter_is_exact_under_pruning(zipf_corpus, zipf_queries):
    retriever = BM25Retriever(bm25.build(zipf_corpus, bm25.BM25Config(shard_docs=5_000)))
    retriever._strategy = bm25_kernel.MAXSCORE
    allow = np.array([s == "b" for s in zipf_corpus["source"].to_pylist()])
    positions, _ = retriever.search_positions(zipf_queries, 10, where={"source": "b"})
    for got, (want, _) in zip(positions, brute_force(retriever, zipf_queries, 10, allow), strict=True):
        assert got.tolist() == want.tolist()


def test_query_terms_merges_repeats_and_drops_unknown_words():
    stream = np.array([5, 3, 5, -1, -2, -2, 7, -2], np.int64)
    tids, counts, bounds = bm25_kernel.query_terms(stream, 3)
    assert tids.tolist() == [3, 5, 7] and counts.tolist() == [1.0, 2.0, 1.0] and bounds.tolist() == [0, 2, 2, 3]


def test_posting_blocks_hold_each_blocks_max_and_last_document():
    rng = np.random.default_rng(0)
    df = np.array([0, 1, 63, 64, 65, 200, 0, 7])
    indptr = np.concatenate([[0], np.cumsum(df)])
    indices = np.concatenate([np.sort(rng.choice(1000, n, replace=False)) for n in df]).astype(np.int32)
    data = rng.random(indptr[-1]).astype(np.float32)
    block_max, block_last = bm25.posting_blocks(data, indices, indptr)
    want_max, want_last = [], []
    for t in range(len(df)):
        for a in range(indptr[t], indptr[t + 1], bm25.BLOCK):
            b = min(a + bm25.BLOCK, indptr[t + 1])
            want_max.append(data[a:b].max())
            want_last.append(indices[b - 1])
    assert block_max.tolist() == want_max and block_last.tolist() == want_last


def test_a_format_1_index_loads_with_its_blocks_computed(zipf_corpus, tmp_path):
    built = bm25.build(zipf_corpus.slice(0, 3_000))
    bm25.save(built, str(tmp_path))
    found = json.loads((tmp_path / "manifest.json").read_text())
    for entry in list(found["files"]):
        if entry["path"].endswith(("block_max.npy", "block_last.npy")):
            (tmp_path / entry["path"]).unlink()
            found["files"].remove(entry)
    body = {k: v for k, v in found.items() if k not in ("kind", "format_version", "versions", "files", "block")}
    body.pop(manifest.SELF_SHA)
    manifest.write_manifest(str(tmp_path), bm25.KIND, 1, body, found["files"])
    old = BM25Retriever.open(str(tmp_path))
    assert old.index.manifest["format_version"] == 1
    np.testing.assert_array_equal(old.index.shards[0].block_max, built.shards[0].block_max)
    queries = ["w000 w010", "w003"]
    assert old.search(queries, 10)[0] == BM25Retriever(built).search(queries, 10)[0]
