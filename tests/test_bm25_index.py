import json
import os

import numpy as np
import pyarrow as pa
import pytest
from bm25_fixtures import queries_from, real_corpus

from tamis.errors import InputError, IntegrityError
from tamis.indexes import bm25
from tamis.indexes.analysis import Analyzer
from tamis.retrievers.bm25 import BM25Retriever


@pytest.fixture(scope="module")
def corpus(shared_data):
    return real_corpus(shared_data)


@pytest.fixture(scope="module")
def queries(corpus):
    return queries_from(corpus)


def dense(retriever: BM25Retriever, query: str, ids: list[str]) -> np.ndarray:
    """Every document's score for `query` (0 for documents that match nothing)."""
    hits, scores = retriever.search([query], k=len(ids))
    pos = {d: i for i, d in enumerate(ids)}
    out = np.zeros(len(ids))
    out[[pos[h] for h in hits[0]]] = scores[0]
    return out


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-6), ("float32", 1e-6)])
def test_okapi_equals_rank_bm25(corpus, queries, dtype, tol):
    from rank_bm25 import BM25Okapi

    analyzer = Analyzer()
    texts, ids = corpus["text"].to_pylist(), corpus["id"].to_pylist()
    reference = BM25Okapi([analyzer.terms(t) for t in texts])
    retriever = BM25Retriever(bm25.build(corpus, bm25.BM25Config(variant="okapi", dtype=dtype)))
    assert corpus.num_rows == 300
    for q in queries:
        expected = reference.get_scores(analyzer.terms(q))
        got = dense(retriever, q, ids)
        if dtype == "float64":
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol)
        else:  # float32 storage: same to 1e-6 relative
            np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)
        assert np.count_nonzero(expected) > 0 or q == "the of and"


@pytest.mark.parametrize("variant", ["lucene", "robertson", "atire", "bm25l", "bm25+"])
def test_variants_equal_bm25s(corpus, queries, variant):
    import bm25s

    analyzer = Analyzer()
    texts, ids = corpus["text"].to_pylist(), corpus["id"].to_pylist()
    reference = bm25s.BM25(method=variant, k1=1.2, b=0.6, delta=0.7)
    reference.index([analyzer.terms(t) for t in texts], show_progress=False)
    config = bm25.BM25Config(variant=variant, k1=1.2, b=0.6, delta=0.7)
    retriever = BM25Retriever(bm25.build(corpus, config))
    for q in queries:
        terms = [t for t in analyzer.terms(q) if t in reference.vocab_dict]  # repeats count, as in Lucene
        if not terms:
            continue
        expected = reference.get_scores(terms)
        got = dense(retriever, q, ids)
        matched = got != 0
        np.testing.assert_allclose(got[matched], expected[matched], rtol=1e-6, atol=1e-6)
        if variant not in ("bm25l", "bm25+"):  # there bm25s gives every document the absent-term score
            assert not expected[~matched].any()


def test_stopword_only_unknown_and_empty_queries_return_empty_results(corpus):
    retriever = BM25Retriever(bm25.build(corpus))
    ids, scores = retriever.search(["the of and to", "zzqxj-unknownterm blorptastic", "", "license"], k=5)
    assert ids[:3] == [[], [], []] and all(len(s) == 0 for s in scores[:3])
    assert len(ids[3]) == 5


def test_k_larger_than_corpus_returns_every_matching_document_in_order(corpus):
    retriever = BM25Retriever(bm25.build(corpus))
    ids, scores = retriever.search(["license software"], k=10 * corpus.num_rows)
    assert 0 < len(ids[0]) <= corpus.num_rows and len(set(ids[0])) == len(ids[0])
    assert np.all(np.diff(scores[0]) <= 0)


def test_empty_corpus_is_refused(corpus):
    with pytest.raises(InputError, match="no documents"):
        bm25.build(corpus.slice(0, 0))


def test_batch_search_equals_one_query_at_a_time(corpus, queries):
    retriever = BM25Retriever(bm25.build(corpus))
    batch_ids, batch_scores = retriever.search(queries, k=7)
    for q, ids, scores in zip(queries, batch_ids, batch_scores, strict=True):
        one_ids, one_scores = retriever.search([q], k=7)
        np.testing.assert_allclose(scores, one_scores[0])
        assert ids == one_ids[0]


def test_sharded_search_gives_the_unsharded_scores(corpus, queries):
    whole = BM25Retriever(bm25.build(corpus))
    sharded = BM25Retriever(bm25.build(corpus, bm25.BM25Config(shard_docs=37)))
    assert len(sharded.index.shards) == 9
    ids = corpus["id"].to_pylist()
    for q in queries:
        np.testing.assert_allclose(dense(sharded, q, ids), dense(whole, q, ids), rtol=1e-6)
        top_whole, top_sharded = whole.search([q], 10)[1][0], sharded.search([q], 10)[1][0]
        np.testing.assert_allclose(top_sharded, top_whole, rtol=1e-6)


def test_metadata_filter_keeps_only_matching_documents(corpus):
    retriever = BM25Retriever(bm25.build(corpus))
    source = dict(zip(corpus["id"].to_pylist(), corpus["source"].to_pylist(), strict=True))
    everything = retriever.search(["license file data"], k=300)[0][0]
    assert {source[d] for d in everything} == {"code", "web"}
    web = retriever.search(["license file data"], k=300, where={"source": "web"})[0][0]
    assert web and {source[d] for d in web} == {"web"}
    assert web == [d for d in everything if source[d] == "web"]


def test_save_and_load_round_trip(corpus, queries, tmp_path):
    built = bm25.build(corpus, bm25.BM25Config(variant="bm25l", shard_docs=100))
    bm25.save(built, str(tmp_path))
    loaded = BM25Retriever.open(str(tmp_path))
    assert isinstance(loaded.index.shards[0].data, np.memmap)
    ids, scores = BM25Retriever(built).search(queries, 10)
    ids2, scores2 = loaded.search(queries, 10)
    assert ids == ids2
    for a, b in zip(scores, scores2, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not any(name.startswith(("tmp", ".")) or ".tmp-" in name for name in os.listdir(tmp_path))


def _flip_byte(path: str, at: float) -> None:
    data = bytearray(open(path, "rb").read())
    data[int(len(data) * at)] ^= 0x01
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("rel", ["vocab.arrow", "data.npy", "indices.npy", "indptr.npy", "docs.arrow", "manifest.json"])
@pytest.mark.parametrize("at", [0.05, 0.6, 0.999])
def test_a_flipped_byte_in_any_file_is_refused(corpus, tmp_path, rel, at):
    bm25.save(bm25.build(corpus.slice(0, 60)), str(tmp_path))
    path = os.path.join(tmp_path, rel if rel in ("vocab.arrow", "manifest.json") else f"shards/00000-00000/{rel}")
    _flip_byte(path, at)
    with pytest.raises(IntegrityError):
        bm25.load(str(tmp_path))


def test_a_newer_format_is_refused(corpus, tmp_path):
    bm25.save(bm25.build(corpus.slice(0, 20)), str(tmp_path))
    path = tmp_path / "manifest.json"
    found = json.loads(path.read_text())
    found["format_version"] = bm25.FORMAT_VERSION + 1
    path.write_text(json.dumps(found))
    with pytest.raises(IntegrityError, match=f"format version {bm25.FORMAT_VERSION + 1}") as refused:
        bm25.load(str(tmp_path))
    assert "upgrade" in refused.value.hint


def test_docstore_keeps_text_when_asked(corpus):
    index = bm25.build(corpus.slice(0, 10), bm25.BM25Config(store_text=True))
    assert index.shards[0].docs["text"].to_pylist() == corpus.slice(0, 10)["text"].to_pylist()
    assert "text" not in bm25.build(corpus.slice(0, 10)).shards[0].docs.column_names


def test_a_corpus_of_empty_texts_indexes_and_matches_nothing():
    docs = pa.table({"id": ["a", "b"], "text": ["", "the of"]})
    retriever = BM25Retriever(bm25.build(docs))
    ids, scores = retriever.search(["anything", "the"], 3)
    assert ids == [[], []] and len(scores[0]) == len(scores[1]) == 0
