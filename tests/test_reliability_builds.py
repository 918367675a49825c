"""Kill/resume for the builds after curate: `tamis index bm25` and `tamis mix` (with its token export), killed
by SIGKILL of the process group at seeded random points, then run again: every output file is identical.

Part of the `reliability` suite (tests/test_reliability.py holds curate's; the dense index, token export and
FIM pipelines have theirs beside their other tests); TAMIS_RELIABILITY_CASES=N runs N kill points.
"""

import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from code_fixtures import FILES as REPO_FILES
from dense_fixtures import embedder, tiny_corpus
from test_reliability import CASES, REPO, _corruption_rounds, pool_docs, write_jsonl

from tamis import config
from tamis.code import index as code_index
from tamis.code import store as code_store
from tamis.code.ingest import IngestConfig, from_directory
from tamis.indexes import bm25, dense
from tamis.io.verify import verify
from tamis.mixers import mix_run
from tamis.pipelines import curate, mix
from tamis.train import TokenDataset

pytestmark = pytest.mark.reliability


def files(root: Path) -> dict[str, str]:
    """Every file under an index folder with its sha256, the manifest included."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def tamis(*argv) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "tamis", *map(str, argv)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def build(corpus: Path, out: Path, *extra) -> subprocess.Popen:
    return tamis("index", "bm25", corpus / "*.jsonl.gz", "--output", out, "--shard-docs", "150", "--store-text",
                 *extra)


def started(proc: subprocess.Popen, marker: Path) -> float:
    """Wait until the build has begun writing (`marker` exists); the time it began."""
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, "the build never started"
        time.sleep(0.02)
    return time.perf_counter()


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    src = tmp_path_factory.mktemp("bm25kill")
    docs = pool_docs(shared_data, 1200)
    for f in range(4):
        write_jsonl(src / f"part{f}.jsonl.gz", docs[f * 300:(f + 1) * 300])
    return src


def test_index_bm25_killed_at_random_points_is_rebuilt_to_identical_files(corpus, tmp_path):
    clean = build(corpus, tmp_path / "clean")
    began = started(clean, tmp_path / "clean" / "_building.json")
    assert clean.wait(timeout=600) == 0, clean.stderr.read().decode()[-2000:]
    duration = time.perf_counter() - began  # of the pipeline itself, start-up excluded
    reference = files(tmp_path / "clean")
    rng = random.Random(20261204)
    for case in range(CASES):
        out = tmp_path / f"killed{case}"
        proc = build(corpus, out, "--workers", str(1 + case % 2))
        started(proc, out / "_building.json")
        time.sleep(rng.uniform(0.1, 0.8) * duration)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (out / "manifest.json").exists(), "killed after it finished: no kill tested"
        rerun = build(corpus, out)  # no --overwrite: an unfinished build of the same inputs is its own to clear
        assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()[-2000:]
        assert files(out) == reference, f"case {case}"
        assert verify(str(out))["problems"] == []
        assert bm25.load(str(out)).n_docs == 1200


def test_an_unfinished_build_of_other_inputs_is_not_cleared(corpus, tmp_path):
    out = tmp_path / "index"
    proc = build(corpus, out, "--variant", "bm25+")
    started(proc, out / "_building.json")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    rerun = build(corpus, out)  # another config: the folder is not this build's debris
    assert rerun.wait(timeout=600) == 2
    assert "is not empty" in rerun.stderr.read().decode()
    assert (out / "_building.json").exists()


@pytest.fixture(scope="module")
def curated(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("curated") / "run"
    curate.run(config.parse({"inputs": [{"path": str(corpus / "*.jsonl.gz")}], "output": str(out),
                             "exact_dedup": {"enabled": False}, "shards": {"target_bytes": 400_000}}))
    return out


def mix_config(curated: Path, out: Path, workers: int = 1) -> Path:
    raw = {
        "inputs": [str(curated)], "output": str(out), "budget_tokens": 600_000,
        "tokenizer": {"path": "all-MiniLM-L6-v2"}, "max_epochs": 2,
        "domains": [{"name": "first", "source": "*part0*"}, {"name": "second", "source": "*part1*"}, {"name": "rest"}],
        "weights": {"given": {"first": 0.5, "second": 0.2, "rest": 0.3}},
        "shards": {"target_bytes": 150_000}, "export": {"tokens": True, "shard_tokens": 50_000},
        "runner": {"batch_size": 100, "workers": workers},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def path_free(found: dict[str, str]) -> dict[str, str]:
    """The files whose bytes do not name the output folder (manifests and the export's markers record paths)."""
    return {k: v for k, v in found.items() if not k.endswith("manifest.json") and not k.startswith("tokens/_progress")}


def test_mix_killed_at_random_points_resumes_to_identical_files(curated, tmp_path):
    clean = tamis("mix", mix_config(curated, tmp_path / "clean"))
    began = started(clean, tmp_path / "clean" / "_work")
    assert clean.wait(timeout=600) == 0, clean.stderr.read().decode()[-2000:]
    duration = time.perf_counter() - began
    reference = path_free(files(tmp_path / "clean"))
    assert any(k.startswith("tokens/") for k in reference) and any(k.startswith("shards/") for k in reference)
    rng = random.Random(20261205)
    for case in range(CASES):
        out = tmp_path / f"killed{case}"
        cfg = mix_config(curated, out, workers=1 + case % 2)
        for attempt in range(2):  # killed twice before it may finish
            proc = tamis("mix", cfg)
            started(proc, out / "_work")
            time.sleep(rng.uniform(0.1, 0.8) * duration)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert attempt or not (out / "tokens" / "manifest.json").exists(), "killed after it finished: no kill"
        rerun = tamis("mix", cfg)
        assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()[-2000:]
        assert path_free(files(out)) == reference, f"case {case}"
        assert verify(str(out))["problems"] == [] and verify(str(out / "tokens"))["problems"] == []


# --- corruption of the artifacts made after curate ------------------------------------------------------------------


def read_tokens(root: str) -> None:
    for _ in TokenDataset(root, seq_len=256, shuffle=False):
        pass


def read_code_index(root: str) -> None:
    code_store.load(root)


@pytest.fixture(scope="module")
def mixed(curated, tmp_path_factory):
    out = tmp_path_factory.mktemp("mixed") / "mix"
    mix.run(mix.load_config(str(mix_config(curated, out)), {}))
    return out


@pytest.mark.parametrize("artifact", ["mix", "tokens", "dense", "code"])
def test_every_damaged_file_of_the_later_artifacts_is_detected(artifact, mixed, tmp_path):
    if artifact == "mix":
        root, load = mixed, mix_run.load
    elif artifact == "tokens":
        root, load = mixed / "tokens", read_tokens
    elif artifact == "dense":
        root, load = tmp_path / "dense", dense.load
        dense.build(tiny_corpus(), str(root), dense.DenseConfig(device="cpu", spec="BFlat"), embedder())
    else:
        repo = tmp_path / "repo"
        for rel, text in REPO_FILES.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        root, load = tmp_path / "code", read_code_index
        cfg = code_index.CodeIndexConfig()
        code_store.save(str(root), [code_index.build(from_directory(str(repo), IngestConfig(), name="repo"), cfg)], cfg)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert _corruption_rounds(copy, load, 7) >= 6
