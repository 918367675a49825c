"""Decontamination against real GSM8K and HumanEval test items planted in real web documents."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamis import cli, config
from tamis.dedup.decontam import (
    BenchmarkSet,
    DecontamConfig,
    build_index,
    decontaminate,
    merge_stats,
    report,
    shingling,
)
from tamis.dedup.shingles import code_points, words
from tamis.errors import InputError
from tamis.pipelines import curate
from tamis.schema import documents


@pytest.fixture(scope="module")
def bench_dir(shared_data):
    return shared_data / "curation/decontam"


@pytest.fixture(scope="module")
def gsm8k(bench_dir):
    with gzip.open(bench_dir / "gsm8k_test.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(20), f, strict=False)]


@pytest.fixture(scope="module")
def web(shared_data):
    """Long English web documents (trafilatura evaluation pages)."""
    rows = []
    with gzip.open(shared_data / "curation/web_pool/pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["source"] == "trafilatura-eval" and 3000 < len(r["text"]) < 6000 and r["text"].isascii():
                rows.append({"id": r["id"], "text": r["text"]})
                if len(rows) == 6:
                    return rows
    raise AssertionError("the web pool has too few long English pages")


def make_cfg(bench_dir, **over) -> DecontamConfig:
    benchmarks = [BenchmarkSet(name="gsm8k", path=str(bench_dir / "gsm8k_test.jsonl.gz")),
                  BenchmarkSet(name="humaneval", path=str(bench_dir / "humaneval.jsonl.gz"))]
    return DecontamConfig(enabled=True, benchmarks=benchmarks, **over)


def plant(doc: str, passage: str) -> tuple[str, str, str]:
    """Put `passage` between two paragraphs near the middle of `doc`: (prefix, passage, suffix)."""
    cut = doc.index("\n", len(doc) // 2) + 1
    return doc[:cut], passage, "\n" + doc[cut:]


def first_words(text: str, n: int, cfg: DecontamConfig) -> str:
    """The shortest prefix of `text` holding exactly its first n words as decontamination sees them."""
    c = code_points([text], shingling(cfg))
    return text[: int(words(c).end[n - 1])]


def test_planted_question_in_a_long_document_is_dropped(bench_dir, gsm8k, web):
    cfg = make_cfg(bench_dir)
    item = gsm8k[7]
    question = item["text"][: item["question_chars"]]
    rows = [dict(r) for r in web]
    rows[2]["text"] = "".join(plant(rows[2]["text"], question))
    r = decontaminate(documents(rows), build_index(cfg), cfg.mode, cfg.min_kept_fraction)
    assert r.kept.column("id").to_pylist() == [x["id"] for i, x in enumerate(rows) if i != 2]
    gone = r.dropped.to_pylist()
    assert [(g["id"], g["stage"], g["reason"]) for g in gone] == [(rows[2]["id"], "decontaminate", "contaminated")]
    assert json.loads(gone[0]["detail"])["benchmarks"] == {"gsm8k": [item["id"]]}
    rep = report(r.stats)
    assert rep["gsm8k"] | {"leaked": None} == {"items": 1319, "items_short": 0, "items_leaked": 1, "leaked": None,
                                               "documents": 1, "dropped": 1, "cut": 0}
    assert rep["gsm8k"]["leaked"] == [item["id"]]
    assert rep["humaneval"]["items_leaked"] == rep["humaneval"]["documents"] == 0


def test_a_12_word_overlap_is_ignored_and_13_words_are_caught(bench_dir, gsm8k, web):
    cfg = make_cfg(bench_dir)
    index = build_index(cfg)
    text = gsm8k[3]["text"]
    docs = documents([{"id": f"n{n}", "text": "".join(plant(web[0]["text"], first_words(text, n, cfg) + "."))}
                      for n in (12, 13)])
    r = decontaminate(docs, index, "drop", 0.5)
    assert r.kept.column("id").to_pylist() == ["n12"]
    assert r.dropped.column("id").to_pylist() == ["n13"]


def test_matching_ignores_case_punctuation_and_spacing(bench_dir, gsm8k, web):
    cfg = make_cfg(bench_dir)
    question = gsm8k[5]["text"][: gsm8k[5]["question_chars"]]
    mangled = " ".join(question.upper().replace(",", " ;").split()).replace(" ", "  \n", 3)
    r = decontaminate(documents([{"id": "a", "text": "".join(plant(web[1]["text"], mangled))}]),
                      build_index(cfg), "drop", 0.5)
    assert r.kept.num_rows == 0


def test_cut_mode_removes_exactly_the_matched_span(bench_dir, gsm8k, web):
    cfg = make_cfg(bench_dir, mode="cut")
    item = gsm8k[0]
    question = item["text"][: item["question_chars"]]
    assert question.endswith("market?")  # its last word ends one character before the question does
    prefix, passage, suffix = plant(web[3]["text"], question)
    short = "Please help: " + question
    r = decontaminate(documents([{"id": "long", "text": prefix + passage + suffix}, {"id": "short", "text": short}]),
                      build_index(cfg), cfg.mode, cfg.min_kept_fraction)
    assert r.kept.to_pylist()[0]["text"] == prefix + "?" + suffix
    (gone,) = r.dropped.to_pylist()  # the short one kept less than min_kept_fraction
    assert gone["id"] == "short" and gone["text"] == short
    assert json.loads(gone["detail"])["kept_fraction"] < cfg.min_kept_fraction
    assert r.stats["gsm8k"] | {"leaked": []} == {"items": 1319, "items_short": 0, "documents": 2, "dropped": 1,
                                                 "cut": 1, "leaked": []}


def test_humaneval_code_is_caught_across_reformatting(bench_dir, web):
    cfg = make_cfg(bench_dir)
    with gzip.open(bench_dir / "humaneval.jsonl.gz", "rt", encoding="utf-8") as f:
        item = json.loads(next(f))
    code = item["text"].replace("    ", "\t")
    r = decontaminate(documents([{"id": "c", "text": "".join(plant(web[4]["text"], code))}] + web[:2]),
                      build_index(cfg), "drop", 0.5)
    assert r.dropped.column("id").to_pylist() == ["c"]
    assert item["id"] in report(r.stats)["humaneval"]["leaked"]  # HumanEval/20 shares a 13-gram with /0


def test_parquet_benchmark_with_joined_fields(tmp_path, web):
    path = tmp_path / "qa.parquet"
    answer = "The committee finally agreed that the bridge over the northern river should be rebuilt in stone by spring"
    pq.write_table(pa.table({"qid": ["q1", "q2"], "question": ["Who decided?", "When?"], "answer": [answer, "Soon."]}),
                   path)
    cfg = DecontamConfig(enabled=True, benchmarks=[BenchmarkSet(name="qa", path=str(path), text_fields=["question", "answer"], id_field="qid")])
    index = build_index(cfg)
    assert index.sizes == {"qa": 2} and index.short == {"qa": 1}
    r = decontaminate(documents([{"id": "d", "text": "".join(plant(web[0]["text"], answer))}]), index, "drop", 0.5)
    assert report(r.stats)["qa"]["leaked"] == ["q1"]


def test_stats_merge_across_batches():
    a = {"b": {"items": 5, "items_short": 1, "documents": 2, "dropped": 2, "cut": 0, "leaked": ["x", "y"]}}
    b = {"b": {"items": 5, "items_short": 1, "documents": 1, "dropped": 0, "cut": 1, "leaked": ["y", "z"]}}
    assert merge_stats(a, b) == {"b": {"items": 5, "items_short": 1, "documents": 3, "dropped": 2, "cut": 1,
                                       "leaked": ["x", "y", "z"]}}


def test_bad_benchmarks_are_refused_with_a_clear_error(tmp_path, bench_dir):
    def index_of(path, **kw):
        return build_index(DecontamConfig(enabled=True, benchmarks=[BenchmarkSet(name="b", path=str(path), **kw)]))

    with pytest.raises(InputError, match="does not exist"):
        index_of(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="no field 'question'"):
        index_of(bench_dir / "gsm8k_test.jsonl.gz", text_fields=["question"])
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputError, match="holds no items"):
        index_of(tmp_path / "empty.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    with pytest.raises(InputError, match="line 2"):
        index_of(tmp_path / "bad.jsonl")
    with pytest.raises(config.ConfigError, match="no benchmarks"):
        config.parse({"inputs": [{"path": "x"}], "output": "o", "decontaminate": {"enabled": True}})


def test_curate_drops_and_reports_leaks_in_the_manifest(tmp_path, bench_dir, gsm8k, web):
    src = tmp_path / "in"
    src.mkdir()
    rows = [dict(r) for r in web]
    item = gsm8k[11]
    rows[1]["text"] = "".join(plant(rows[1]["text"], item["text"][: item["question_chars"]]))
    (src / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = config.parse({
        "inputs": [{"path": str(src / "*.jsonl")}],
        "output": str(tmp_path / "run"),
        "runner": {"batch_size": 4},
        "decontaminate": {"enabled": True, "benchmarks": [
            {"name": "gsm8k", "path": str(bench_dir / "gsm8k_test.jsonl.gz")},
            {"name": "humaneval", "path": str(bench_dir / "humaneval.jsonl.gz")}]},
    })
    assert "decontaminate" in curate.stages(cfg)
    manifest = curate.run(cfg)
    assert manifest["counts"]["dropped_by_reason"] == {"contaminated": 1}
    assert manifest["counts"]["kept"] == len(rows) - 1
    leaks = manifest["decontamination"]
    assert leaks["gsm8k"]["leaked"] == [item["id"]] and leaks["gsm8k"]["documents"] == 1
    assert leaks["humaneval"]["items_leaked"] == 0 and leaks["humaneval"]["items"] == 164
    dropped = pq.read_table(tmp_path / "run" / "dropped").to_pylist()
    assert [d["id"] for d in dropped] == [rows[1]["id"]]


def test_cli_reports_leaked_items(tmp_path, bench_dir, gsm8k, web, capsys):
    docs = tmp_path / "docs.jsonl"
    planted = "".join(plant(web[0]["text"], gsm8k[2]["text"]))
    docs.write_text("".join(json.dumps(r) + "\n" for r in [{"id": "p", "text": planted}] + web[1:]))
    argv = ["decontam", "--benchmark", f"gsm8k={bench_dir / 'gsm8k_test.jsonl.gz'}",
            "--benchmark", f"humaneval={bench_dir / 'humaneval.jsonl.gz'}", "--docs", str(docs), "--json"]
    assert cli.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["documents"] == len(web)
    assert out["benchmarks"]["gsm8k"]["leaked"] == [gsm8k[2]["id"]]
    assert out["benchmarks"]["humaneval"]["items_leaked"] == 0
    assert cli.main(["decontam", "--benchmark", "nopath", "--docs", str(docs)]) == 2
    assert "NAME=PATH" in capsys.readouterr().err
