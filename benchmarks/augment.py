"""Retrieval augmentation throughput (chunks/s) with BM25 and with dense retrieval, on the shared web pool.

    nice -n 10 python benchmarks/augment.py [--every N] [--max-chunks C] [--json]

Corpus: every N-th document of the shared web pool (default N=6: 2,276 of 13,652 documents, spread over all
its sources). A curate run over them (defaults plus near-dup dedup, so real near-duplicates in the pool are
dropped with `dup_of` and form the clusters augmentation excludes) gives the input shards; a BM25 index
(texts stored) and a dense index (MiniLM from tamis.embeddings on CPU, torch fp32, one window per document,
texts stored) are built over all the documents, the ones curate dropped included, so every kind of bad
neighbour is there to be retrieved.

Augmentation: `tamis augment`'s pipeline (local Beam runner, 1 worker) over the curate run: RETRO chunks of
64 tokens, the first `--max-chunks` of each document, k=2 neighbours with their texts, excluding self,
near-duplicate clusters, neighbours that share a 13-gram with a GSM8K or HumanEval test item (the shared
decontamination sets) and neighbours whose 5-gram shingles contain half the chunk's. Per retriever:
end-to-end seconds and chunks/s (plan and index verification included), the same work through the pure
Augmenter with the index already loaded (`augmenter_chunks_per_s`, no Beam), and the exclusions by reason.
No external peer does this job; the figures are tamis's own, BM25 beside dense in one run.
"""

import argparse
import gzip
import json
import os
import platform
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "curation"
POOL = SHARED / "web_pool" / "pool.jsonl.gz"
BENCHMARKS = [("gsm8k", SHARED / "decontam" / "gsm8k_test.jsonl.gz"), ("humaneval", SHARED / "decontam" / "humaneval.jsonl.gz")]


def subset(every: int) -> list[dict]:
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [{"id": r["id"], "text": r["text"]} for i, r in enumerate(map(json.loads, f)) if i % every == 0]


def prepare(docs: list[dict], work: Path) -> dict[str, object]:
    """The curate run and the two indexes (reused when a previous run of this benchmark left them)."""
    import pyarrow as pa

    from tamis import config
    from tamis.embeddings import model_path
    from tamis.indexes import bm25, dense
    from tamis.pipelines import curate

    timings = {}
    src = work / "docs.jsonl"
    src.write_text("".join(json.dumps(d) + "\n" for d in docs))
    table = pa.table({"id": [d["id"] for d in docs], "text": [d["text"] for d in docs]})
    run, sparse, vectors = work / "curated", work / "bm25", work / "dense"
    if not (run / "manifest.json").exists():
        started = time.perf_counter()
        curate.run(config.parse({"inputs": [{"path": str(src)}], "output": str(run), "near_dedup": {"enabled": True}}))
        timings["curate_s"] = round(time.perf_counter() - started, 1)
    if not (sparse / "manifest.json").exists():
        started = time.perf_counter()
        bm25.save(bm25.build(table, bm25.BM25Config(store_text=True)), str(sparse))
        timings["bm25_index_s"] = round(time.perf_counter() - started, 1)
    if not (vectors / "manifest.json").exists():
        started = time.perf_counter()
        dense.build(table, str(vectors), dense.DenseConfig(model=str(model_path()), device="cpu", store_text=True,
                                                           index_chunks="first"))
        timings["dense_index_s"] = round(time.perf_counter() - started, 1)
    return {"run": run, "bm25": sparse, "dense": vectors, "timings": timings}


def augment_config(built: dict, kind: str, out: Path, max_chunks: int) -> dict:
    return {
        "inputs": [str(built["run"])],
        "output": str(out),
        "retriever": {"kind": kind, kind: str(built[kind]), **({"device": "cpu"} if kind == "dense" else {})},
        "chunking": {"by": "tokens", "size": 64, "max_chunks": max_chunks},
        "neighbours": {"k": 2, "text_chars": 2048},
        "exclude": {"overlap": {"ngram": 5, "measure": "containment", "threshold": 0.5},
                    "decontaminate": {"enabled": True, "benchmarks": [{"name": n, "path": str(p)} for n, p in BENCHMARKS]}},
    }


def in_process(cfg) -> dict:
    """The pure Augmenter over the run's shards, index loaded and benchmarks indexed before the clock starts."""
    import pyarrow.parquet as pq

    from tamis.io import run_dir
    from tamis.retrievers.augment import Augmenter, merge_counts

    augmenter = Augmenter(cfg)
    run = cfg.inputs[0]
    shards = [os.path.join(run, e["path"]) for e in run_dir.load(run, verify=False)["files"]
              if e["path"].startswith("shards/")]
    batches = [b for s in shards for b in pq.ParquetFile(s).iter_batches(batch_size=cfg.batch_rows, columns=["id", "text"])]
    augmenter.augment(batches[0].slice(0, 4))  # warm: the encoder's first call, caches
    started = time.perf_counter()
    counts = [dict(augmenter.augment(b)[1]) for b in batches]
    seconds = time.perf_counter() - started
    total = merge_counts(counts)
    return {"seconds": round(seconds, 2), "chunks": total["chunks"], "chunks_per_s": round(total["chunks"] / seconds, 1)}


def bench(args: argparse.Namespace) -> dict:
    from tamis.pipelines import augment

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    docs = subset(args.every)
    built = prepare(docs, work)
    out = {}
    for kind in ("bm25", "dense"):
        target = work / f"aug_{kind}"
        shutil.rmtree(target, ignore_errors=True)
        cfg = augment.load_config(augment_config(built, kind, target, args.max_chunks))
        started = time.perf_counter()
        found = augment.run(cfg)
        seconds = time.perf_counter() - started
        counts = found["counts"]
        out[kind] = {"pipeline_seconds": round(seconds, 2), "chunks": counts["chunks"],
                     "pipeline_chunks_per_s": round(counts["chunks"] / seconds, 1),
                     "augmenter": in_process(cfg), "documents": counts["documents"], "neighbours": counts["neighbours"],
                     "excluded_by_reason": counts["excluded_by_reason"], "short_chunks": counts["short_chunks"],
                     "requeried_chunks": counts["requeried_chunks"], "retrieval_calls": counts["retrieval_calls"]}
    return {
        "benchmark": "augment",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "corpus": {"source": "shared web pool", "every": args.every, "documents_indexed": len(docs),
                   "indexes": {"bm25": "lucene, texts stored", "dense": "MiniLM-L6 torch fp32 CPU, Flat, first window"}},
        "settings": {"chunk_tokens": 64, "max_chunks_per_document": args.max_chunks, "k": 2, "overfetch": 4,
                     "query_batch": 256, "overlap": "5-gram containment >= 0.5",
                     "decontaminate": [n for n, _ in BENCHMARKS], "runner": "local Beam, 1 worker"},
        "build_seconds": built["timings"],
        "results": out,
        "ratio_dense_vs_bm25_chunks_per_s": round(out["dense"]["augmenter"]["chunks_per_s"] /
                                                  out["bm25"]["augmenter"]["chunks_per_s"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=int, default=6, help="take every N-th pool document (default 6: 2,276)")
    parser.add_argument("--max-chunks", type=int, default=4, help="chunks per document at most")
    parser.add_argument("--work", default=str(REPO / "bench_out" / "augment"))
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "augment.json"))
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = bench(args)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
        return
    for kind, r in result["results"].items():
        print(f"{kind:5s} {r['chunks']} chunks: pipeline {r['pipeline_chunks_per_s']} chunks/s "
              f"({r['pipeline_seconds']} s), augmenter {r['augmenter']['chunks_per_s']} chunks/s; "
              f"excluded {r['excluded_by_reason']}, short {r['short_chunks']}")


if __name__ == "__main__":
    main()
