"""SemDeDup on real web text: docs/s per step on CPU, drops per eps, and what k-means clustering misses.

On a hash-chosen sample of ../shared/data/curation/web_pool (read at run
time), one core: embedding (MiniLM, `max_chars` prefix), FAISS k-means,
assignment and within-cluster greedy dedup are timed separately. Drops are
counted for several eps on the same vectors, both within k-means clusters
(the stage) and over one cluster holding everything (exhaustive greedy), so
the ratio says how many duplicates the clustering loses. A few dropped pairs
are printed so a reader can judge whether they are real duplicates.

    python benchmarks/semdedup.py --docs 2000 --json      # saves benchmarks/results/semdedup.json
"""

import argparse
import gzip
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

DATA = Path(os.environ.get("TAMIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "curation"
RESULTS = Path(__file__).resolve().parent / "results"


def sample_pool(n: int) -> list[dict]:
    from tamis.dedup.semdedup import sample_keys, sample_order

    rows = [json.loads(line) for line in gzip.open(DATA / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8")]
    ids = [r["id"] for r in rows]
    return [rows[i] for i in sorted(sample_order(sample_keys(ids, 1), ids)[:n].tolist())]


def dedup(vectors, rank, labels, eps):
    from tamis.dedup.semdedup import cluster_drops

    out = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        out += [(members[d.row], members[d.kept], d.cosine)
                for d in cluster_drops(vectors[members], [rank[i] for i in members], eps)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--clusters", type=int, default=100)
    ap.add_argument("--max-chars", type=int, default=2000)
    ap.add_argument("--examples", type=int, default=6, help="dropped pairs shown, lowest cosine first")
    ap.add_argument("--examples-eps", type=float, default=0.05, help="the eps of the pairs shown")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "semdedup.json"), help="where the JSON is saved")
    args = ap.parse_args()

    import torch

    from tamis.dedup.semdedup import SemDedupConfig, assign, embed, embedder, train_kmeans

    torch.set_num_threads(1)
    rows = sample_pool(args.docs)
    cfg = SemDedupConfig(enabled=True, device="cpu", clusters=args.clusters, max_chars=args.max_chars)
    model = embedder(cfg)
    texts = [r["text"] for r in rows]
    rank = [(0.0, 0.0, r["id"]) for r in rows]  # keep: first
    t = {}
    start, cpu = time.perf_counter(), time.process_time()
    vectors = embed(model, texts, cfg.max_chars)
    t["embed"] = time.perf_counter() - start
    embed_cpu = time.process_time() - cpu
    start = time.perf_counter()
    centroids = train_kmeans(vectors, cfg.clusters, cfg.kmeans_iterations, cfg.seed)
    t["kmeans"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = assign(vectors, centroids)
    t["assign"] = time.perf_counter() - start
    start = time.perf_counter()
    dedup(vectors, rank, labels, cfg.eps)
    t["dedup"] = time.perf_counter() - start
    total = sum(t.values())
    sizes = np.bincount(labels)
    by_eps = {}
    for eps in (0.02, 0.05, 0.1, 0.15):
        clustered = len(dedup(vectors, rank, labels, eps))
        exhaustive = len(dedup(vectors, rank, np.zeros(len(rows), np.int64), eps))
        by_eps[str(eps)] = {"drops": clustered, "drops_exhaustive": exhaustive,
                            "clustering_recall": round(clustered / exhaustive, 3) if exhaustive else None}
    examples = [{"cosine": round(c, 4), "dropped": rows[d]["id"], "kept": rows[k]["id"],
                 "dropped_text": rows[d]["text"][:200], "kept_text": rows[k]["text"][:200]}
                for d, k, c in sorted(dedup(vectors, rank, labels, args.examples_eps), key=lambda x: x[2])
                [: args.examples]]
    out = {
        "docs": len(rows), "chars": sum(map(len, texts)), "clusters": int(len(centroids)),
        "largest_cluster": int(sizes.max()), "eps": cfg.eps, "max_chars": cfg.max_chars,
        "seconds": {k: round(v, 3) for k, v in t.items()},
        "docs_per_s": round(len(rows) / total, 1), "embed_share": round(t["embed"] / total, 4),
        "embed_docs_per_cpu_s": round(len(rows) / embed_cpu, 1),  # wall time suffers from shared cores
        "drops_by_eps": by_eps, "lowest_cosine_drops": examples,
        "protocol": {
            "data": f"a hash-chosen sample of {len(rows)} web_pool documents",
            "peer": "exhaustive greedy dedup over one cluster holding every document (what k-means may lose)",
            "kind": "timing and drop counts; eps 0.05 is a conservative default, not tuned on labels",
        },
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(out))
        return
    print(json.dumps({k: v for k, v in out.items() if k != "lowest_cosine_drops"}, indent=1))
    for e in examples:
        print(f"\n--- cosine {e['cosine']}: {e['dropped']} dropped for {e['kept']}")
        print("  dropped:", e["dropped_text"].replace("\n", " | "))
        print("  kept:   ", e["kept_text"].replace("\n", " | "))


if __name__ == "__main__":
    main()
