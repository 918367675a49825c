"""tamis BM25 against bm25s (numpy and numba backends), tantivy and rank-bm25: one run, one core, side by side.

    python benchmarks/bm25.py [--beir DIR] [--rounds N] [--json]          # BEIR folder, default shared Cranfield
    python benchmarks/bm25.py --synthetic-docs 1000000 [--queries 500] [--json]      # scale mode

Every system answers the same queries from the same text, one thread each
(OMP/NUMBA/RAYON threads 1, bm25s `n_threads=1`, tantivy's writer one thread),
with query analysis inside the timed region (text in, ranked ids out):

- tamis: `BM25Retriever.search`, its defaults (lucene BM25, k1 1.5, b 0.75,
  English stopwords, Snowball English stemmer).
- bm25s, as its README and its own benchmark (xhluca/bm25-benchmarks) run it:
  `bm25s.tokenization.Tokenizer(stopwords="en", stemmer=PyStemmer English)`,
  `BM25(method="lucene", backend=...)` over `tokenize(..., return_as="tuple")`;
  queries through `tokenize(..., update_vocab=False, return_as="ids")` and
  `retrieve(ids, k, corpus=ids_array, n_threads=1)`: the same analysis and
  scoring as tamis. Both backends: "numpy" (`backend_selection="auto"`, which
  is numpy here: jax is not installed) and "numba".
- tantivy (the `tantivy` package) as its users run it: a text field with the
  `en_stem` tokenizer, default BM25 (k1 1.2, b 0.75), queries through
  `parse_query_lenient` over that field, ids read from a stored field.
- rank-bm25's BM25Okapi on the same stemmed tokens, for reference.

Modes: `single` is one query per call, top 10; `batch` is one call for every
query, top 10 (tantivy and rank-bm25 have no batch call: their batch is a
loop). Systems run in rounds, round-robin, each keeping its best round, so
load from other processes hits them alike; QPS from CPU time (process_time)
is printed beside wall-clock QPS, since CPU time moves less on a shared
machine. Quality: nDCG@10 and recall@100 of each system's batch top 100 by
pytrec_eval (tamis.eval.metrics.ranking); a hit with score 0 (no query term in
the document) is not a result. Build time is analysis plus indexing, best of
the rounds (BEIR) or one build in its own process (scale). Each timed figure
repeats its mode over the query set for at least 0.25 s.

Scale mode grows N documents of 3-20 random lines of the web pool (fixed
seed), as Parquet shards. Queries are 2-5 consecutive words of one line of a
randomly drawn document; that query's relevant documents are every document
holding the same line (known-line search), so nDCG and recall can be
measured. tamis builds through `tamis index bm25` (Beam, one worker; the time
includes reading the Parquet files and writing and checksumming the index),
bm25s and tantivy in their own processes from the same files read beforehand
(bm25s saved afterwards, outside the timing); each reports its peak RSS.
Then one process loads the three (tamis verifies every checksum) and times
them round-robin. rank-bm25 is not run at scale: it keeps a Python dict per
document and scores every document in Python per query term.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"  # one core, before any native library loads

import argparse  # noqa: E402
import gc  # noqa: E402
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
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tamis.eval.metrics import ranking  # noqa: E402
from tamis.eval.retrieval import load_beir  # noqa: E402
from tamis.indexes import bm25  # noqa: E402
from tamis.retrievers.bm25 import BM25Retriever  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CRANFIELD = SHARED / "retrieval" / "cranfield"
POOL = SHARED / "curation" / "web_pool" / "pool.jsonl.gz"
K, K_QUALITY = 10, 100


# --- the systems: build(ids, texts); batch(queries, k) and single(query, k), timed, in the system's own output;
# results(queries, k) -> (ids, scores) per query as lists, for the quality figures ------------------------------


class Tamis:
    name = "tamis"

    def build(self, ids, texts):
        self.retriever = BM25Retriever(bm25.build(pa.table({"id": ids, "text": texts})))

    def open(self, root):
        self.retriever = BM25Retriever.open(root)

    def batch(self, queries, k):
        return self.retriever.search(queries, k)

    def single(self, query, k):
        return self.retriever.search([query], k)

    def results(self, queries, k):
        ids, scores = self.retriever.search(queries, k)
        return ids, [s.tolist() for s in scores]


class BM25S:
    def __init__(self, backend: str):
        self.backend = backend
        self.name = f"bm25s_{backend}"

    def _tokenizer(self):
        import bm25s
        import Stemmer

        return bm25s.tokenization.Tokenizer(stopwords="en", stemmer=Stemmer.Stemmer("english"))

    def build(self, ids, texts):
        import bm25s

        self.ids = np.asarray(ids)
        self.tokenizer = self._tokenizer()
        tokens = self.tokenizer.tokenize(texts, return_as="tuple", show_progress=False)
        self.model = bm25s.BM25(method="lucene", backend=self.backend)
        self.model.index(tokens, show_progress=False)

    def save(self, root):
        self.model.save(root, show_progress=False)
        self.tokenizer.save_vocab(root)
        self.tokenizer.save_stopwords(root)
        np.save(os.path.join(root, "ids.npy"), self.ids)

    def open(self, root):
        import bm25s

        self.model = bm25s.BM25.load(root, backend=self.backend, show_progress=False)
        self.tokenizer = self._tokenizer()
        self.tokenizer.load_vocab(root)
        self.tokenizer.load_stopwords(root)
        self.ids = np.load(os.path.join(root, "ids.npy"))

    def batch(self, queries, k):
        tokens = self.tokenizer.tokenize(queries, update_vocab=False, return_as="ids", show_progress=False)
        return self.model.retrieve(tokens, k=k, corpus=self.ids, n_threads=1, show_progress=False)

    def single(self, query, k):
        return self.batch([query], k)

    def results(self, queries, k):
        docs, scores = self.batch(queries, k)
        return [[str(d) for d in row] for row in docs.tolist()], scores.tolist()


class Tantivy:
    name = "tantivy"

    def build(self, ids, texts, root=None):
        self.build_batches([(ids, texts)], root)

    def build_batches(self, batches, root=None):
        """Index (ids, texts) batches in order, one writer thread; then merge as tantivy's merge policy does."""
        import tantivy

        builder = tantivy.SchemaBuilder()
        builder.add_text_field("id", stored=True, tokenizer_name="raw")
        builder.add_text_field("body", stored=False, tokenizer_name="en_stem")
        self.index = tantivy.Index(builder.build(), path=root)
        writer = self.index.writer(heap_size=1_000_000_000, num_threads=1)
        for ids, texts in batches:
            for i, text in zip(ids, texts, strict=True):
                writer.add_document(tantivy.Document(id=i, body=text))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self.searcher = self.index.searcher()

    def open(self, root):
        import tantivy

        self.index = tantivy.Index.open(root)
        self.searcher = self.index.searcher()

    def single(self, query, k):
        parsed, _ = self.index.parse_query_lenient(query, ["body"])
        hits = self.searcher.search(parsed, k).hits
        return [self.searcher.doc(a)["id"][0] for _, a in hits], [s for s, _ in hits]

    def batch(self, queries, k):  # no batch call in tantivy: a loop
        return [self.single(q, k) for q in queries]

    def results(self, queries, k):
        found = self.batch(queries, k)
        return [ids for ids, _ in found], [scores for _, scores in found]


class RankBM25:
    name = "rank_bm25"

    def build(self, ids, texts):
        import bm25s
        import Stemmer
        from rank_bm25 import BM25Okapi

        self.ids = ids
        self.stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)
        self.model = BM25Okapi(tokens)

    def _scores(self, query):
        import bm25s

        tokens = bm25s.tokenize([query], stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)
        return self.model.get_scores(tokens[0])

    def single(self, query, k):
        s = self._scores(query)
        top = np.argsort(-s, kind="stable")[:k]
        return [self.ids[d] for d in top], s[top].tolist()

    def batch(self, queries, k):  # no batch call in rank-bm25: a loop
        return [self.single(q, k) for q in queries]

    def results(self, queries, k):
        found = self.batch(queries, k)
        return [ids for ids, _ in found], [scores for _, scores in found]


# --- timing and quality ----------------------------------------------------------------------------------------


def _clock(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_queries(systems, queries: list[str], rounds: int, min_time: float = 0.25) -> dict[str, dict[str, float]]:
    """Best single and batch QPS (wall and CPU) of each system over round-robin rounds, after a warm-up call.

    A round repeats each mode over the whole query set until `min_time` seconds have passed, so one short
    call preempted by another process cannot decide a figure.
    """
    best = {s.name: {"single_qps": 0.0, "batch_qps": 0.0, "single_qps_cpu": 0.0, "batch_qps_cpu": 0.0} for s in systems}
    for s in systems:
        s.batch(queries[:2], K)  # compiles numba kernels, fills caches
        s.single(queries[0], K)
    for _ in range(rounds):
        for s in systems:
            for mode, fn in (
                ("batch", lambda s=s: s.batch(queries, K)),
                ("single", lambda s=s: [s.single(q, K) for q in queries]),
            ):
                passes, wall, cpu = 0, 0.0, 0.0
                while wall < min_time:
                    w, c = _clock(fn)
                    passes, wall, cpu = passes + 1, wall + w, cpu + c
                b = best[s.name]
                b[f"{mode}_qps"] = max(b[f"{mode}_qps"], passes * len(queries) / wall)
                b[f"{mode}_qps_cpu"] = max(b[f"{mode}_qps_cpu"], passes * len(queries) / max(cpu, 1e-9))
    return best


def quality(system, qids: list[str], queries: list[str], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    ids, scores = system.results(queries, K_QUALITY)
    run = {
        q: {d: float(s) for d, s in zip(i, sc, strict=True) if s != 0}
        for q, i, sc in zip(qids, ids, scores, strict=True)
    }
    return ranking(run, qrels, K, K_QUALITY)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def summary(systems: dict[str, dict], mode: dict) -> dict:
    t, b, tv = systems["tamis"], systems["bm25s_numba"], systems.get("tantivy", {})
    single, batch = t["single_qps"] / b["single_qps"], t["batch_qps"] / b["batch_qps"]
    out = {
        **mode,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores visible, one used",
        "qps_ratio_vs_bm25s": min(single, batch),
        "qps_ratio_vs_bm25s_single": single,
        "qps_ratio_vs_bm25s_batch": batch,
        "qps_ratio_vs_bm25s_cpu": min(
            t["single_qps_cpu"] / b["single_qps_cpu"], t["batch_qps_cpu"] / b["batch_qps_cpu"]
        ),
        "ndcg_delta_vs_bm25s": t["ndcg@10"] - b["ndcg@10"],
        "recall_delta_vs_bm25s": t["recall@100"] - b["recall@100"],
        "build_ratio_vs_bm25s": t["build_s"] / b["build_s"],
    }
    if "single_qps" in tv:
        out["qps_ratio_vs_tantivy"] = t["single_qps"] / tv["single_qps"]
        out["qps_ratio_vs_tantivy_cpu"] = t["single_qps_cpu"] / tv["single_qps_cpu"]
    return {**out, "systems": systems}


# --- BEIR mode -----------------------------------------------------------------------------------------------


def bench_beir(directory: Path, rounds: int) -> dict:
    data = load_beir(directory)
    ids, texts = data.corpus["id"].to_pylist(), data.corpus["text"].to_pylist()
    qids = list(data.queries)
    queries = [data.queries[q] for q in qids]
    systems = [Tamis(), BM25S("numba"), BM25S("numpy"), Tantivy(), RankBM25()]
    build = {s.name: float("inf") for s in systems}
    for _ in range(rounds):
        for s in systems:
            build[s.name] = min(build[s.name], _clock(lambda s=s: s.build(ids, texts))[0])
    results = time_queries(systems, queries, rounds)
    for s in systems:
        results[s.name].update(build_s=build[s.name], **quality(s, qids, queries, data.qrels))
    return summary(
        results, {"mode": "beir", "beir": str(directory), "docs": len(ids), "queries": len(queries), "rounds": rounds}
    )


# --- scale mode ----------------------------------------------------------------------------------------------


def pool_lines(min_chars: int = 40) -> list[str]:
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [ln for row in f for ln in json.loads(row)["text"].split("\n") if len(ln) >= min_chars]


def synthetic_plan(n_docs: int, n_queries: int, seed: int = 0):
    """The pool lines, each document's lines, and the queries with their judgments (see the module docstring)."""
    lines = np.array(pool_lines(), dtype=object)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 21, size=n_docs)
    picks = rng.integers(0, len(lines), size=int(sizes.sum()))
    chosen = picks[rng.integers(0, len(picks), size=n_queries)]
    queries = []
    for line in chosen:
        words = lines[line].split()
        first = int(rng.integers(0, max(1, len(words) - 4)))
        queries.append(" ".join(words[first : first + int(rng.integers(2, 6))]))
    doc_of_pick = np.repeat(np.arange(n_docs), sizes)
    holders: dict[int, list[int]] = {}
    hit = np.isin(picks, chosen)
    for line, doc in zip(picks[hit].tolist(), doc_of_pick[hit].tolist(), strict=True):
        holders.setdefault(line, []).append(doc)
    qids = [f"q{i}" for i in range(n_queries)]
    qrels = {q: {f"syn-{d}": 1 for d in holders[int(line)]} for q, line in zip(qids, chosen, strict=True)}
    return lines, sizes, picks, qids, queries, qrels


def write_synthetic(n_docs: int, n_queries: int, folder: Path, shard_docs: int = 100_000, seed: int = 0):
    """The plan's documents as Parquet files of `shard_docs`; returns (paths, query ids, queries, qrels)."""
    lines, sizes, picks, qids, queries, qrels = synthetic_plan(n_docs, n_queries, seed)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    paths = []
    for start in range(0, n_docs, shard_docs):
        stop = min(start + shard_docs, n_docs)
        texts = ["\n".join(lines[picks[bounds[i] : bounds[i + 1]]]) for i in range(start, stop)]
        path = folder / f"synthetic-{start // shard_docs:05d}.parquet"
        pq.write_table(pa.table({"id": [f"syn-{i}" for i in range(start, stop)], "text": texts}), path)
        paths.append(str(path))
    return paths, qids, queries, qrels


def _texts(paths: list[str]) -> tuple[list[str], list[str]]:
    tables = [pq.read_table(p) for p in paths]
    return [i for t in tables for i in t["id"].to_pylist()], [x for t in tables for x in t["text"].to_pylist()]


def child_build(system: str, paths: list[str], root: str) -> dict:
    """Build one system's index in this (child) process; report build time, CPU time and peak RSS."""
    if system == "tamis":
        from tamis.cli import main

        argv = ["index", "bm25", "--output", root, *paths]
        codes = []
        wall, cpu = _clock(lambda: codes.append(main(argv)))
        if codes != [0]:
            raise SystemExit(f"tamis index bm25 failed with exit code {codes[0]}")
        return {
            "build_s": wall,
            "build_cpu_s": cpu,
            "peak_rss_mb": _peak_rss_mb(),
            "index_bytes": bm25.index_bytes(root),
        }
    if system == "tantivy":  # the text stays in Arrow, 10,000 documents at a time become Python strings
        tables = [pq.read_table(p) for p in paths]
        batches = (
            (b.column("id").to_pylist(), b.column("text").to_pylist())
            for t in tables
            for b in t.to_batches(max_chunksize=10_000)
        )
        built = Tantivy()
        os.makedirs(root, exist_ok=True)
        wall, cpu = _clock(lambda: built.build_batches(batches, root))
    else:  # bm25s's tokenizer takes the corpus as one list of strings, as its README and examples do
        ids, texts = _texts(paths)
        built = BM25S("numba")
        wall, cpu = _clock(lambda: built.build(ids, texts))
        del texts
        gc.collect()
        os.makedirs(root, exist_ok=True)
        built.save(root)
    return {"build_s": wall, "build_cpu_s": cpu, "peak_rss_mb": _peak_rss_mb(), "index_bytes": bm25.index_bytes(root)}


def _run_child(system: str, paths: list[str], root: str) -> dict:
    argv = [sys.executable, __file__, "--_child", system, "--_index", root, "--_paths", *paths]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        return {"error": f"exit {proc.returncode} {tail}".strip()}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_scale(n_docs: int, n_queries: int, workdir: Path, rounds: int) -> dict:
    corpus = workdir / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    wall, _ = _clock(lambda: globals().__setitem__("_set", write_synthetic(n_docs, n_queries, corpus)))
    paths, qids, queries, qrels = globals().pop("_set")
    builds = {name: _run_child(name, paths, str(workdir / name)) for name in ("tamis", "bm25s", "tantivy")}
    systems, loaded = [], {}
    for system, built in (
        (Tamis(), "tamis"),
        (BM25S("numba"), "bm25s"),
        (BM25S("numpy"), "bm25s"),
        (Tantivy(), "tantivy"),
    ):
        if "error" in builds[built]:
            continue
        loaded[system.name], _ = _clock(lambda s=system, b=built: s.open(str(workdir / b)))
        systems.append(system)
    results = time_queries(systems, queries, rounds)
    for s in systems:
        built = builds["bm25s" if s.name.startswith("bm25s") else s.name]
        results[s.name].update(load_s=loaded[s.name], **built, **quality(s, qids, queries, qrels))
    for name, built in builds.items():
        if "error" in built:
            results[name if name != "bm25s" else "bm25s_numba"] = built
    results["rank_bm25"] = {"skipped": "not run at scale: a Python dict per document, every document scored in Python"}
    mode = {
        "mode": "synthetic",
        "docs": n_docs,
        "queries": n_queries,
        "rounds": rounds,
        "generate_s": wall,
        "corpus_bytes": sum(os.path.getsize(p) for p in paths),
        "relevant_per_query": float(np.mean([len(r) for r in qrels.values()])),
        "peak_rss_mb_query_process": _peak_rss_mb(),
    }
    return summary(results, mode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beir", type=Path, default=CRANFIELD, help="BEIR folder (default: shared Cranfield)")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds; each system keeps its best")
    parser.add_argument("--synthetic-docs", type=int, help="scale mode: grow this many documents from the web pool")
    parser.add_argument("--queries", type=int, default=500, help="scale mode: queries")
    parser.add_argument("--workdir", type=Path, help="scale mode: where corpus and indexes go (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    parser.add_argument("--_paths", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--_index", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        print(json.dumps(child_build(args._child, args._paths, args._index)))
        return
    if args.synthetic_docs:
        rounds = min(args.rounds, 3)
        if args.workdir:
            out = bench_scale(args.synthetic_docs, args.queries, args.workdir, rounds)
        else:
            with tempfile.TemporaryDirectory(prefix="tamis-bm25-bench-") as tmp:
                out = bench_scale(args.synthetic_docs, args.queries, Path(tmp), rounds)
    else:
        out = bench_beir(args.beir, args.rounds)
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
