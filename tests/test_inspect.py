"""`tamis inspect` shows a run's documents with their scores and reasons; `tamis diff` says what a moved
threshold changed: counts and drops per reason (A, B, delta) that equal the manifests, and the documents that
moved between kept and dropped."""

import json

import pytest
from test_report_fixtures import demo_run, moved_threshold_run

from tamis import cli
from tamis.io import run_dir
from tamis.report import diff, documents


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    run, _ = demo_run(tmp_path_factory)
    return run, run_dir.load(str(run))


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    run = moved_threshold_run(tmp_path_factory)
    return run, run_dir.load(str(run))


def test_inspect_by_reason(demo, capsys):
    run, m = demo
    code, out, _ = run_cli(capsys, "inspect", run, "--reason", "gopher_short_doc", "-n", 3, "--chars", 50, "--json")
    assert code == 0
    found = json.loads(out)
    assert found["matched"] == m["counts"]["dropped_by_reason"]["gopher_short_doc"]
    assert len(found["documents"]) == 3
    for d in found["documents"]:
        assert d["status"] == "dropped" and d["reason"] == "gopher_short_doc" and d["stage"] == "filter"
        assert d["scores"]["gopher_quality.word_count"] < 50 and len(d["text"]) <= 50 <= d["chars"]
    code, out, _ = run_cli(capsys, "inspect", run, "--reason", "gopher_short_doc", "-n", 1)
    assert code == 0 and "gopher_short_doc" in out and found["documents"][0]["id"] in out
    assert "gopher_quality.word_count" in out


def test_inspect_kept_and_by_id_with_duplicates(demo, capsys):
    run, m = demo
    code, out, _ = run_cli(capsys, "inspect", run, "--kept", "-n", 2, "--json")
    found = json.loads(out)
    assert code == 0 and found["matched"] == m["counts"]["kept"] and len(found["documents"]) == 2
    assert all(d["status"] == "kept" and "langid.confidence" in d["scores"] for d in found["documents"])
    # The demo's edited repost was dropped as a near duplicate of this kept document.
    found = documents.find(str(run), doc_id="c4:c4-sample.01:8", chars=0)
    assert [d["status"] for d in found["documents"]] == ["kept"] and found["duplicates"] == ["near-repost-1"]
    copy = documents.find(str(run), doc_id="near-repost-1")["documents"][0]
    assert (copy["stage"], copy["reason"], copy["dup_of"]) == ("near_dedup", "near_dup", "c4:c4-sample.01:8")
    everything = documents.find(str(run), n=1000)
    assert everything["matched"] == m["counts"]["dropped"] == len(everything["documents"])


def test_inspect_refuses_unknown_reasons_and_ids(demo, capsys):
    run, _ = demo
    code, _, err = run_cli(capsys, "inspect", run, "--reason", "no_such_reason")
    assert code == 3 and "no_such_reason" in err and "gopher_short_doc" in err  # the hint lists the reasons
    code, _, err = run_cli(capsys, "inspect", run, "--id", "no-such-id")
    assert code == 3 and "no-such-id" in err
    code, _, err = run_cli(capsys, "inspect", run.parent / "missing-run")
    assert code == 4 and "manifest.json" in err


def test_diff_of_a_moved_threshold(demo, moved, capsys):
    (run_a, ma), (run_b, mb) = demo, moved
    code, out, _ = run_cli(capsys, "diff", run_a, run_b, "--json")
    assert code == 0
    d = json.loads(out)
    assert {(c["key"], c["a"], c["b"]) for c in d["config"]} == {
        ("filters.langid.params.min_confidence", 0.65, 0.9),
        ("filters.c4_quality.params.min_num_sentences", 5, 3),  # the default, filled in, against the new value
    }
    counts = {r["key"]: r for r in d["counts"]}
    for key in ("read", "kept", "dropped", "errors"):
        assert (counts[key]["a"], counts[key]["b"]) == (ma["counts"][key], mb["counts"][key])
        assert counts[key]["delta"] == mb["counts"][key] - ma["counts"][key]
    reasons = {r["key"]: r for r in d["reasons"]}
    assert set(reasons) == set(ma["counts"]["dropped_by_reason"]) | set(mb["counts"]["dropped_by_reason"])
    assert reasons["low_language_confidence"]["delta"] > 0 and reasons["c4_too_few_sentences"]["delta"] < 0
    assert d["reasons"][0]["key"] in ("low_language_confidence", "c4_too_few_sentences")  # largest change first
    moved_counts = d["moved"]
    assert moved_counts["only_in_a"] == moved_counts["only_in_b"] == 0
    assert moved_counts["dropped_to_kept"] - moved_counts["kept_to_dropped"] == counts["kept"]["delta"]
    assert sum(x["documents"] for x in d["moves"]) == sum(moved_counts.values())
    # Every example really moved: check one per movement in both runs.
    for x in d["moves"]:
        doc = x["examples"][0]
        a = documents.find(str(run_a), doc_id=doc)["documents"][0]
        b = documents.find(str(run_b), doc_id=doc)["documents"][0]
        assert (a.get("reason") or "kept", b.get("reason") or "kept") == (x["a"], x["b"])
    code, out, _ = run_cli(capsys, "diff", run_a, run_b)
    assert code == 0 and "min_confidence" in out and "low_language_confidence" in out


def test_diff_of_a_run_with_itself_is_empty(demo):
    run, _ = demo
    d = diff.compare(str(run), str(run))
    assert d["config"] == [] and d["moves"] == []
    assert all(r["delta"] == 0 for rows in (d["counts"], d["stages"], d["reasons"]) for r in rows)


def test_flatten_keys_the_filter_chain_by_name():
    flat = diff.flatten({"filters": [{"name": "a", "params": {"x": 1}}, {"name": "b", "params": {}}], "seed": 0})
    assert flat == {"filters.a.params.x": 1, "filters.b.params": {}, "seed": 0}
