"""The Beam build (`tamis index bm25`) and `tamis eval retrieval`: same scores as the in-memory build, refusals."""

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bm25_fixtures import queries_from, real_corpus

from tamis import cli
from tamis.errors import InputError, IntegrityError
from tamis.eval.metrics import ranking
from tamis.eval.retrieval import load_beir
from tamis.indexes import bm25
from tamis.retrievers.bm25 import BM25Retriever

BEIR_TINY = Path(__file__).parent / "data" / "beir_tiny"


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def corpus(shared_data) -> pa.Table:
    return real_corpus(shared_data)


@pytest.fixture(scope="module")
def inputs(corpus, tmp_path_factory) -> list[str]:
    """The corpus split into a JSONL file and a Parquet file (its `source` column becomes the field `kind`)."""
    folder = tmp_path_factory.mktemp("inputs")
    ids, texts, kinds = (corpus[c].to_pylist() for c in ("id", "text", "source"))
    rows = [{"id": i, "text": t, "kind": k} for i, t, k in zip(ids, texts, kinds, strict=True)]
    jsonl, parquet = folder / "a.jsonl", folder / "b.parquet"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:170]), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows[170:]), parquet)
    return [str(jsonl), str(parquet)]


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> tuple[str, dict]:
    """One Beam build through the command, in shards of 40 documents (5 from the JSONL file, 4 from the Parquet)."""
    root = str(tmp_path_factory.mktemp("index") / "bm25")
    code, out, err = run_cli("index", "bm25", "--output", root, "--shard-docs", 40, *inputs)
    assert code == 0, err
    return root, json.loads(out.strip().splitlines()[-1])


def test_the_command_reports_what_it_built(built, corpus):
    root, summary = built
    assert summary["docs"] == corpus.num_rows and summary["shards"] == 9 and summary["error_records"] == 0
    found = bm25.load(root).manifest
    assert found["format_version"] == bm25.FORMAT_VERSION and found["counts"]["docs"] == corpus.num_rows
    assert {f["path"] for f in found["files"]} >= {"vocab.arrow", "shards/00001-00003/data.npy"}
    assert not os.path.exists(os.path.join(root, "_tmp"))


def test_beam_shards_score_exactly_like_one_in_memory_index(built, corpus):
    sharded = BM25Retriever.open(built[0])
    whole = BM25Retriever(bm25.build(corpus))
    assert len(sharded.index.shards) == 9 and len(whole.index.shards) == 1
    queries = queries_from(corpus)
    ids_s, scores_s = sharded.search(queries, k=corpus.num_rows)
    ids_w, scores_w = whole.search(queries, k=corpus.num_rows)
    for a, b, sa, sb in zip(ids_s, ids_w, scores_s, scores_w, strict=True):
        assert dict(zip(a, sa.tolist(), strict=True)) == pytest.approx(dict(zip(b, sb.tolist(), strict=True)), rel=1e-6)
    top_s, top_w = sharded.search(queries, 10), whole.search(queries, 10)
    for sa, sb in zip(top_s[1], top_w[1], strict=True):
        np.testing.assert_allclose(sa, sb, rtol=1e-6)


def test_metadata_filter_reads_the_input_records_other_fields(built, corpus):
    retriever = BM25Retriever.open(built[0])
    kind = dict(zip(corpus["id"].to_pylist(), corpus["source"].to_pylist(), strict=True))
    hits = retriever.search(["license data file"], k=300, where={"kind": "web"})[0][0]
    assert hits and {kind[d] for d in hits} == {"web"}


def test_an_existing_index_is_not_overwritten_without_asking(built, inputs):
    code, _, err = run_cli("index", "bm25", "--output", built[0], *inputs)
    assert code == 2 and "--overwrite" in err


@pytest.mark.parametrize("content", ["", "not json\n{]\n"])
def test_inputs_without_documents_are_refused(tmp_path, content):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(content)
    code, _, err = run_cli("index", "bm25", "--output", tmp_path / "index", empty)
    assert code == InputError.exit_code and "no document" in err
    assert not (tmp_path / "index" / "manifest.json").exists()


@pytest.mark.parametrize("rel", ["vocab.arrow", "data.npy", "indices.npy", "indptr.npy", "docs.arrow", "manifest.json"])
def test_a_flipped_byte_in_each_file_of_a_beam_index_is_refused(built, tmp_path, rel):
    root = tmp_path / "copy"
    shutil.copytree(built[0], root)
    path = root / (rel if rel in ("vocab.arrow", "manifest.json") else f"shards/00001-00002/{rel}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        bm25.load(str(root))
    code, _, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index", root, "--json")
    assert code == IntegrityError.exit_code and "tamis: error:" in err


def _run(ranked: list[str]) -> dict[str, float]:
    return {d: float(len(ranked) - i) for i, d in enumerate(ranked)}  # best first


def test_ndcg_and_recall_match_a_hand_computed_case():
    qrels = {"a": 2, "b": 1, "c": 0, "d": 1}
    run = {"q": _run(["x", "b", "a", "c"])}
    dcg = 1 / np.log2(3) + 2 / np.log2(4)  # b at rank 2, a at rank 3; c is judged not relevant
    ideal = 2 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)
    assert ranking(run, {"q": qrels}, 10, 100) == pytest.approx({"ndcg@10": dcg / ideal, "recall@100": 2 / 3})
    assert ranking(run, {"q": qrels}, 2, 2)["ndcg@2"] == pytest.approx((1 / np.log2(3)) / (2 + 1 / np.log2(3)))
    assert ranking(run, {"q": {"c": 0}}, 10, 100)["ndcg@10"] == 0.0
    both = ranking(run, {"q": qrels, "missing": {"a": 1}}, 10, 100)  # a judged query without hits counts 0
    assert both["ndcg@10"] == pytest.approx(dcg / ideal / 2)


def test_ties_are_ordered_as_trec_eval_orders_them():
    # trec_eval breaks score ties by document id, descending: "b" ranks above "a" whatever the list order
    qrels = {"q": {"a": 1}}
    assert ranking({"q": {"a": 1.0, "b": 1.0}}, qrels, 1, 1)["ndcg@1"] == 0.0
    assert ranking({"q": {"b": 1.0, "a": 1.0}}, qrels, 1, 1)["ndcg@1"] == 0.0


def _ndcg(retriever, data) -> float:
    qids = list(data.queries)
    ids, scores = retriever.search([data.queries[q] for q in qids], 100)
    run = {q: dict(zip(i, s.tolist(), strict=True)) for q, i, s in zip(qids, ids, scores, strict=True)}
    return ranking(run, {q: data.qrels[q] for q in qids})["ndcg@10"]


def test_eval_retrieval_prints_the_fields_on_a_beir_folder(tmp_path):
    code, out, err = run_cli(
        "eval", "retrieval", "--beir", BEIR_TINY, "--retriever", "bm25", "--json", "--min-time", 0.01
    )
    assert code == 0, err
    result = json.loads(out)
    assert {"ndcg@10", "recall@100", "qps", "build_s", "index_bytes", "queries"} <= set(result)
    data = load_beir(BEIR_TINY)
    assert result["queries"] == 4 == len(data.queries)  # q5 has no judgment
    assert result["ndcg@10"] == pytest.approx(_ndcg(BM25Retriever(bm25.build(data.corpus)), data)) and 0 < result["recall@100"] <= 1
    assert result["qps"] > 0 and result["index_bytes"] > 0


def test_eval_retrieval_builds_then_loads_a_saved_index(tmp_path):
    first = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index", tmp_path / "i", "--json", "--min-time", 0.01)
    second = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index", tmp_path / "i", "--json", "--min-time", 0.01)
    a, b = json.loads(first[1]), json.loads(second[1])
    assert "build_s" in a and "load_s" in b and a["ndcg@10"] == b["ndcg@10"]


def test_eval_retrieval_refuses_a_folder_without_qrels(tmp_path):
    code, _, err = run_cli("eval", "retrieval", "--beir", tmp_path, "--json")
    assert code == InputError.exit_code and "qrels" in err


def test_eval_retrieval_applies_the_index_config(tmp_path):
    config = tmp_path / "bm25.yaml"
    config.write_text("bm25:\n  variant: okapi\n  k1: 0.9\n  analysis:\n    stemmer: none\n    stopwords: none\n")
    code, out, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index-config", config, "--json")
    assert code == 0, err
    data = load_beir(BEIR_TINY)
    retriever = BM25Retriever(bm25.build(data.corpus, bm25.load_config(str(config))))
    assert retriever.index.config.variant == "okapi" and retriever.analyzer.config.stemmer == "none"
    ndcg = _ndcg(retriever, data)
    default = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--json")[1]
    assert json.loads(out)["ndcg@10"] == pytest.approx(ndcg) != json.loads(default)["ndcg@10"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("variant: bm99\n")
    code, _, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index-config", bad, "--json")
    assert code == 2 and "variant" in err


def test_eval_retrieval_refuses_an_index_of_another_corpus(tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"x{i}", "text": f"other text {i}"}) + "\n"
                                                for i in range(5)))
    (other / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "other"}) + "\n")
    (other / "qrels").mkdir()
    (other / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tx1\t1\n")
    assert run_cli("eval", "retrieval", "--beir", other, "--index", tmp_path / "i", "--json", "--min-time", 0.01)[0] == 0
    code, _, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--index", tmp_path / "i", "--json")
    assert code == 2 and "not this BEIR corpus" in err
