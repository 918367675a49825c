"""`tamis curate` with a run-wide quality cut, and spilling of waiting batches to disk."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import corpus, digests, make_cfg, write_jsonl

from tamis.filters import fasttext_model as fm
from tamis.io import run_dir
from tamis.pipelines import curate, spill

GOOD = "The river valley has rich soil and farmers grow wheat, barley and apples there every year."
BAD = "Home | Login | Sign up | Cart | Menu | Contact | Privacy | Terms | Share | Tweet"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    """A tiny classifier: prose sentences (hq) vs navigation lines (lq)."""
    examples = [fm.LabeledText(f"g{i}", fm.normalize(f"{GOOD} Story {i}."), fm.POSITIVE) for i in range(40)]
    examples += [fm.LabeledText(f"b{i}", fm.normalize(f"{BAD} {i}"), fm.NEGATIVE) for i in range(40)]
    out = str(tmp_path_factory.mktemp("model") / "m.bin")
    fm.train(examples, out, fm.FastTextParams(dim=8, bucket=4096, epoch=10, lr=0.5))
    return out


def _inputs(tmp_path: Path) -> Path:
    """Three files; how prose-like a document is rises with its number, whatever file it is in."""
    src = tmp_path / "in"
    src.mkdir()
    for f in range(3):
        rows = []
        for i in range(f, 60, 3):
            words = GOOD.split()[: 2 + i // 4] + BAD.split()[: 12 - i // 6]
            rows.append({"id": f"d{i:03d}", "text": " ".join(words) + f" item {i}"})
        write_jsonl(src / f"part{f}.jsonl", rows)
    return src


def _quality_cfg(src: Path, out: Path, model: str, **over):
    filters = [
        {"name": "quality", "params": {"models": {"m": model}, "top_fraction": 0.25}},
        {"name": "gopher_quality", "params": {"min_doc_words": 19, "min_stop_words": 1}},
    ]
    return make_cfg(src, out, filters=filters, **over)


def test_top_fraction_is_cut_over_the_whole_run(tmp_path, model):
    src = _inputs(tmp_path)
    manifest = curate.run(_quality_cfg(src, tmp_path / "run", model))
    kept = pq.read_table(tmp_path / "run" / "shards").to_pylist()
    cut = [json.loads(r["detail"])["quality.m"]
           for r in pq.read_table(tmp_path / "run" / "dropped").to_pylist() if r["reason"] == "quality.m<top_0.25"]
    assert 15 <= 60 - len(cut) <= 17  # a quarter of the run, ties in one bin aside
    assert max(cut) < min(r["quality.m"] for r in kept)  # one cutoff for every file, not one per batch
    c = manifest["counts"]
    assert c["read"] == c["kept"] + c["dropped"] + c["errors"] == 60
    assert c["dropped_by_reason"]["quality.m<top_0.25"] == len(cut)
    assert c["dropped_by_reason"]["gopher_short_doc"] > 0 and c["kept"] > 0  # the chain goes on after the cut
    assert set(c["dropped_by_reason"]) == {"quality.m<top_0.25", "gopher_short_doc"}


def test_resumed_run_with_a_run_wide_cut_matches_a_clean_one(tmp_path, model):
    src = _inputs(tmp_path)
    clean = curate.run(_quality_cfg(src, tmp_path / "clean", model))
    with pytest.raises(Exception, match="fault injection"):
        curate.run(_quality_cfg(src, tmp_path / "resumed", model, fail_after_shards=1))
    resumed = curate.run(_quality_cfg(src, tmp_path / "resumed", model))
    assert digests(tmp_path / "resumed") == digests(tmp_path / "clean")
    assert resumed["counts"] == clean["counts"]


def test_spilled_and_in_memory_runs_write_the_same_files(tmp_path, monkeypatch):
    src = corpus(tmp_path, n_files=3)
    saved = []
    real_save = spill.save
    monkeypatch.setattr(spill, "save", lambda folder, batch: saved.append(folder) or real_save(folder, batch))
    over = {"exact_dedup": {"units": "line"}, "near_dedup": {"enabled": True}}
    spilled = curate.run(make_cfg(src, tmp_path / "spilled", **over))
    assert saved and all(f == str(tmp_path / "spilled" / run_dir.SCRATCH) for f in saved)
    assert not (tmp_path / "spilled" / run_dir.SCRATCH).exists()  # scratch space is gone after the run
    saved.clear()
    memory = curate.run(make_cfg(src, tmp_path / "memory", runner={"batch_size": 16, "spill": False}, **over))
    assert not saved
    assert digests(tmp_path / "spilled") == digests(tmp_path / "memory")
    assert spilled["counts"] == memory["counts"]
