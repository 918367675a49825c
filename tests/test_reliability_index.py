"""Kill/resume for `tamis index bm25`: a build killed at a seeded random point is finished by running it again.

Part of the `reliability` suite (tests/test_reliability.py holds curate's);
TAMIS_RELIABILITY_CASES=N runs N kill points.
"""

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_reliability import CASES, REPO, pool_docs, write_jsonl

from tamis.indexes import bm25
from tamis.io.verify import verify

pytestmark = pytest.mark.reliability


def files(root: Path) -> dict[str, str]:
    """Every file under an index folder with its sha256, the manifest included."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def build(corpus: Path, out: Path, *extra) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "tamis", "index", "bm25", str(corpus / "*.jsonl.gz"), "--output", str(out),
            "--shard-docs", "150", "--store-text", *extra]
    return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory):
    src = tmp_path_factory.mktemp("bm25kill")
    docs = pool_docs(shared_data, 1200)
    for f in range(4):
        write_jsonl(src / f"part{f}.jsonl.gz", docs[f * 300:(f + 1) * 300])
    return src


def started(proc: subprocess.Popen, out: Path) -> float:
    """Wait until the build has begun writing into `out`; the time it began."""
    deadline = time.time() + 120
    while not (out / "_building.json").exists():
        assert proc.poll() is None and time.time() < deadline, "the build never started"
        time.sleep(0.02)
    return time.perf_counter()


def test_index_bm25_killed_at_random_points_is_rebuilt_to_identical_files(corpus, tmp_path):
    clean = build(corpus, tmp_path / "clean")
    began = started(clean, tmp_path / "clean")
    assert clean.wait(timeout=600) == 0, clean.stderr.read().decode()[-2000:]
    duration = time.perf_counter() - began  # of the pipeline itself, start-up excluded
    reference = files(tmp_path / "clean")
    rng = random.Random(20261204)
    for case in range(CASES):
        out = tmp_path / f"killed{case}"
        proc = build(corpus, out, "--workers", str(1 + case % 2))
        started(proc, out)
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
    started(proc, out)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "manifest.json").exists()
    rerun = build(corpus, out)  # another config: the folder is not this build's debris
    assert rerun.wait(timeout=600) == 2
    assert "is not empty" in rerun.stderr.read().decode()
    assert (out / "_building.json").exists()
