"""What Beam costs: the curate pipeline against the same batch functions called in a plain loop.

Both sides read the same files, normalize, drop exact duplicates (smallest id
kept), run the same scorer/filter chain and write zstd Parquet shards plus the
dropped documents; the loop does it in one process with no Beam at all. The
pipeline side is `tamis curate` on the in-process runner with one worker. The
ratio (pipeline docs/s ÷ loop docs/s) is what the Beam layer keeps; the fixed
start-up cost of a Beam job is measured apart on a ten-document input and
reported, since it does not grow with the data.

    python benchmarks/pipeline_overhead.py --json
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import gzip
import itertools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis import config
from tamis.dedup.exact import first_occurrences, text_hashes
from tamis.filters.chain import apply_chain
from tamis.filters.normalize import normalize_batch
from tamis.filters.registry import build
from tamis.io.readers import expand, read_file
from tamis.io.shards import ShardWriter
from tamis.pipelines import curate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "curation"
DEFAULT_FILTERS = "langid,gopher_repetition,gopher_quality,c4_quality,fineweb_quality"


def make_cfg(inputs: str, out: Path, filters: list[str], batch_size: int) -> config.CurateConfig:
    return config.parse({
        "inputs": [{"path": inputs}],
        "output": str(out),
        "filters": [{"name": f} for f in filters],
        "runner": {"batch_size": batch_size},
        "shards": {"target_bytes": 32 * 1024 * 1024},
        "max_error_fraction": 1.0,
    })


def plain_loop(cfg: config.CurateConfig, out: Path) -> dict:
    """The same work as the pipeline, one process, no Beam: read → normalize → dedup → chain → write."""
    components = [build(s.name, s.params) for s in cfg.filters]
    batches = []
    read = errors = 0
    for path in expand(cfg.inputs[0]):
        for kind, batch in read_file(path, cfg.inputs[0], cfg.runner.batch_size):
            read += batch.num_rows
            if kind == "errors":
                errors += batch.num_rows
                continue
            batch = normalize_batch(batch, cfg.normalize)
            batches.append(batch.filter(pc.greater(pc.utf8_length(batch.column("text")), 0)))
    docs = pa.Table.from_batches(batches)
    dup, _ = first_occurrences(text_hashes(docs.column("text").to_pylist()), docs.column("id").to_pylist())
    keep = np.ones(docs.num_rows, bool)
    keep[dup] = False
    docs = docs.filter(pa.array(keep))
    kept = dropped = 0
    with ShardWriter(str(out), "shards", "part", cfg.shards.target_bytes) as shards, ShardWriter(
        str(out), "dropped", "part", cfg.shards.target_bytes
    ) as drops:
        for batch in docs.to_batches(max_chunksize=cfg.runner.batch_size):
            k, d = apply_chain(components, batch)
            kept += k.num_rows
            shards.write(k)
            for b in d:
                dropped += b.num_rows
                drops.write(b)
    return {"read": read, "kept": kept, "dropped": dropped + len(dup), "errors": errors}


def timed(fn, *args) -> tuple[float, dict]:
    t = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED / "web_pool" / "pool.jsonl.gz"))
    ap.add_argument("--docs", type=int, default=6000, help="documents taken from --data")
    ap.add_argument("--files", type=int, default=4, help="input files the documents are split into")
    ap.add_argument("--filters", default=DEFAULT_FILTERS)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=2, help="best of N runs of each side")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default="benchmarks/results/pipeline_overhead.json")
    args = ap.parse_args()
    filters = [f for f in args.filters.split(",") if f]

    work = Path(tempfile.mkdtemp(prefix="tamis-overhead-"))
    try:
        with gzip.open(args.data, "rt", encoding="utf-8") as f:
            lines = list(itertools.islice(f, args.docs))
        src = work / "in"
        src.mkdir()
        for i in range(args.files):
            (src / f"part{i}.jsonl").write_text("".join(lines[i :: args.files]), encoding="utf-8")
        tiny = work / "tiny"
        tiny.mkdir()
        (tiny / "part.jsonl").write_text("".join(lines[:10]), encoding="utf-8")
        mb = sum(len(json.loads(line)["text"].encode()) for line in lines) / 1e6

        loop_s, pipe_s, counts = [], [], {}
        for r in range(args.repeat):
            cfg = make_cfg(str(src / "*.jsonl"), work / f"loop{r}", filters, args.batch_size)
            s, counts["loop"] = timed(plain_loop, cfg, work / f"loop{r}")
            loop_s.append(s)
            cfg = make_cfg(str(src / "*.jsonl"), work / f"beam{r}", filters, args.batch_size)
            s, manifest = timed(curate.run, cfg)
            pipe_s.append(s)
            c = manifest["counts"]
            counts["pipeline"] = {k: c[k] for k in ("read", "kept", "dropped", "errors")}
        fixed_s, _ = timed(curate.run, make_cfg(str(tiny / "*.jsonl"), work / "tiny-run", filters, args.batch_size))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    loop_best, pipe_best = min(loop_s), min(pipe_s)
    result = {
        "docs": len(lines),
        "mb": round(mb, 2),
        "files": args.files,
        "filters": filters,
        "batch_size": args.batch_size,
        "loop_s": round(loop_best, 3),
        "pipeline_s": round(pipe_best, 3),
        "loop_docs_per_s": round(len(lines) / loop_best, 1),
        "pipeline_docs_per_s": round(len(lines) / pipe_best, 1),
        "pipeline_mb_per_s": round(mb / pipe_best, 3),
        "throughput_ratio": round(loop_best / pipe_best, 3),
        "pipeline_fixed_s": round(fixed_s, 3),
        "throughput_ratio_without_fixed": round(loop_best / max(pipe_best - fixed_s, 1e-9), 3),
        "counts": counts,
        "same_counts": counts["loop"] == counts["pipeline"],
        "runs": {"loop_s": [round(s, 3) for s in loop_s], "pipeline_s": [round(s, 3) for s in pipe_s]},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=None if args.json else 2)
    print()


if __name__ == "__main__":
    main()
