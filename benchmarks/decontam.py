"""Decontamination throughput and leaks: tamis's vectorized n-gram lookup vs a plain Python set of n-grams.

Both check every document of ../shared/data/curation/web_pool (read at run
time) against GSM8K test and HumanEval (../shared/data/curation/decontam) for
shared 13-grams, in one process on one core, on the same pre-read batches. The
baseline is the usual script (lowercase, split on non-word characters, a
Python set of n-gram tuples); both must find the same hit documents. A second
pass plants one GSM8K question in every 50th document so the hit counts are not zero.

    python benchmarks/decontam.py --json      # saves benchmarks/results/decontam.json
"""

import argparse
import gzip
import json
import os
import re
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

DATA = Path(os.environ.get("TAMIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "curation"
_WORD = re.compile(r"[^\W_]+")
RESULTS = Path(__file__).resolve().parent / "results"


def baseline_index(texts: list[str], n: int) -> set[tuple[str, ...]]:
    grams = set()
    for t in texts:
        w = _WORD.findall(t.lower())
        grams.update(tuple(w[i : i + n]) for i in range(len(w) - n + 1))
    return grams


def baseline_hits(texts: list[str], grams: set, n: int) -> list[int]:
    out = []
    for j, t in enumerate(texts):
        w = _WORD.findall(t.lower())
        if any(tuple(w[i : i + n]) in grams for i in range(len(w) - n + 1)):
            out.append(j)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "decontam.json"), help="where the JSON is saved")
    args = ap.parse_args()

    from tamis.dedup.decontam import (
        BenchmarkSet,
        DecontamConfig,
        build_index,
        decontaminate,
        load_items,
        merge_stats,
        report,
    )
    from tamis.schema import documents

    benches = [BenchmarkSet(name="gsm8k", path=str(DATA / "decontam" / "gsm8k_test.jsonl.gz")),
               BenchmarkSet(name="humaneval", path=str(DATA / "decontam" / "humaneval.jsonl.gz"))]
    cfg = DecontamConfig(enabled=True, benchmarks=benches)
    rows = [json.loads(line) for line in gzip.open(DATA / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8")]
    gsm = load_items(benches[0])
    planted = [dict(r, text=r["text"] + "\n" + gsm[i % len(gsm)][1].split("\n")[0]) if i % 50 == 0 else r
               for i, r in enumerate(rows)]
    out = {
        "docs": len(rows),
        "chars": sum(len(r["text"]) for r in rows),
        "ngram": cfg.ngram,
        "protocol": {
            "data": "web_pool (13,652 docs) vs GSM8K test + HumanEval; then with a GSM8K question planted every 50th doc",
            "peer": "the usual script: regex words, a Python set of 13-gram tuples (no settings to tune)",
            "kind": "throughput and agreement; nothing tuned",
        },
        "passes": {},
    }

    start = time.perf_counter()
    index = build_index(cfg)
    out["index"] = {"seconds": round(time.perf_counter() - start, 3), "pairs": len(index.hashes), "bytes": index.nbytes}
    start = time.perf_counter()
    grams = baseline_index([t for b in benches for _, t in load_items(b)], cfg.ngram)
    out["index"]["baseline_seconds"] = round(time.perf_counter() - start, 3)

    for name, corpus in (("web_pool", rows), ("planted_every_50th", planted)):
        batches = [documents([{"id": r["id"], "text": r["text"]} for r in corpus[i : i + args.batch_size]])
                   for i in range(0, len(corpus), args.batch_size)]
        start = time.perf_counter()
        stats: dict = {}
        hit_ids = set()
        for b in batches:
            r = decontaminate(b, index, "drop", 0.5)
            stats = merge_stats(stats, r.stats)
            if r.dropped is not None:
                hit_ids.update(r.dropped.column("id").to_pylist())
        t_tamis = time.perf_counter() - start
        start = time.perf_counter()
        base_ids = set()
        for b in batches:
            texts = b.column("text").to_pylist()
            ids = b.column("id").to_pylist()
            base_ids.update(ids[j] for j in baseline_hits(texts, grams, cfg.ngram))
        t_base = time.perf_counter() - start
        out["passes"][name] = {
            "tamis_docs_per_s": round(len(corpus) / t_tamis, 1),
            "baseline_docs_per_s": round(len(corpus) / t_base, 1),
            "speedup": round(t_base / t_tamis, 2),
            "hit_docs": len(hit_ids), "baseline_hit_docs": len(base_ids),
            "only_tamis": sorted(hit_ids - base_ids)[:5], "only_baseline": sorted(base_ids - hit_ids)[:5],
            "benchmarks": {k: {f: v[f] for f in ("items", "items_leaked", "documents")} for k, v in report(stats).items()},
        }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
