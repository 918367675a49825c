"""tamis BM25 against bm25s and rank-bm25, side by side in one run on one core.

    python benchmarks/bm25.py [--beir DIR] [--rounds N] [--json]
    python benchmarks/bm25.py --synthetic-docs N [--workers W] [--json]

BEIR mode (default: ../shared/data/retrieval/cranfield): every system indexes
title + text and answers every judged query. bm25s runs as its users run it
(method "lucene", English stopwords, Snowball English stemmer via PyStemmer);
rank-bm25's BM25Okapi gets the same stemmed tokens ("rank_bm25_stemmed") and
plain `str.split` tokens ("rank_bm25_split"). Build time is tokenization plus
indexing; QPS is one query at a time, top 10, query analysis included. The
systems run in rounds, round-robin, each keeping its best round, so load from
other processes hits them alike; compare the ratios in the same run.

Scale mode grows N documents from the web pool's real text (random runs of its
lines, fixed seed), writes them as Parquet shards, and builds the tamis index
through the Beam pipeline (`tamis index bm25`) in a child process, reporting
build time (wall, and CPU seconds, which other jobs on shared cores disturb less),
peak RSS (of the child and its workers), index bytes and QPS over
queries cut from the same text; bm25s builds the same corpus in its own child
when N <= --bm25s-max-docs (its tokens are Python lists, about 40 bytes each).
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one core, before any native library loads

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tamis.eval.metrics import ndcg_at_k, recall_at_k  # noqa: E402
from tamis.eval.retrieval import load_beir  # noqa: E402
from tamis.indexes import bm25  # noqa: E402
from tamis.retrievers.bm25 import BM25Retriever  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CRANFIELD = SHARED / "retrieval" / "cranfield"
POOL = SHARED / "curation" / "web_pool" / "pool.jsonl.gz"


class Tamis:
    name = "tamis"

    def build(self, ids, texts):
        import pyarrow as pa

        self.retriever = BM25Retriever(bm25.build(pa.table({"id": ids, "text": texts})))

    def search(self, queries, k):
        return self.retriever.search(queries, k)[0]


class BM25S:
    name = "bm25s"

    def __init__(self):
        import Stemmer

        self.stemmer = Stemmer.Stemmer("english")

    def _tokens(self, texts):
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, show_progress=False)

    def build(self, ids, texts):
        import bm25s

        self.ids = ids
        self.model = bm25s.BM25(method="lucene")
        self.model.index(self._tokens(texts), show_progress=False)

    def search(self, queries, k):
        docs, _ = self.model.retrieve(self._tokens(queries), k=min(k, len(self.ids)), show_progress=False)
        return [[self.ids[d] for d in row] for row in docs]


class RankBM25:
    def __init__(self, stemmed: bool):
        self.name = "rank_bm25_stemmed" if stemmed else "rank_bm25_split"
        self.stemmed = stemmed
        if stemmed:
            import Stemmer

            self.stemmer = Stemmer.Stemmer("english")

    def _tokens(self, texts):
        if not self.stemmed:
            return [t.split() for t in texts]
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)

    def build(self, ids, texts):
        from rank_bm25 import BM25Okapi

        self.ids = ids
        self.model = BM25Okapi(self._tokens(texts))

    def search(self, queries, k):
        out = []
        for tokens in self._tokens(queries):
            scores = self.model.get_scores(tokens)
            top = np.argsort(-scores, kind="stable")[:k]
            out.append([self.ids[d] for d in top])
        return out


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_beir(directory: Path, rounds: int) -> dict:
    data = load_beir(directory)
    ids, texts = data.corpus["id"].to_pylist(), data.corpus["text"].to_pylist()
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    systems = [Tamis(), BM25S(), RankBM25(stemmed=True), RankBM25(stemmed=False)]
    build_s = {s.name: float("inf") for s in systems}
    qps = {s.name: 0.0 for s in systems}
    for _ in range(rounds):
        for s in systems:
            build_s[s.name] = min(build_s[s.name], _timed(lambda s=s: s.build(ids, texts)))
            seconds = _timed(lambda s=s: [s.search([q], 10) for q in queries])
            qps[s.name] = max(qps[s.name], len(queries) / seconds)
    results = {}
    for s in systems:
        ranked = s.search(queries, 100)
        results[s.name] = {
            "ndcg@10": float(np.mean([ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked, strict=True)])),
            "recall@100": float(
                np.mean([recall_at_k(r, data.qrels[q], 100) for q, r in zip(qids, ranked, strict=True)])
            ),
            "qps": qps[s.name],
            "build_s": build_s[s.name],
        }
    variants = {}
    for variant in ("lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"):
        retriever = BM25Retriever(bm25.build(data.corpus, bm25.BM25Config(variant=variant)))
        ranked = retriever.search(queries, 100)[0]
        variants[variant] = {
            "ndcg@10": float(np.mean([ndcg_at_k(r, data.qrels[q], 10) for q, r in zip(qids, ranked, strict=True)])),
            "recall@100": float(
                np.mean([recall_at_k(r, data.qrels[q], 100) for q, r in zip(qids, ranked, strict=True)])
            ),
        }
    t, b = results["tamis"], results["bm25s"]
    return {
        "mode": "beir",
        "beir": str(directory),
        "docs": len(ids),
        "queries": len(queries),
        "rounds": rounds,
        "python": platform.python_version(),
        "qps_ratio_vs_bm25s": t["qps"] / b["qps"],
        "ndcg_delta_vs_bm25s": t["ndcg@10"] - b["ndcg@10"],
        "recall_delta_vs_bm25s": t["recall@100"] - b["recall@100"],
        "build_ratio_vs_bm25s": t["build_s"] / b["build_s"],
        "systems": results,
        "tamis_variants": variants,
    }


# --- scale mode ---------------------------------------------------------------------------------------------------


def pool_lines(limit_chars: int = 40) -> list[str]:
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [ln for row in f for ln in json.loads(row)["text"].split("\n") if len(ln) >= limit_chars]


def write_synthetic(n_docs: int, folder: Path, shard_docs: int, seed: int = 0) -> list[str]:
    """N documents of 3-20 random pool lines each, as Parquet files of `shard_docs` documents."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = np.array(pool_lines(), dtype=object)
    rng = np.random.default_rng(seed)
    paths = []
    for start in range(0, n_docs, shard_docs):
        n = min(shard_docs, n_docs - start)
        sizes = rng.integers(3, 21, size=n)
        picks = rng.integers(0, len(lines), size=int(sizes.sum()))
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        texts = ["\n".join(lines[picks[bounds[i] : bounds[i + 1]]]) for i in range(n)]
        path = folder / f"synthetic-{start // shard_docs:05d}.parquet"
        pq.write_table(pa.table({"id": [f"syn-{start + i}" for i in range(n)], "text": texts}), path)
        paths.append(str(path))
    return paths


def synthetic_queries(n: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = pool_lines()
    out = []
    for i in rng.integers(0, len(lines), size=n):
        words = lines[i].split()
        start = int(rng.integers(0, max(1, len(words) - 4)))
        out.append(" ".join(words[start : start + int(rng.integers(2, 6))]))
    return out


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def child_bm25s(paths: list[str], queries: list[str], index: str) -> dict:
    import pyarrow.parquet as pq

    texts = [t for p in paths for t in pq.read_table(p, columns=["text"])["text"].to_pylist()]
    ids = [str(i) for i in range(len(texts))]
    system = BM25S()
    cpu = time.process_time()
    build_s = _timed(lambda: system.build(ids, texts))
    cpu = time.process_time() - cpu
    texts.clear()  # bm25s keeps its own tokens; free the text before timing queries
    seconds = _timed(lambda: [system.search([q], 10) for q in queries])
    system.model.save(index)  # its own format (npy arrays + vocabulary JSON), for the size only
    out = {"build_s": build_s, "build_cpu_s": cpu, "qps": len(queries) / seconds, "peak_rss_mb": _peak_rss_mb()}
    return {**out, "index_bytes": bm25.index_bytes(index)}


def _run_child(argv: list[str]) -> dict:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scale(n_docs: int, workdir: Path, shard_docs: int, workers: int, bm25s_max: int, n_queries: int) -> dict:
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    gen_s = _timed(lambda: write_synthetic(n_docs, corpus, shard_docs))
    paths = sorted(str(p) for p in corpus.glob("*.parquet"))
    queries = synthetic_queries(n_queries)
    index = workdir / "index"
    tamis = _run_child(
        [__file__, "--_child", "tamis", "--_paths", *paths, "--_index", str(index), "--workers", str(workers)]
    )
    if "error" not in tamis:
        load_s = _timed(lambda: globals().__setitem__("_r", BM25Retriever.open(str(index))))
        retriever = globals().pop("_r")
        seconds = _timed(lambda: [retriever.search([q], 10) for q in queries])
        tamis.update(qps=len(queries) / seconds, load_verify_s=load_s, index_bytes=bm25.index_bytes(str(index)))
        tamis["counts"] = retriever.index.manifest["counts"]
    if n_docs <= bm25s_max:
        qfile = workdir / "queries.json"
        qfile.write_text(json.dumps(queries))
        bm25s_index = str(workdir / "bm25s-index")
        other = _run_child(
            [__file__, "--_child", "bm25s", "--_paths", *paths, "--_queries", str(qfile), "--_index", bm25s_index]
        )
    else:
        other = {"skipped": f"{n_docs} docs > --bm25s-max-docs {bm25s_max}"}
    out = {
        "mode": "synthetic",
        "docs": n_docs,
        "shard_docs": shard_docs,
        "workers": workers,
        "generate_s": gen_s,
        "corpus_bytes": sum(os.path.getsize(p) for p in paths),
        "queries": n_queries,
        "systems": {"tamis": tamis, "bm25s": other},
    }
    if "qps" in tamis and "qps" in other:
        out["qps_ratio_vs_bm25s"] = tamis["qps"] / other["qps"]
        out["build_ratio_vs_bm25s"] = tamis["build_s"] / other["build_s"]
        out["build_cpu_ratio_vs_bm25s"] = tamis["build_cpu_s"] / other["build_cpu_s"]
    return out


def child(args: argparse.Namespace) -> dict:
    if args._child == "bm25s":
        return child_bm25s(args._paths, json.loads(Path(args._queries).read_text()), args._index)
    from tamis.cli import main

    argv = ["index", "bm25", "--output", args._index, "--workers", str(args.workers), *args._paths]
    start, cpu = time.perf_counter(), time.process_time()
    code = main(argv)
    if code:
        raise SystemExit(code)
    build_s, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"build_s": build_s, "build_cpu_s": cpu, "peak_rss_mb": _peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=CRANFIELD, help="BEIR folder (default: shared Cranfield)")
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds; each system keeps its best")
    parser.add_argument("--synthetic-docs", type=int, help="scale mode: grow this many documents from the web pool")
    parser.add_argument("--shard-docs", type=int, default=100_000, help="scale mode: documents per input file")
    parser.add_argument("--workers", type=int, default=1, help="scale mode: Beam local workers")
    parser.add_argument("--bm25s-max-docs", type=int, default=500_000, help="scale mode: largest corpus for bm25s")
    parser.add_argument("--queries", type=int, default=500, help="scale mode: queries timed")
    parser.add_argument("--workdir", type=Path, help="scale mode: where corpus and index go (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--_index", help=argparse.SUPPRESS)
    parser.add_argument("--_queries", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(child(args)))
        return
    if args.synthetic_docs:
        with tempfile.TemporaryDirectory(prefix="tamis-bm25-bench-") as tmp:
            out = bench_scale(
                args.synthetic_docs,
                args.workdir or Path(tmp),
                args.shard_docs,
                args.workers,
                args.bm25s_max_docs,
                args.queries,
            )
    else:
        out = bench_beir(args.beir, args.rounds)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
