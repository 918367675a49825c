"""`tamis augment` on real web documents: no neighbour is the chunk's own document, a near-duplicate of it, a
contaminated document or a copy of the chunk; the output is verified, resumable after kills, and loads for training.

The corpus: 700 documents of the shared web pool, plus planted trouble the index holds but the curated run
drops or keeps: reposts of pool documents with a few words changed (curate's near-dup stage drops them, with
`dup_of`), documents that quote a GSM8K test item next to a pool paragraph, and documents that quote a
passage of a pool document inside unrelated text. The BM25 index is built over everything, so every kind of
bad neighbour is there to be retrieved.
"""

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from pipeline_fixtures import digests

from tamis import config
from tamis.dedup import decontam
from tamis.dedup.shingles import Shingling, shingles
from tamis.errors import IntegrityError
from tamis.indexes import bm25
from tamis.io.manifest import SELF_SHA
from tamis.io.verify import verify
from tamis.pipelines import augment, curate
from tamis.retrievers.augment import KIND, clusters_from_links, load_manifest
from tamis.train import DocumentDataset

REPO = Path(__file__).resolve().parents[1]
CASES = int(os.environ.get("TAMIS_RELIABILITY_CASES", "2"))


def pool(shared_data: Path, n: int, skip: int) -> list[dict]:
    rows = []
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= skip + n:
                break
            if i >= skip:
                r = json.loads(line)
                rows.append({"id": r["id"], "text": r["text"]})
    return rows


def gsm8k(shared_data: Path) -> Path:
    return shared_data / "curation" / "decontam" / "gsm8k_test.jsonl.gz"


@pytest.fixture(scope="module")
def world(shared_data, tmp_path_factory) -> dict:
    """A curate run over pool documents with planted trouble, and a BM25 index (texts stored) over all of it."""
    root = tmp_path_factory.mktemp("augment")
    rng = random.Random(5)
    docs = pool(shared_data, 700, skip=2000)
    long_docs = [d for d in docs if len(d["text"]) > 4000]
    planted = []
    for i, d in enumerate(docs[:25]):  # reposts: a few words changed
        words = d["text"].split(" ")
        for j in rng.sample(range(len(words)), min(3, len(words))):
            words[j] = "changed"
        planted.append({"id": f"repost-{i}", "text": " ".join(words)})
    with gzip.open(gsm8k(shared_data), "rt") as f:
        items = [json.loads(line)["text"] for line, _ in zip(f, range(15), strict=False)]
    for i, (item, d) in enumerate(zip(items, docs[100:115], strict=True)):  # contaminated, and close to a pool doc
        planted.append({"id": f"leak-{i}", "text": d["text"][:1500] + "\n\nWorked example:\n" + item})
    for i, d in enumerate(long_docs[:15]):  # quotes 1,000 characters of a long document inside other text
        other = docs[-1 - i]["text"][:3000]
        planted.append({"id": f"quote-{i}", "text": other[:1500] + "\n" + d["text"][1000:2000] + "\n" + other[1500:]})
    everything = docs + planted
    src = root / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in everything))
    run = root / "run"
    curate.run(config.parse({"inputs": [{"path": str(src)}], "output": str(run), "near_dedup": {"enabled": True},
                             "shards": {"target_bytes": 600_000}, "runner": {"batch_size": 200}}))
    index = root / "index"
    table = pa.table({"id": [r["id"] for r in everything], "text": [r["text"] for r in everything]})
    bm25.save(bm25.build(table, bm25.BM25Config(store_text=True, shard_docs=400)), str(index))
    dropped = pq.read_table(run / "dropped").to_pylist()
    return {"root": root, "run": run, "index": index, "shared": shared_data, "texts": {r["id"]: r["text"] for r in everything},
            "clusters": clusters_from_links((r["id"], r["dup_of"]) for r in dropped)}


def augment_cfg(world: dict, out: Path, **over) -> dict:
    raw = {
        "inputs": [str(world["run"])],
        "output": str(out),
        "retriever": {"kind": "bm25", "bm25": str(world["index"])},
        "chunking": {"by": "tokens", "size": 64},
        "neighbours": {"k": 2, "text_chars": 1000},
        "exclude": {"overlap": {"ngram": 5, "threshold": 0.5},
                    "decontaminate": {"enabled": True, "benchmarks": [{"name": "gsm8k", "path": str(gsm8k(world["shared"]))}]}},
        "shards": {"target_bytes": 400_000},
    }
    raw.update(over)
    return raw


@pytest.fixture(scope="module")
def augmented(world) -> tuple[Path, dict]:
    out = world["root"] / "aug"
    return out, augment.run(augment.load_config(augment_cfg(world, out)))


def test_no_neighbour_is_self_near_dup_contaminated_or_a_copy(world, augmented):
    out, found = augmented
    rows = pq.read_table(out / "shards").to_pylist()
    texts, clusters = world["texts"], world["clusters"]
    assert len(rows) == found["counts"]["chunks"] > 5000
    assert clusters, "the curate run must have dropped the reposts as near-duplicates"
    bench = decontam.build_index(decontam.DecontamConfig(enabled=True, benchmarks=[
        decontam.BenchmarkSet(name="gsm8k", path=str(gsm8k(world["shared"])))]))
    neighbours = sorted({n for r in rows for n in r["neighbour_ids"]})
    m = decontam.match(bench, [texts[n] for n in neighbours])
    assert len(m.gram) == 0, "a neighbour shares a 13-gram with a GSM8K test item"
    sh = Shingling("word", 5)
    hashes, offsets = shingles([r["text"] for r in rows], sh)
    chunk_sets = [set(hashes[offsets[i]:offsets[i + 1]].tolist()) for i in range(len(rows))]
    hashes, offsets = shingles([texts[n] for n in neighbours], sh)
    neighbour_sets = {n: set(hashes[offsets[j]:offsets[j + 1]].tolist()) for j, n in enumerate(neighbours)}
    for r, mine in zip(rows, chunk_sets, strict=True):
        doc = r["doc_id"]
        assert doc not in r["neighbour_ids"]
        assert all(clusters.get(n, n) != clusters.get(doc, doc) for n in r["neighbour_ids"])
        assert len(r["neighbour_ids"]) <= 2 and r["neighbour_text"] == [texts[n][:1000] for n in r["neighbour_ids"]]
        assert r["neighbour_scores"] == sorted(r["neighbour_scores"], reverse=True)
        assert all(len(mine & neighbour_sets[n]) < 0.5 * len(mine) for n in r["neighbour_ids"])
    excluded = found["counts"]["excluded_by_reason"]
    assert all(excluded[reason] > 0 for reason in ("self", "near_dup", "contaminated", "overlap")), excluded
    assert sum(len(r["neighbour_ids"]) == 2 for r in rows) > 0.95 * len(rows)


def test_chunks_tile_the_curated_documents(world, augmented):
    out, _ = augmented
    rows = pq.read_table(out / "shards", columns=["doc_id", "chunk", "start", "end", "text"]).to_pylist()
    by_doc: dict[str, list[dict]] = {}
    for r in rows:
        by_doc.setdefault(r["doc_id"], []).append(r)
    kept = pq.read_table(world["run"] / "shards", columns=["id", "text"]).to_pylist()
    assert set(by_doc) == {d["id"] for d in kept if d["text"].strip()}
    for d in kept:
        parts = sorted(by_doc.get(d["id"], []), key=lambda r: r["chunk"])
        assert [p["chunk"] for p in parts] == list(range(len(parts)))
        assert "".join(p["text"] for p in parts) == (d["text"] if parts else "")
        assert all(d["text"][p["start"]:p["end"]] == p["text"] for p in parts)


def test_the_output_verifies_and_a_rerun_reuses_it(world, augmented):
    out, found = augmented
    assert found["kind"] == KIND and verify(str(out))["problems"] == []
    again = augment.run(augment.load_config(augment_cfg(world, out)))
    assert again[SELF_SHA] == found[SELF_SHA]
    with pytest.raises(IntegrityError, match="another config"):
        augment.run(augment.load_config(augment_cfg(world, out, neighbours={"k": 3})))


def test_the_training_loader_reads_chunks_with_their_neighbours(augmented):
    out, found = augmented
    ds = DocumentDataset(str(out), columns=["id", "text", "neighbour_ids", "neighbour_scores", "neighbour_text"],
                         shuffle=True, seed=1, rank=0, world_size=1)
    samples = list(ds)
    assert len(samples) == found["counts"]["chunks"]
    assert len({s["id"] for s in samples}) == len(samples)
    s = samples[0]
    assert isinstance(s["text"], str) and len(s["neighbour_ids"]) == len(s["neighbour_text"]) == len(s["neighbour_scores"])


def test_paragraph_chunks_and_dense_retrieval(world, tmp_path):
    """The dense path end to end on a small subset (encoding on CPU is slow): 20 curated documents augmented
    from a dense index over the first 1,000 characters of 60."""
    from dense_fixtures import embedder

    from tamis.indexes import dense

    subset_ids = sorted(world["texts"])[:60]
    short = {i: world["texts"][i][:1000] for i in subset_ids}
    table = pa.table({"id": subset_ids, "text": [short[i] for i in subset_ids]})
    dense.build(table, str(tmp_path / "dense"), dense.DenseConfig(device="cpu", store_text=True), embedder=embedder())
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": short[i]}) + "\n" for i in subset_ids[:20]))
    curate.run(config.parse({"inputs": [{"path": str(src)}], "output": str(tmp_path / "run")}))
    raw = augment_cfg(world, tmp_path / "out", inputs=[str(tmp_path / "run")],
                      retriever={"kind": "dense", "dense": str(tmp_path / "dense"), "device": "cpu"},
                      chunking={"by": "paragraphs", "min_chars": 200, "max_chars": 600})
    found = augment.run(augment.load_config(raw))
    rows = pq.read_table(tmp_path / "out" / "shards").to_pylist()
    assert len(rows) == found["counts"]["chunks"] > 20
    assert all(r["doc_id"] not in r["neighbour_ids"] and len(r["neighbour_ids"]) == 2 for r in rows)
    assert all(set(r["neighbour_ids"]) <= set(subset_ids) for r in rows)
    assert found["counts"]["excluded_by_reason"]["self"] > 0


# --- kill / resume (pytest -m reliability) ------------------------------------------------------------------


def _cli(cfg_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "tamis", "augment", str(cfg_path)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _no_debris(out: Path, found: dict) -> None:
    present = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert present == {e["path"] for e in found["files"]}


@pytest.mark.reliability
def test_augment_killed_at_random_points_resumes_to_identical_output(world, augmented, tmp_path):
    clean_out, clean = augmented
    expected = digests(clean_out)
    assert len(expected) >= 3
    cfg_path = tmp_path / "clean.yaml"
    cfg_path.write_text(yaml.safe_dump(augment_cfg(world, tmp_path / "timed")))
    started = time.perf_counter()
    done = _cli(cfg_path)
    assert done.wait(timeout=600) == 0, done.stderr.read().decode()[-2000:]
    duration = time.perf_counter() - started
    rng = random.Random(20261204)
    for case in range(CASES):
        out = tmp_path / f"killed{case}"
        path = tmp_path / f"killed{case}.yaml"
        path.write_text(yaml.safe_dump(augment_cfg(world, out, runner={"workers": 1 + case % 2})))
        for _ in range(2):
            proc = _cli(path)
            time.sleep(rng.uniform(0.3, 0.95) * duration)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        resumed = _cli(path)
        assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()[-2000:]
        assert digests(out) == expected, f"case {case}"
        found = load_manifest(str(out))
        assert found["counts"] == clean["counts"]
        _no_debris(out, found)


@pytest.mark.reliability
def test_augment_stopped_by_fault_injection_resumes_to_identical_output(world, augmented, tmp_path):
    clean_out, clean = augmented
    expected = digests(clean_out)
    rng = random.Random(9)
    for case in range(CASES):
        out = tmp_path / f"stopped{case}"
        with pytest.raises(Exception, match="fault injection"):
            augment.run(augment.load_config(augment_cfg(world, out, fail_after_shards=rng.randint(1, len(expected) - 1))))
        found = augment.run(augment.load_config(augment_cfg(world, out)))
        assert digests(out) == expected and found["counts"] == clean["counts"]
        _no_debris(out, found)
