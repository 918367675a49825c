"""The run report without a browser: the numbers it shows equal the manifest's, every section is there, and the
data behind each section is what the run's files say."""

import copy
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import corpus, make_cfg, write_jsonl
from test_report_fixtures import demo_run

from tamis import cli
from tamis.filters import fasttext_model as fm
from tamis.io import run_dir
from tamis.io.manifest import problems as manifest_problems
from tamis.pipelines import curate
from tamis.report import data, html, runs, thresholds


class Tagged(HTMLParser):
    """(data-m pointer, text) of every tagged element, and the ids of the sections."""

    def __init__(self) -> None:
        super().__init__()
        self.tagged: list[tuple[str, str]] = []
        self.sections: list[str] = []
        self._open: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-m" in a:
            self._open = a["data-m"]
            self.tagged.append((self._open, ""))
        if tag == "section":
            self.sections.append(a.get("id"))

    def handle_data(self, text):
        if self._open is not None:
            ptr, before = self.tagged[-1]
            self.tagged[-1] = (ptr, before + text)

    def handle_endtag(self, tag):
        self._open = None


def parse_number(text: str) -> float:
    return float(text.replace(",", ""))


def parsed(page: str) -> Tagged:
    p = Tagged()
    p.feed(page)
    return p


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    run, printed = demo_run(tmp_path_factory)
    return run, printed, run_dir.load(str(run))


@pytest.fixture(scope="module")
def collected(demo):
    return data.collect(str(demo[0]))


def required_pointers(m: dict) -> set[str]:
    """Every manifest number the report must show."""
    c = m["counts"]
    out = {"/seconds", *(runs.pointer("counts", k) for k in ("read", "kept", "dropped", "errors"))}
    out |= {runs.pointer("counts", "dropped_by_reason", r) for r in c["dropped_by_reason"]}
    out |= {runs.pointer("counts", "dropped_by_stage", s) for s in c["dropped_by_stage"]}
    out |= {runs.pointer("shards", i, k) for i in range(len(m["shards"])) for k in ("rows", "bytes")}
    out |= {runs.pointer("sources", s, k) for s in m["sources"] for k in ("read", "kept", "dropped", "errors")}
    return out


def test_demo_writes_its_report_and_prints_the_path(demo):
    run, printed, _ = demo
    lines = [ln for ln in printed.splitlines() if ln.startswith("report:")]
    assert lines == [f"report: {run / 'report.html'}"]
    assert (run / "report.html").stat().st_size > 10_000
    # The report is a view made after the manifest: the run still verifies, and a rerun is not refused.
    assert cli.main(["verify", str(run)]) == 0


def test_every_number_from_the_manifest_equals_the_manifest(demo):
    run, _, m = demo
    page = (run / "report.html").read_text(encoding="utf-8")
    p = parsed(page)
    assert len(p.tagged) > 50
    for ptr, text in p.tagged:
        assert parse_number(text) == runs.resolve(m, ptr), ptr
    missing = required_pointers(m) - {ptr for ptr, _ in p.tagged}
    assert not missing


def test_every_section_is_present_and_the_page_is_self_contained(demo):
    run, _, m = demo
    page = (run / "report.html").read_text(encoding="utf-8")
    assert parsed(page).sections == [key for key, _ in html.SECTIONS]
    assert "<script" not in page.lower()
    # Nothing is fetched: every src/href is a data URI or an in-page anchor.
    for ref in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert ref.startswith(("data:", "#")), ref
    assert page.count("data:image/svg+xml;base64,") >= 30  # one histogram per score column, and the charts
    assert "Not a mix run" in page  # a section without data says so
    stages = dict(parsed(page).tagged)
    assert all(parse_number(stages[f"/stages/{s}/seconds"]) == m["stages"][s]["seconds"] for s in m["stages"])


def test_funnel_and_drops_balance_with_the_manifest(demo, collected):
    _, _, m = demo
    c = m["counts"]
    rows = {r["stage"]: r for r in collected["funnel"]["rows"]}
    assert rows["read"]["out"].value == c["read"] and rows["kept"]["out"].value == c["kept"]
    assert collected["funnel"]["balanced"]
    subs = [r for r in collected["funnel"]["rows"] if r.get("sub")]
    assert [r["label"] for r in subs] == [x.split("@")[0] for x in m["components"]]
    assert sum(r["dropped"].value for r in subs) == c["dropped_by_stage"]["filter"]
    assert subs[-1]["out"] == c["kept"]
    drops = collected["drops"]
    assert {r["reason"]: r["docs"].value for r in drops["rows"]} == c["dropped_by_reason"]
    assert drops["mismatches"] == []
    assert {r["reason"]: r["component"] for r in drops["rows"]}["low_language_confidence"] == "langid"


def test_text_bytes_are_counted_from_the_files(demo, collected):
    run, _, m = demo
    kept = sum(pc.sum(pc.binary_length(pq.read_table(run / s["path"], columns=["text"])["text"])).as_py()
               for s in m["shards"])
    assert collected["funnel"]["kept_bytes"] == kept
    last = [r for r in collected["funnel"]["rows"] if r.get("sub")][-1]
    assert last["bytes_out"] == kept  # what the stages leave is exactly what the shards hold


def test_duplicates_languages_shards_and_examples(demo, collected):
    _, _, m = demo
    c = m["counts"]
    dup = {s["stage"]: s for s in collected["duplicates"]["stages"]}
    assert set(dup) == {"exact_dedup", "near_dedup"}
    for stage, s in dup.items():
        assert s["drops"].value == s["drops_in_files"] == c["dropped_by_stage"][stage]
        assert sum(n * (size - 1) for size, n in s["sizes"].items()) == s["drops"].value
    assert dup["near_dedup"]["largest"] == [("c4:c4-sample.01:8", 2)]  # the bundled edited repost
    lang = collected["languages"]
    assert lang["kept_total"] == c["kept"] and lang["dropped_total"] == c["dropped_by_reason"]["low_language_confidence"]
    assert lang["rows"][0]["language"] == "en"
    assert collected["shards"]["total_rows"] == c["kept"]
    reasons = collected["examples"]["reasons"]
    assert [r["reason"] for r in reasons] == [r for r, _ in sorted(c["dropped_by_reason"].items(), key=lambda kv: -kv[1])]
    for r in reasons:
        assert 1 <= len(r["examples"]) <= min(data.EXAMPLES, r["docs"].value)
        assert all(x["reason"] == r["reason"] and len(x["text"]) <= data.EXAMPLE_CHARS for x in r["examples"])
    assert len(collected["examples"]["errors"]) == c["errors"]


def test_examples_are_chosen_by_id_hash_not_file_order(demo, collected):
    run, _, m = demo
    again = data.read_dropped(str(run), m, seed=1)
    first = {r["reason"]: [x["id"] for x in r["examples"]] for r in collected["examples"]["reasons"]}
    other = {r: [x["id"] for x in xs] for r, xs in again.examples.items()}
    assert first != other  # another seed picks other documents where there is a choice
    assert data.read_dropped(str(run), m, seed=0).examples.keys() == other.keys()


def test_score_histograms_cover_every_score_column_with_thresholds(demo, collected):
    run, _, m = demo
    schema = pq.read_schema(run / m["shards"][0]["path"])
    numeric = {f.name for f in schema if "." in f.name and (pa.types.is_integer(f.type) or pa.types.is_floating(f.type))}
    cols = {c["column"]: c for c in collected["scores"]["columns"]}
    assert numeric <= set(cols)
    for c in cols.values():
        h = c["hist"]
        if "constant" in h or not h["edges"]:
            continue
        assert sum(h["kept"]) + sum(h["dropped"]) + h["below"] + h["above"] + h["missing"] == c["kept_n"] + c["dropped_n"]
    conf = cols["langid.confidence"]
    assert [(t.param, t.value, t.drops) for t in conf["marks"]] == [("min_confidence", 0.65, "below")]
    assert conf["dropped_n"] == m["counts"]["dropped_by_reason"]["low_language_confidence"]
    symbol = [t.column for t in collected["scores"]["marked"] if t.param == "max_symbol_word_ratio"]
    assert sorted(symbol) == ["gopher_quality.ellipsis_ratio", "gopher_quality.hash_ratio"]
    unmarked = {(comp, p) for comp, p, _ in collected["scores"]["unmarked"]}
    assert ("fineweb_quality", "short_line_length") in unmarked  # shapes a score; is not a cut
    assert not any(comp == "langid" for comp, _ in unmarked)


def test_thresholds_are_told_apart_by_moving_them():
    base = {f"gopher_repetition.{k}": 0.0 for k in ("dup_para_frac", "dup_para_char_frac", "dup_line_frac",
                                                     "dup_line_char_frac", "top_2_gram_char_frac",
                                                     "top_3_gram_char_frac", "top_4_gram_char_frac")}
    base |= {f"gopher_repetition.dup_{n}_gram_char_frac": 0.0 for n in range(5, 11)}
    base["gopher_repetition.chars"] = 1000
    found, unmarked = thresholds.probe("gopher_repetition", {}, base)
    by_param = {t.param: t.column for t in found}
    # dup_para_frac and dup_line_frac are both 0.3: each is marked on its own column only.
    assert by_param["dup_para_frac"] == "gopher_repetition.dup_para_frac"
    assert by_param["dup_line_frac"] == "gopher_repetition.dup_line_frac"
    assert by_param["top_n_grams.3"] == "gopher_repetition.top_3_gram_char_frac"
    assert len(found) == len(by_param) == 13 and unmarked == []
    moved, _ = thresholds.probe("gopher_repetition", {"top_n_grams": {3: 0.4}}, base)
    assert [(t.param, t.value) for t in moved if t.column.endswith("top_3_gram_char_frac")] == [("top_n_grams.3", 0.4)]
    # A scorer has no rule, an unknown run-wide value is ignored, a base the rule drops marks nothing.
    assert thresholds.probe("pii", {}, {"pii.count": 0}) == ([], [])
    conf = {"langid.language": "en", "langid.confidence": 0.99}
    assert len(thresholds.probe("langid", {}, conf, recorded={"not_a_field": 1.0})[0]) == 1
    assert thresholds.probe("langid", {}, {**conf, "langid.confidence": 0.1}) == ([], [("min_confidence", 0.65)])


def test_html_escapes_document_text(collected):
    report = copy.deepcopy(collected)
    example = report["examples"]["reasons"][0]["examples"][0]
    example["text"] = "<script>alert('x')</script> & <b>bold</b>"
    page = html.render(report)
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp;" in page


def test_mixture_and_stage_times_show_when_the_manifest_has_them(demo, collected):
    _, _, m = demo
    mix = copy.deepcopy(m)
    mix["domains"] = {"web": {"target_share": 0.7, "achieved_share": 0.699, "share_error": -0.001,
                              "achieved_tokens": 699, "documents": 10},
                      "code": {"target_share": 0.3, "achieved_share": 0.301, "share_error": 0.001,
                               "achieved_tokens": 301, "documents": 3}}
    mix["achieved_tokens"] = 1000
    mix["stages"] = {"read": {"seconds": 1.5, "docs": 454, "docs_per_s": 302.7},
                     "filter": {"seconds": 3.25, "docs": 449, "docs_per_s": 138.2}}
    report = {**collected, "manifest": mix, "mixture": data.mixture(mix), "stages": data.stages(mix)}
    assert [r["domain"] for r in report["mixture"]["rows"]] == ["web", "code"]
    p = parsed(html.render(report))
    shown = dict(p.tagged)
    for ptr in ("/domains/web/target_share", "/domains/code/achieved_share", "/achieved_tokens",
                "/stages/filter/seconds", "/stages/read/docs_per_s"):
        assert parse_number(shown[ptr]) == runs.resolve(mix, ptr)
    assert data.mixture(m) is None and data.stages({k: v for k, v in m.items() if k != "stages"})["rows"] is None
    assert data.mixture({**m, "domains": {"web": {"weight": 1}}}) is None  # not the shape of a mix manifest


def test_a_run_without_filters_reports_the_absent_sections(tmp_path):
    cfg = make_cfg(corpus(tmp_path), tmp_path / "run")
    curate.run(cfg)
    path = html.write_report(str(tmp_path / "run"), verify=True)
    page = Path(path).read_text(encoding="utf-8")
    m = run_dir.load(str(tmp_path / "run"))
    p = parsed(page)
    assert p.sections == [key for key, _ in html.SECTIONS]
    for ptr, text in p.tagged:
        assert parse_number(text) == runs.resolve(m, ptr)
    assert "No score columns in this run" in page and "the langid scorer was not configured" in page
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["counts"]["dropped_by_stage"]
    # A report write killed midway leaves its temporary file: the run still verifies, the next write removes it.
    (tmp_path / "run" / "report.html.tmp-0123456789ab").write_bytes(b"<!doctype html><html")
    (tmp_path / "run" / "stale.html").write_bytes(b"not a view tamis makes")
    assert manifest_problems(str(tmp_path / "run"), m) == ["stale.html: not in the manifest"]
    html.write_report(str(tmp_path / "run"))
    assert sorted(p.name for p in (tmp_path / "run").glob("*.html*")) == ["report.html", "stale.html"]


def test_histogram_bins_long_tails_and_thresholds():
    values = np.concatenate([np.arange(1000) / 1000, [500.0]])
    h = data.histogram(values, np.zeros(0), [0.8])
    assert 1 <= h["above"] <= 6 and h["edges"][-1] < 2  # the tail beyond the 99.5th percentile is counted, not drawn
    assert h["edges"][0] <= 0.8 <= h["edges"][-1]
    far = data.histogram(values, np.zeros(0), [100_000.0])
    assert far["edges"][-1] < 100  # a threshold far beyond the data does not squash the chart
    ints = data.histogram(np.array([1, 2, 2, 3]), np.array([0]), [2])
    assert ints["edges"] == [-0.5, 0.5, 1.5, 2.5, 3.5] and ints["kept"] == [0, 1, 2, 1] and ints["dropped"] == [1, 0, 0, 0]
    assert data.histogram(np.array([-1, -1]), np.zeros(0), [])["constant"] == -1


def test_report_command_verifies_the_run_first(demo, tmp_path, capsys):
    run, _, _ = demo
    copy_of = tmp_path / "run"
    shutil.copytree(run, copy_of)
    out = tmp_path / "elsewhere.html"
    assert cli.main(["report", str(copy_of), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out}" and out.stat().st_size > 10_000
    (copy_of / "shards" / "part-99999-0000.parquet").write_bytes(b"left by another attempt")
    assert cli.main(["report", str(copy_of)]) == 4
    assert "part-99999-0000.parquet: not in the manifest" in capsys.readouterr().err
    assert cli.main(["report", str(copy_of), "--no-verify"]) == 0  # reads only the files the manifest lists


def test_drop_details_parse_with_nan_and_mixed_values():
    cols = data._parse_details(['{"a.x": 1, "a.y": "en", "m": 1}', '{"a.x": NaN, "a.y": "de", "m": "two"}',
                                '{"a.y": null}'])
    assert cols["a.x"].dtype == np.float64 and cols["a.x"][0] == 1.0 and np.isnan(cols["a.x"][1:]).all()
    assert cols["a.y"].tolist() == ["en", "de", None] and cols["m"].dtype == object
    fast = data._parse_details(['{"q.p": 0.25, "cutoff": 0.5}', '{"q.p": 0.125, "cutoff": 0.5}'])
    assert fast["q.p"].tolist() == [0.25, 0.125] and fast["cutoff"].tolist() == [0.5, 0.5]


def test_a_run_wide_cut_is_marked_at_the_cutoff_its_drops_recorded(tmp_path):
    good = "The river valley has rich soil and farmers grow wheat, barley and apples there every year."
    bad = "Home | Login | Sign up | Cart | Menu | Contact | Privacy | Terms | Share | Tweet"
    examples = [fm.LabeledText(f"g{i}", fm.normalize(f"{good} Story {i}."), fm.POSITIVE) for i in range(40)]
    examples += [fm.LabeledText(f"b{i}", fm.normalize(f"{bad} {i}"), fm.NEGATIVE) for i in range(40)]
    model = str(tmp_path / "m.bin")
    fm.train(examples, model, fm.FastTextParams(dim=8, bucket=4096, epoch=10, lr=0.5))
    src = tmp_path / "in"
    src.mkdir()
    rows = [{"id": f"d{i:03d}", "text": " ".join(good.split()[: 2 + i // 4] + bad.split()[: 12 - i // 6])}
            for i in range(60)]
    write_jsonl(src / "part.jsonl", rows)
    cfg = make_cfg(src, tmp_path / "run", filters=[{"name": "quality",
                                                     "params": {"models": {"m": model}, "top_fraction": 0.25}}])
    curate.run(cfg)
    report = data.collect(str(tmp_path / "run"))
    cutoffs = {json.loads(r["detail"])["cutoff"] for r in pq.read_table(tmp_path / "run" / "dropped").to_pylist()
               if r["reason"] == "quality.m<top_0.25"}
    marks = [(t.param, t.value, t.column, t.drops) for t in report["scores"]["marked"]]
    assert marks == [("cutoff", cutoffs.pop(), "quality.m", "below")]
