"""`tamis index dense` through Beam (same index as the in-memory build, resume, kill), its dry runs, and eval."""

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dense_fixtures import BEIR_TINY, embedder, tiny_corpus, tiny_queries

from tamis import cli
from tamis.indexes import dense
from tamis.retrievers.dense import DenseRetriever

REPO = Path(__file__).resolve().parents[1]


def run_cli(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[str]:
    """The 12 documents as a JSONL file (7, plus one broken line) and a Parquet file (5)."""
    folder = tmp_path_factory.mktemp("inputs")
    corpus = tiny_corpus()
    rows = [{"id": i, "text": t} for i, t in zip(corpus["id"].to_pylist(), corpus["text"].to_pylist(), strict=True)]
    jsonl, parquet = folder / "a.jsonl", folder / "b.parquet"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:7]) + "{not json\n", encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows[7:]), parquet)
    return [str(jsonl), str(parquet)]


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("index") / "dense"
    code, out, err = run_cli("index", "dense", "--output", root, "--shard-docs", 3, "--device", "cpu",
                             "--spec", "SQ8", "--window", 12, "--overlap", 4, *inputs)
    assert code == 0, err
    return root, json.loads(out.strip().splitlines()[-1])


def test_the_command_reports_what_it_built(built):
    root, summary = built
    assert summary["docs"] == 12 and summary["shards"] == 5 and summary["error_records"] == 1
    assert summary["chunks"] > 12 and summary["bytes_per_vector"] == 384 and summary["built_on"] == "cpu"
    found = dense.load(str(root)).manifest
    paths = {f["path"] for f in found["files"]}
    assert {"index.faiss", "shards/00000-00000/entry.json", "shards/00001-00001/vectors.npy"} <= paths
    assert any(p.startswith("errors/") for p in paths) and found["inputs"] and found["config"]["spec"] == "SQ8"


def test_beam_shards_search_like_the_in_memory_build(built, tmp_path):
    beam = DenseRetriever(dense.load(str(built[0])), embedder=embedder(), device="cpu")
    config = dense.DenseConfig(device="cpu", spec="SQ8", window=12, overlap=4)
    dense.build(tiny_corpus(), str(tmp_path / "mem"), config, embedder())
    memory = DenseRetriever(dense.load(str(tmp_path / "mem")), embedder=embedder(), device="cpu")
    a, b = beam.search(tiny_queries(), 12), memory.search(tiny_queries(), 12)
    assert a[0] == b[0]
    np.testing.assert_allclose(np.concatenate(a[1]), np.concatenate(b[1]), atol=1e-6)


def test_a_finished_index_is_not_overwritten_without_asking(built, inputs):
    code, _, err = run_cli("index", "dense", "--output", built[0], "--resume", *inputs)
    assert code == 2 and "--overwrite" in err


def test_resume_keeps_finished_shards_and_gives_the_same_bytes(built, inputs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="tamis.pipelines.index_dense")
    root = tmp_path / "partial"
    shutil.copytree(built[0], root)
    before = files_of(root)
    for rel in ("manifest.json", "index.faiss", "shards/00001-00000/entry.json", "shards/00001-00000/vectors.npy"):
        (root / rel).unlink()
    for rel in ("index.faiss.tmp-0a1b2c3d4e5f", "errors/00000-00000.arrow.tmp-0a1b2c3d4e5f",
                "shards/00001-00000/vectors.npy.tmp-0a1b2c3d4e5f"):  # writes a kill cut short
        (root / rel).write_bytes(b"partial")
    code, _, err = run_cli("index", "dense", "--output", root, "--shard-docs", 3, "--device", "cpu",
                           "--spec", "SQ8", "--window", 12, "--overlap", 4, "--resume", *inputs)
    assert code == 0, err
    assert "finished by an earlier run" in caplog.text
    after = files_of(root)
    manifest_a, manifest_b = json.loads(before.pop("manifest.json")), json.loads(after.pop("manifest.json"))
    assert after == before and manifest_a["files"] == manifest_b["files"]


def test_resume_embeds_again_a_shard_whose_input_changed(built, inputs, tmp_path):
    root = tmp_path / "changed"
    shutil.copytree(built[0], root)
    (root / "manifest.json").unlink()
    code, _, err = run_cli("index", "dense", "--output", root, "--shard-docs", 3, "--device", "cpu",
                           "--spec", "SQ8", "--window", 16, "--overlap", 4, "--resume", *inputs)
    assert code == 0, err
    assert dense.load(str(root)).manifest["chunking"]["window"] == 16


def test_inputs_without_documents_are_refused(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    code, _, err = run_cli("index", "dense", "--output", tmp_path / "index", "--device", "cpu", empty)
    assert code == 3 and "no document" in err
    assert not (tmp_path / "index" / "manifest.json").exists()


def test_dry_run_builds_the_empty_faiss_index_and_refuses_a_typo(inputs, tmp_path):
    code, out, _ = run_cli("index", "dense", "--output", tmp_path / "i", "--spec", "IVF64,PQ48", "--dry-run", *inputs)
    plan = json.loads(out)
    assert code == 0 and plan["bytes_per_vector"] == 48 and plan["needs_training"] and plan["dim"] == 384
    assert not (tmp_path / "i").exists()
    code, _, err = run_cli("index", "dense", "--output", tmp_path / "i", "--spec", "IVF64,PQ47", "--dry-run", *inputs)
    assert code == 2 and "'IVF64,PQ47'" in err


def test_dataflow_dry_run_builds_the_job_graph_offline(inputs):
    code, out, err = run_cli(
        "index", "dense", *inputs, "--output", "gs://tamis-test-bucket/dense", "--runner", "dataflow",
        "--project", "tamis-test", "--region", "us-central1", "--temp-location", "gs://tamis-test-bucket/tmp",
        "--spec", "HNSW32", "--dry-run",
    )
    assert code == 0, err
    assert "dataflow job graph built and checked" in out
    code, _, err = run_cli("index", "dense", *inputs, "--output", "gs://b/d", "--runner", "dataflow", "--dry-run")
    assert code == 2 and "project" in err


def test_eval_retrieval_dense_and_hybrid_print_the_fields():
    for name in ("dense:Flat", "hybrid:SQ8"):
        code, out, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--retriever", name, "--json",
                                 "--min-time", 0.01)
        assert code == 0, err
        result = json.loads(out)
        assert {"ndcg@10", "recall@100", "qps", "qps_end_to_end", "bytes_per_vector", "encode_docs_per_s"} <= set(result)
        assert result["ndcg@10"] > 0.5 and result["qps"] > result["qps_end_to_end"] > 0
        assert result["encode_device"] in {"cpu", "cuda"} and result["device"] in {"cpu", "cuda"}
    code, _, err = run_cli("eval", "retrieval", "--beir", BEIR_TINY, "--retriever", "splade", "--json")
    assert code == 2 and "dense:SPEC" in err


def test_eval_retrieval_builds_then_loads_a_saved_dense_index(tmp_path):
    args = ("eval", "retrieval", "--beir", BEIR_TINY, "--retriever", "dense:SQ8", "--index", tmp_path / "i", "--json",
            "--min-time", 0.01)
    first, second = json.loads(run_cli(*args)[1]), json.loads(run_cli(*args)[1])
    assert "encode_docs_per_s" in first and "load_s" in second and first["ndcg@10"] == second["ndcg@10"]


@pytest.mark.reliability
def test_a_killed_build_rerun_with_resume_gives_byte_identical_files(inputs, tmp_path):
    """Kill `tamis index dense` once its first shard is written, resume it, compare with an uninterrupted build."""
    args = ["--shard-docs", "1", "--device", "cpu", "--spec", "Flat", *inputs]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run([sys.executable, "-m", "tamis", "index", "dense", "--output", str(clean), *args], env=env, check=True,
                   capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "tamis", "index", "dense", "--output", str(killed), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(killed.glob("shards/*/entry.json")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "manifest.json").exists()
    subprocess.run([sys.executable, "-m", "tamis", "index", "dense", "--output", str(killed), "--resume", *args],
                   env=env, check=True, capture_output=True)
    a, b = files_of(clean), files_of(killed)
    assert json.loads(a.pop("manifest.json"))["files"] == json.loads(b.pop("manifest.json"))["files"]
    assert a == b
