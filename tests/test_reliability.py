"""Suites that keep the run and index formats honest under kills, bad input and corruption.

`pytest -m reliability` runs them. CI runs a bounded seeded subset (RELIABILITY_CASES per suite, 2 by
default); `TAMIS_RELIABILITY_CASES=N` runs N seeded cases of each.
"""

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamis import config
from tamis.errors import IntegrityError
from tamis.indexes import bm25
from tamis.io import run_dir
from tamis.io.manifest import DERIVED
from tamis.io.readers import InputConfig, read_all, read_file
from tamis.io.verify import verify
from tamis.pipelines import curate

pytestmark = pytest.mark.reliability
CASES = int(os.environ.get("TAMIS_RELIABILITY_CASES", "2"))
REPO = Path(__file__).resolve().parents[1]


def pool_docs(shared_data: Path, n: int, skip: int = 0) -> list[dict]:
    rows = []
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i < skip:
                continue
            if len(rows) == n:
                break
            row = json.loads(line)
            rows.append({"id": row["id"], "text": row["text"]})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    elif path.suffix == ".zst":
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def run_files(run: Path) -> dict[str, str]:
    """sha256 of every file of a run but its manifest and report (they hold seconds): shards, drops, errors,
    markers, signatures."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name not in ("manifest.json", *DERIVED)}


def no_debris(run: Path, manifest: dict) -> None:
    present = {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()} - {"manifest.json", *DERIVED}
    assert present == {e["path"] for e in manifest["files"]}
    assert not (run / "_spill").exists()


def tamis(*argv, **kw) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "tamis", *map(str, argv)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **kw)


# --- kill / resume ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kill_corpus(shared_data, tmp_path_factory):
    src = tmp_path_factory.mktemp("kill") / "in"
    src.mkdir()
    docs = pool_docs(shared_data, 900)
    for f in range(6):  # each file reposts three documents of the first file under new ids: cross-file duplicates
        reposts = [{"id": f"repost-{f}-{d['id']}", "text": d["text"]} for d in docs[f * 7: f * 7 + 3]]
        write_jsonl(src / f"part{f}.jsonl.gz", docs[f * 150:(f + 1) * 150] + reposts)
    return src


def kill_config(src: Path, out: Path, workers: int = 1) -> Path:
    cfg = {
        "inputs": [{"path": str(src / "*.jsonl.gz")}],
        "output": str(out),
        "exact_dedup": {"enabled": True},
        "near_dedup": {"enabled": True},
        "filters": [{"name": "gopher_quality"}, {"name": "c4_quality"}],
        "shards": {"target_bytes": 100_000},
        "runner": {"batch_size": 100, "workers": workers},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_curate_killed_at_random_points_resumes_to_identical_output(kill_corpus, tmp_path):
    clean_cfg = kill_config(kill_corpus, tmp_path / "clean")
    started = time.perf_counter()
    done = tamis("curate", clean_cfg)
    assert done.wait(timeout=600) == 0, done.stderr.read().decode()[-2000:]
    duration = time.perf_counter() - started
    clean = run_files(tmp_path / "clean")
    clean_manifest = run_dir.load(str(tmp_path / "clean"))
    rng = random.Random(20261203)
    for case in range(CASES):
        out = tmp_path / f"killed{case}"
        cfg = kill_config(kill_corpus, out, workers=1 + case % 2)
        for _ in range(2):  # killed twice before it may finish
            proc = tamis("curate", cfg)
            time.sleep(rng.uniform(0.2, 0.9) * duration)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        resumed = tamis("curate", cfg)
        assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()[-2000:]
        assert run_files(out) == clean, f"case {case}"
        manifest = run_dir.load(str(out))
        assert manifest["counts"] == clean_manifest["counts"]
        kept = pq.read_table(out / "shards").column("id").to_pylist()
        assert len(kept) == len(set(kept)) == manifest["counts"]["kept"]
        no_debris(out, manifest)


def test_curate_stopped_by_fault_injection_resumes_to_identical_output(kill_corpus, tmp_path):
    clean_manifest = curate.run(curate_cfg := _parsed(kill_config(kill_corpus, tmp_path / "clean")))
    clean = run_files(tmp_path / "clean")
    rng = random.Random(7)
    for case in range(CASES):
        out = tmp_path / f"stopped{case}"
        cfg = curate_cfg.model_copy(update={"output": str(out), "fail_after_shards": rng.randint(1, 12)})
        with pytest.raises(Exception, match="fault injection"):
            curate.run(cfg)
        manifest = curate.run(cfg.model_copy(update={"fail_after_shards": None}))
        assert run_files(out) == clean and manifest["counts"] == clean_manifest["counts"]
        no_debris(out, manifest)


def test_curate_stopped_halfway_with_dedup_rereads_only_unfinished_inputs(kill_corpus, tmp_path):
    """Exact (documents and lines) and near dedup on: finished inputs join by their kept signatures, unread."""
    raw = yaml.safe_load(kill_config(kill_corpus, tmp_path / "clean").read_text())
    raw["exact_dedup"] = {"enabled": True, "units": "line", "min_unit_chars": 40}
    clean_manifest = curate.run(config.parse(raw))
    clean = run_files(tmp_path / "clean")
    docs = {path: source["read"] for path, source in clean_manifest["sources"].items()}
    half = sum(s["path"].startswith(("shards/part-00000", "shards/part-00001", "shards/part-00002"))
               for s in clean_manifest["shards"])
    out = tmp_path / "stopped"
    cfg = config.parse({**raw, "output": str(out), "fail_after_shards": half})
    with pytest.raises(Exception, match="fault injection"):
        curate.run(cfg)
    finished = {json.loads(p.read_text())["input"] for p in (out / "_progress").glob("*.json")}
    assert 0 < len(finished) < len(docs)
    manifest = curate.run(cfg.model_copy(update={"fail_after_shards": None}))
    assert manifest["stages"]["read"]["docs"] == sum(n for path, n in docs.items() if path not in finished)
    assert run_files(out) == clean and manifest["counts"] == clean_manifest["counts"]
    no_debris(out, manifest)


def _parsed(path: Path):
    return config.load(str(path))


def _parsed_dict(raw: dict):
    return config.parse(raw)


# --- malformed corpus -------------------------------------------------------------------------------------


def test_malformed_corpus_every_bad_record_is_an_error_and_every_good_document_comes_out(shared_data, tmp_path):
    rng = random.Random(11)
    docs = pool_docs(shared_data, 400, skip=3000)
    src = tmp_path / "in"
    src.mkdir()
    good: list[str] = []
    bad_records = 0

    write_jsonl(src / "clean.jsonl", docs[:100])
    good += [d["id"] for d in docs[:100]]

    lines, mixed = [], docs[100:200]
    bad = [b'{"id": "x", "text": ', b'[1, 2, 3]', b'{"id": "y", "text": 42}', b'{"id": "z", "text": null}',
           b'{"id": "w"}', b'\xff\xfe{"id": "u", "text": "\xc3\x28"}', b'"just a string"',
           b'{"id": "big-bad", "text": "' + b"a" * (10 << 20)]  # a 10 MB line that is not JSON
    for d in mixed:
        lines.append(json.dumps(d).encode())
        if rng.random() < 0.3:
            lines.append(rng.choice(bad))
            bad_records += 1
    lines.append(json.dumps({"id": "big-good", "text": "word " * (2 << 20)}).encode())  # a 10 MB document
    (src / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    good += [d["id"] for d in mixed] + ["big-good"]

    for suffix, rows in ((".jsonl.gz", docs[200:300]), (".jsonl.zst", docs[300:400])):
        full = write_jsonl(tmp_path / f"whole{suffix}", rows).read_bytes()
        cut = full[: len(full) * 2 // 3]
        (src / f"cut{suffix}").write_bytes(cut)
        docs_cut, _ = read_all(str(src / f"cut{suffix}"))
        assert 0 < docs_cut.num_rows < len(rows)
        good += docs_cut.column("id").to_pylist()
        bad_records += 1  # the cut itself
    (src / "empty.jsonl").write_bytes(b"")
    (src / "zero.jsonl.zst").write_bytes(b"")
    (src / "not-gzip.jsonl.gz").write_bytes(b"this was never gzip")
    bad_records += 1
    warc = shared_data / "curation" / "warc"
    shutil.copy(warc / "dolma_sample-0000.warc.gz", src / "good.warc.gz")
    shutil.copy(warc / "warcio_example-bad-non-chunked.warc.gz", src / "bad.warc.gz")
    warc_docs, warc_errors = read_all(str(src / "good.warc.gz"))
    good += warc_docs.column("id").to_pylist()
    bad_docs, bad_errors = read_all(str(src / "bad.warc.gz"))
    good += bad_docs.column("id").to_pylist()
    bad_records += warc_errors.num_rows + bad_errors.num_rows

    base = {"inputs": [{"path": str(src / "*")}], "output": str(tmp_path / "run"), "exact_dedup": {"enabled": False},
            "max_error_fraction": 1.0, "runner": {"batch_size": 64}}
    with pytest.raises(Exception, match="could not be read to their end"):
        curate.run(_parsed_dict(base))  # truncated inputs fail the run by default
    manifest = curate.run(_parsed_dict({**base, "accept_truncated": True}))
    out = tmp_path / "run"
    kept = pq.read_table(out / "shards").column("id").to_pylist()
    dropped = pq.read_table(out / "dropped").column("id").to_pylist() if list((out / "dropped").glob("*")) else []
    assert sorted(kept + dropped) == sorted(good)  # every good document came out, once
    errors = pq.read_table(out / "errors")
    assert errors.num_rows == manifest["counts"]["errors"] == bad_records
    assert manifest["counts"]["empty_inputs"] == 2 and manifest["counts"]["truncated_inputs"] >= 3
    assert manifest["counts"]["read"] == manifest["counts"]["kept"] + manifest["counts"]["dropped"] + bad_records


RECORD = st.one_of(
    st.builds(lambda i, t: ("good", json.dumps({"id": f"g{i}", "text": t}).encode()), st.integers(0, 10**6),
              st.text(min_size=0, max_size=60)),
    st.sampled_from([("bad", b'{"text": 1}'), ("bad", b"{broken"), ("bad", b"[]"), ("bad", b'{"id": "n", "text": null}'),
                     ("bad", b'{"text": "\xff"}'), ("blank", b"   ")]),
)


@settings(max_examples=25 * CASES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, max_size=40), suffix=st.sampled_from([".jsonl", ".jsonl.gz", ".jsonl.zst"]),
       batch=st.integers(1, 7))
def test_jsonl_reader_accounts_for_every_line(tmp_path, records, suffix, batch):
    data = b"".join(r + b"\n" for _, r in records)
    path = tmp_path / f"p{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else
                     zstandard.ZstdCompressor().compress(data) if suffix.endswith(".zst") else data)
    stats: dict = {}
    items = list(read_file(str(path), InputConfig(path=str(path)), batch, stats=stats))
    docs = [row for kind, b in items if kind == "docs" for row in b.to_pylist()]
    errors = [row for kind, b in items if kind == "errors" for row in b.to_pylist()]
    assert [d["id"] for d in docs] == [json.loads(r)["id"] for k, r in records if k == "good"]
    assert len(errors) == sum(k == "bad" for k, _ in records)
    offsets = [0]
    for _, r in records:
        offsets.append(offsets[-1] + len(r) + 1)
    starts = {offsets[i]: k for i, (k, _) in enumerate(records)}
    assert all(starts[e["offset"]] == "bad" for e in errors) and all(starts[d["offset"]] == "good" for d in docs)
    assert "truncated" not in stats and stats.get("empty", False) == (not any(k != "blank" for k, _ in records))


# --- corruption -------------------------------------------------------------------------------------------


def _damage(path: Path, how: str, rng: random.Random) -> None:
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        path.write_bytes(data[: rng.randrange(len(data))] if data else b"")
    else:
        pos = rng.randrange(len(data))
        path.write_bytes(data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1:])


def _corruption_rounds(root: Path, load, seed: int) -> int:
    """Damage one file at a time (flip a bit, truncate, delete) at seeded positions; verify and the loader
    must both refuse every one. Returns the rounds done."""
    manifest = json.loads((root / "manifest.json").read_text())
    files = [e["path"] for e in manifest["files"] if e["bytes"] > 0] + ["manifest.json"]
    rng = random.Random(seed)
    for _ in range(6 * CASES):
        rel, how = rng.choice(files), rng.choice(["flip", "truncate", "delete"])
        path = root / rel
        saved = path.read_bytes()
        _damage(path, how, rng)
        assert _verify_refuses(root), f"verify missed: {how} {rel}"
        with pytest.raises(IntegrityError):
            load(str(root))
        path.write_bytes(saved)
    assert verify(str(root))["problems"] == []
    return 6 * CASES


def _verify_refuses(root: Path) -> bool:
    try:
        return bool(verify(str(root))["problems"])
    except IntegrityError:  # no manifest, or one that is not JSON
        return True


def test_every_damaged_run_file_is_detected(shared_data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "a.jsonl", pool_docs(shared_data, 300, skip=5000))
    curate.run(_parsed_dict({"inputs": [{"path": str(src / "*.jsonl")}], "output": str(tmp_path / "run"),
                             "shards": {"target_bytes": 100_000}}))
    assert _corruption_rounds(tmp_path / "run", lambda r: run_dir.load(r, verify=True), 3) >= 6


def test_every_damaged_bm25_index_file_is_detected(shared_data, tmp_path):
    import pyarrow as pa

    docs = pool_docs(shared_data, 300, skip=6000)
    index = bm25.build(pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]}),
                       bm25.BM25Config(shard_docs=100, store_text=True))
    bm25.save(index, str(tmp_path / "index"))
    assert _corruption_rounds(tmp_path / "index", bm25.load, 5) >= 6


# --- Dataflow job graphs, built offline -------------------------------------------------------------------


DATAFLOW = ["--runner", "dataflow", "--project", "tamis-test", "--region", "us-central1",
            "--temp-location", "gs://tamis-test-bucket/tmp", "--dry-run"]


def test_dataflow_graph_of_curate_with_every_cross_document_stage(shared_data, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "a.jsonl", pool_docs(shared_data, 20))
    cfg = {"inputs": [{"path": str(src / "*.jsonl")}], "output": "gs://tamis-test-bucket/run",
           "near_dedup": {"enabled": True}, "semantic_dedup": {"enabled": True, "device": "cpu"},
           "decontaminate": {"enabled": True, "benchmarks": [
               {"name": "gsm8k", "path": str(shared_data / "curation" / "decontam" / "gsm8k_test.jsonl.gz")}]},
           "filters": [{"name": "gopher_quality"}]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = tamis("curate", path, *DATAFLOW)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-3000:]


def test_dataflow_graph_of_index_bm25(shared_data, tmp_path):
    write_jsonl(tmp_path / "a.jsonl", pool_docs(shared_data, 20))
    proc = tamis("index", "bm25", tmp_path / "a.jsonl", "--output", "gs://tamis-test-bucket/index", *DATAFLOW)
    assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-3000:]
