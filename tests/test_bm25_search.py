"""`tamis search` and the retriever registry: results, snippets, JSON, batches, and one error line per bad input."""

import json
import os
import shutil

import pytest
from bm25_fixtures import real_corpus

from tamis import cli
from tamis.errors import InputError
from tamis.indexes import bm25
from tamis.retrievers.bm25 import BM25Retriever
from tamis.retrievers.registry import OPENERS, open_retriever
from tamis.retrievers.results import snippet


@pytest.fixture(scope="module")
def corpus(shared_data):
    return real_corpus(shared_data, code_docs=60)


@pytest.fixture(scope="module")
def index_dir(corpus, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("search") / "idx")
    bm25.save(bm25.build(corpus, bm25.BM25Config(store_text=True, shard_docs=50)), root)
    return root


@pytest.fixture(scope="module")
def bare_index_dir(corpus, tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("search") / "bare")
    bm25.save(bm25.build(corpus), root)
    return root


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_registry_opens_an_index_by_its_manifest_kind(index_dir):
    retriever = open_retriever(index_dir)
    assert isinstance(retriever, BM25Retriever) and "bm25-index" in OPENERS
    assert retriever.search(["apache license"], 3)[0][0]


def test_json_hits_are_the_retrievers_top_k_with_snippets(capsys, index_dir):
    code, out, _ = run_cli(capsys, "search", "--index", index_dir, "apache license software", "-k", 5, "--json")
    assert code == 0
    found = json.loads(out)
    ids, scores = BM25Retriever.open(index_dir).search(["apache license software"], 5)
    assert [h["id"] for h in found["hits"]] == ids[0]
    assert [h["score"] for h in found["hits"]] == pytest.approx(scores[0].tolist())
    assert found["text_stored"] and all("licen" in h["snippet"].lower() for h in found["hits"])


def test_text_output_shows_rank_id_score_and_snippet(capsys, index_dir):
    code, out, _ = run_cli(capsys, "search", "--index", index_dir, "police bridge", "-k", 2)
    lines = out.splitlines()
    assert code == 0 and lines[0] == "query: police bridge" and len(lines) == 3
    rank, doc, score, *text = lines[1].split()
    assert rank == "1." and float(score) > 0 and text


def test_an_index_without_text_says_so(capsys, bare_index_dir):
    code, out, _ = run_cli(capsys, "search", "--index", bare_index_dir, "police bridge", "-k", 2)
    assert code == 0 and "keeps no text" in out
    code, out, _ = run_cli(capsys, "search", "--index", bare_index_dir, "police bridge", "--json")
    found = json.loads(out)
    assert found["text_stored"] is False and found["hits"] and "snippet" not in found["hits"][0]


def test_a_queries_file_gives_one_json_line_per_query(capsys, index_dir, tmp_path):
    path = tmp_path / "q.jsonl"
    rows = [{"id": "a", "text": "apache license"}, {"_id": 7, "text": "police bridge"}, {"id": "c", "text": "the of"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = run_cli(capsys, "search", "--index", index_dir, "--queries", path, "-k", 3, "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in lines] == ["a", "7", "c"]
    assert len(lines[0]["hits"]) == 3 and lines[2]["hits"] == []  # only stopwords: nothing matches


def test_snippet_centres_on_a_query_word():
    text = "lorem ipsum " * 40 + "the Apache Licence applies here " + "dolor sit " * 40
    cut = snippet(text, "licences terms")
    assert "Licence" in cut and cut.startswith("…") and cut.endswith("…") and len(cut) <= 170
    assert snippet("short  text\n here", "x") == "short text here"


@pytest.fixture
def damaged(index_dir, tmp_path) -> str:
    root = str(tmp_path / "damaged")
    shutil.copytree(index_dir, root)
    path = os.path.join(root, "shards", "00000-00000", "data.npy")
    data = bytearray(open(path, "rb").read())
    data[-3] ^= 0x10
    open(path, "wb").write(bytes(data))
    return root


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["--index", "/nonexistent/idx", "x"], 3, "does not exist"),
        (["--index", "{damaged}", "x"], 4, "checksum"),
        (["--index", "{empty_dir}", "x"], 3, "not a finished index"),
        (["--index", "{index}", "   "], 2, "query is empty"),
        (["--index", "{index}", ""], 2, "query is empty"),
        (["--index", "{index}", "-k", "0", "x"], 2, "-k"),
        (["--index", "{index}", "-k", "-3", "x"], 2, "-k"),
        (["--index", "{index}", "-k", "10001", "x"], 2, "10000"),
        (["--index", "{index}"], 2, "either a query or --queries"),
        (["--index", "{index}", "--queries", "{bad_line}"], 3, ":2:"),
        (["--index", "{index}", "--queries", "{not_json}"], 3, "not JSON"),
        (["--index", "{index}", "--queries", "/nonexistent.jsonl"], 3, "does not exist"),
    ],
)
def test_bad_input_is_one_error_line_with_its_exit_code(capsys, index_dir, damaged, tmp_path, argv, code, needle):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "text": "x"}\n{"id": 2, "text": "  "}\n')
    (tmp_path / "nj.jsonl").write_text('{"id": 1, "text": "x"}\n{oops\n')
    paths = {
        "damaged": damaged,
        "empty_dir": str(tmp_path / "empty"),
        "index": index_dir,
        "bad_line": str(tmp_path / "bad.jsonl"),
        "not_json": str(tmp_path / "nj.jsonl"),
    }
    got, out, err = run_cli(capsys, "search", *[a.format(**paths) for a in argv])
    lines = err.strip().splitlines()
    assert got == code, err
    assert lines[0].startswith("tamis: error:") and needle in lines[0]
    assert all(line.startswith("tamis: ") for line in lines) and out == ""


def test_an_unknown_index_kind_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "curate_run"}))
    with pytest.raises(InputError, match="curate_run"):
        open_retriever(str(tmp_path))
