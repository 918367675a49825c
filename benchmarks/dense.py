"""Dense retrieval on a BEIR folder and at 1M vectors: FAISS specs, binary + rescore, hybrid, encoding speed.

    python benchmarks/dense.py --beir ../shared/data/retrieval/cranfield --json
    python benchmarks/dense.py --beir DIR --million 0 --json          # skip the 1M-vector part

One run, one core, the packaged all-MiniLM-L6-v2, every row over the same data:

1. The documents are chunked and encoded once with the reference encoder
   (`SentenceTransformer.encode`, fp32) into a Flat index; every other spec
   is rebuilt from those stored vectors (`dense.reindex`), so rows differ only
   by the index. `retention` maps each spec to its nDCG@10 / Flat's (Flat
   stores the fp32 values of the float16-stored vectors). Binary indexes
   rescore `multiplier x k` candidates from float16 (or int8) vectors; the
   sweep reports each depth and its cost (search-only QPS).
2. Hybrid: tamis BM25 (defaults) fused with the Flat dense retriever (every
   chunk, and first chunks only), RRF (k=60) and min-max score fusion
   (weight 0.5), each over the top 100. `hybrid_cv` chooses the fusion
   (method and k or weight from a small grid) by 5-fold cross-validation over
   the queries and reports the out-of-fold nDCG@10 and R@100.
3. Encoding: plain `SentenceTransformer.encode` (fp32) and each tamis
   backend encode the same chunk texts with the same batch size, in rounds,
   round-robin, so machine load hits them alike; `encode_speedup` is the
   fast path's median-round speed over plain's. Each backend's quality is its
   own full index (Flat), queries encoded by the same backend.
4. 1M vectors: random projections of the real MiniLM vectors of the corpus
   (each vector a unit-normalized sum of 3 real ones with Gaussian weights,
   fixed seed), and held-out queries made the same way. Each spec builds in a
   fresh child process (build time, peak RSS of the child, which includes the
   interpreter and FAISS, about 0.1-0.2 GB), then answers the queries in one
   batch (QPS) and is scored by recall@10 against exact search.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one core, before any native library loads
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from tamis.eval.metrics import ranking  # noqa: E402
from tamis.eval.retrieval import load_beir, qps  # noqa: E402
from tamis.indexes import bm25, dense  # noqa: E402
from tamis.retrievers.bm25 import BM25Retriever  # noqa: E402
from tamis.retrievers.dense import DenseRetriever  # noqa: E402
from tamis.retrievers.hybrid import HybridConfig, HybridRetriever  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "dense.json"
# (row name, reindex changes, retriever options)
SPECS = [
    ("Flat", {"spec": "Flat"}, {}),
    ("SQfp16", {"spec": "SQfp16"}, {}),
    ("SQ8", {"spec": "SQ8"}, {}),
    # np: no polysemous training (FAISS's code reordering for Hamming filtering, minutes of training that
    # plain PQ search does not use; the codes and distances are the same up to a permutation)
    ("PQ96np", {"spec": "PQ96np"}, {}),
    ("PQ48np", {"spec": "PQ48np"}, {}),  # 1536 / 48 = 32x compression
    ("HNSW32", {"spec": "HNSW32", "search_params": "efSearch=128"}, {}),
    ("IVF32,SQ8 nprobe=8", {"spec": "IVF32,SQ8", "search_params": "nprobe=8"}, {}),
    ("BFlat (no rescore)", {"spec": "BFlat", "rescore": "none"}, {}),
    ("BFlat+fp16 x1", {"spec": "BFlat"}, {"rescore_multiplier": 1}),
    ("BFlat+fp16 x2", {"spec": "BFlat"}, {"rescore_multiplier": 2}),
    ("BFlat+fp16 x4", {"spec": "BFlat"}, {"rescore_multiplier": 4}),
    ("BFlat+fp16 x8", {"spec": "BFlat"}, {"rescore_multiplier": 8}),
    ("BFlat+int8 x4", {"spec": "BFlat", "rescore": "int8"}, {"rescore_multiplier": 4}),
    ("Flat first-chunk", {"spec": "Flat", "index_chunks": "first"}, {}),  # = plain truncation to the window
    ("Flat dim256", {"spec": "Flat", "truncate_dim": 256}, {}),
    ("Flat dim128", {"spec": "Flat", "truncate_dim": 128}, {}),
]
MILLION_SPECS = [
    ("Flat", "Flat", ""),
    ("SQ8", "SQ8", ""),
    ("IVF1024,PQ48np", "IVF1024,PQ48np", "nprobe=32"),
    ("HNSW32", "HNSW32", "efSearch=128"),
]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def scores_of(retriever, data, vectors=None) -> dict[str, float]:
    qids = list(data.queries)
    kwargs = {} if vectors is None else {"vectors": vectors}
    ids, scores = retriever.search([data.queries[q] for q in qids], 100, **kwargs)
    run = {q: dict(zip(i, map(float, s), strict=True)) for q, i, s in zip(qids, ids, scores, strict=True)}
    return ranking(run, {q: data.qrels[q] for q in qids}, 10, 100)


def search_qps(retriever, vectors: np.ndarray, min_time: float) -> float:
    rows = list(range(len(vectors)))
    return qps(lambda i: retriever.search([""], 10, vectors=vectors[i][None]), rows, min_time)


# --- 1. specs -------------------------------------------------------------------------------------------------------


def spec_rows(data, ref_root: str, work: str, embedder, queries: np.ndarray, min_time: float) -> list[dict]:
    rows = []
    for name, changes, options in SPECS:
        root = os.path.join(work, "spec-" + "".join(c if c.isalnum() else "_" for c in name))
        build_s = None
        if not os.path.exists(os.path.join(root, "manifest.json")):
            start = time.perf_counter()
            dense.reindex(ref_root, root, **changes)
            build_s = time.perf_counter() - start
        retriever = DenseRetriever(dense.load(root), embedder=embedder, **options)
        q = dense.truncate(queries, changes.get("truncate_dim", 0))
        found = retriever.index.manifest["index"]
        row = {"spec": name, **scores_of(retriever, data, q), "bytes_per_vector": found["code_bytes"],
               "rescore": found["rescore"], "index_build_s": build_s, "qps": search_qps(retriever, q, min_time)}
        if found["rescore"] != "none":
            row["rescore_depth_at_k100"] = retriever.rescore_multiplier * 100
            row["rescore_bytes_per_vector"] = retriever.index.dim * (1 if found["rescore"] == "int8" else 2)
        rows.append(row)
        log(f"{name}: {row}")
    return rows


# --- 2. hybrid cross-validation ----------------------------------------------------------------------------------------

FUSIONS = [HybridConfig(k=k) for k in (5, 10, 20, 40, 60, 100)] + [
    HybridConfig(method="score", weight=w) for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
]


def hybrid_cv(sparse, dense_retriever, data, qvec: np.ndarray, folds: int = 5) -> dict:
    """Out-of-fold quality of a fusion chosen on the other folds (queries split by a hash of their id)."""
    from tamis.dedup.exact import text_hashes

    qids = list(data.queries)
    fold = text_hashes(qids) % np.uint64(folds)
    runs = []
    for config in FUSIONS:
        ids, scores = HybridRetriever(sparse, dense_retriever, config).search(list(data.queries.values()), 100,
                                                                              vectors=qvec)
        runs.append({q: dict(zip(i, map(float, s), strict=True)) for q, i, s in zip(qids, ids, scores, strict=True)})

    def score(run, keep):
        return ranking({q: run[q] for q in keep}, {q: data.qrels[q] for q in keep}, 10, 100)

    total = {"ndcg@10": 0.0, "recall@100": 0.0}
    chosen = []
    for f in range(folds):
        test = [q for q, g in zip(qids, fold, strict=True) if g == f]
        train = [q for q, g in zip(qids, fold, strict=True) if g != f]
        best = max(range(len(FUSIONS)), key=lambda i: score(runs[i], train)["ndcg@10"])
        chosen.append(FUSIONS[best].to_dict())
        for key, value in score(runs[best], test).items():
            total[key] += value * len(test) / len(qids)
    return {**total, "chosen_per_fold": chosen}


# --- 3. encoding ------------------------------------------------------------------------------------------------------


def encode_speed(texts: list[str], backends: list[str], batch_size: int, rounds: int) -> dict:
    """docs/s of plain SentenceTransformer.encode and each backend on the same texts, round-robin, median round."""
    from sentence_transformers import SentenceTransformer

    from tamis.embeddings import Embedder, model_path

    plain = SentenceTransformer(str(model_path()), device="cpu", local_files_only=True)
    peers = {"plain": lambda x: plain.encode(x, batch_size=batch_size, normalize_embeddings=True,
                                             show_progress_bar=False)}
    for b in backends:
        e = Embedder(device="cpu", batch_size=batch_size, backend=b)
        peers[b] = e.encode
    for f in peers.values():
        f(texts[:batch_size])  # warm up (first-call allocations, ONNX session)
    times: dict[str, list[float]] = {k: [] for k in peers}
    for r in range(rounds):
        for k, f in peers.items():
            start = time.perf_counter()
            f(texts)
            times[k].append(time.perf_counter() - start)
        log(f"encode round {r}: " + ", ".join(f"{k} {len(texts) / t[-1]:.1f}/s" for k, t in times.items()))
    speed = {k: len(texts) / statistics.median(t) for k, t in times.items()}
    return {"texts": len(texts), "batch_size": batch_size, "rounds": rounds, "docs_per_s": speed,
            "speedup": {k: speed[k] / speed["plain"] for k in backends},
            "per_round_speedup": {k: [p / t for p, t in zip(times["plain"], times[k], strict=True)] for k in backends}}


# --- 4. one million ------------------------------------------------------------------------------------------------------


def make_million(real: np.ndarray, n: int, nq: int, path: str, seed: int = 0) -> None:
    """n + nq unit vectors, each a Gaussian-weighted sum of 3 real ones; base rows first, then the queries."""
    rng = np.random.default_rng(seed)
    out = np.memmap(path, mode="w+", dtype=np.float32, shape=(n + nq, real.shape[1]))  # raw rows, no header
    block = 100_000
    for start in range(0, n + nq, block):
        m = min(block, n + nq - start)
        pick = rng.integers(0, len(real), size=(m, 3))
        w = rng.standard_normal((m, 3)).astype(np.float32)
        x = np.einsum("mk,mkd->md", w, real[pick])
        out[start : start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    out.flush()
    del out


def _read_rows(path: str, d: int, start: int, count: int) -> np.ndarray:
    """Rows of a raw float32 file by plain reads (no mmap, so the child's RSS holds only what it keeps)."""
    with open(path, "rb") as f:
        f.seek(start * d * 4)
        return np.fromfile(f, dtype=np.float32, count=count * d).reshape(count, d)


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): unlike ru_maxrss, it does not inherit the parent's peak across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def million_child(path: str, d: int, n: int, nq: int, spec: str, params: str, train: int, out: str) -> None:
    """Build one spec over the n base rows (in blocks), search the nq queries; write its figures to `out`."""
    import faiss

    faiss.omp_set_num_threads(1)
    index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    start = time.perf_counter()
    if not index.is_trained:
        sample = _read_rows(path, d, 0, min(train, n))  # rows are i.i.d. draws: a prefix is a random sample
        index.train(sample)
        del sample
    train_s = time.perf_counter() - start
    for first in range(0, n, 100_000):
        index.add(_read_rows(path, d, first, min(100_000, n - first)))
    build_s = time.perf_counter() - start
    if params:
        faiss.ParameterSpace().set_index_parameters(index, params)
    queries = _read_rows(path, d, n, nq)
    start = time.perf_counter()
    _, ids = index.search(queries, 10)
    search_s = time.perf_counter() - start
    peak = _peak_rss_mb()
    np.save(out + ".ids.npy", ids)
    Path(out).write_text(json.dumps({"build_s": build_s, "train_s": train_s, "qps": nq / search_s,
                                     "peak_rss_mb": peak, "bytes_per_vector": dense.code_bytes(index),
                                     "index_mb": len(faiss.serialize_index(index)) / 2**20}))


def million(real: np.ndarray, n: int, nq: int, work: str, train: int) -> dict:
    path = os.path.join(work, "million.f32")
    start = time.perf_counter()
    make_million(real, n, nq, path)
    log(f"made {n} + {nq} vectors in {time.perf_counter() - start:.1f}s")
    rows, truth = [], None
    for name, spec, params in MILLION_SPECS:
        out = os.path.join(work, f"million-{name.replace(',', '_')}.json")
        cmd = [sys.executable, __file__, "--million-child", path, str(real.shape[1]), str(n), str(nq), spec, params, str(train), out]
        subprocess.run(cmd, check=True)
        found = json.loads(Path(out).read_text())
        ids = np.load(out + ".ids.npy")
        if truth is None:  # Flat runs first: exact inner-product search is the reference
            truth = ids
        found["recall@10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, truth, strict=True)]))
        rows.append({"spec": name, "search_params": params, **found})
        log(f"1M {name}: {rows[-1]}")
    os.remove(path)
    return {"vectors": n, "queries": nq, "dim": int(real.shape[1]), "train_sample": train, "rows": rows,
            "data": "unit-normalized Gaussian-weighted sums of 3 real MiniLM vectors (docs and queries of the corpus)"}


# --- main ------------------------------------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--beir", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/retrieval/cranfield"))
    p.add_argument("--json", action="store_true")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--fast", default="torch-bf16", help="the fast CPU path that encode_speedup reports")
    p.add_argument("--backends", default="torch-bf16,onnx,onnx-int8", help="encoding backends compared with plain")
    p.add_argument("--speed-texts", type=int, default=256, help="chunk texts per encoding round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-time", type=float, default=1.0)
    p.add_argument("--million", type=int, default=1_000_000, help="vectors of the scale part (0 skips it)")
    p.add_argument("--million-queries", type=int, default=200)
    p.add_argument("--million-train", type=int, default=65_536)
    p.add_argument("--work", help="scratch folder (default: a temporary one, removed at the end)")
    p.add_argument("--million-child", nargs=8, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.million_child:
        path, d, n, nq, spec, params, train, out = args.million_child
        million_child(path, int(d), int(n), int(nq), spec, params, int(train), out)
        return 0
    import torch

    torch.set_num_threads(1)
    work = args.work or tempfile.mkdtemp(prefix="tamis-dense-bench-")
    os.makedirs(work, exist_ok=True)
    data = load_beir(args.beir)
    backends = [b for b in args.backends.split(",") if b]
    result: dict = {"beir": args.beir, "docs": data.corpus.num_rows, "queries": len(data.queries),
                    "machine": {"python": platform.python_version(), "threads": 1}, "model": dense.DEFAULT_MODEL}

    # 1. reference encode (fp32, chunked) + every spec
    ref_root = os.path.join(work, "ref")
    embedder = dense.embedder_for(dense.DenseConfig(device="cpu", batch_size=args.batch_size))
    timings: dict[str, float] = {}
    if not os.path.exists(os.path.join(ref_root, "manifest.json")):
        dense.build(data.corpus, ref_root, dense.DenseConfig(device="cpu", batch_size=args.batch_size), embedder,
                    timings)
    ref = dense.load(ref_root)
    result["chunking"] = {**ref.manifest["chunking"], "chunks": ref.n_vectors}
    log(f"reference index: {ref.n_vectors} chunks of {ref.n_docs} docs, {timings}")
    qtexts = [data.queries[q] for q in data.queries]
    qvec = embedder.encode(qtexts)
    rows = spec_rows(data, ref_root, work, embedder, qvec, args.min_time)
    result["specs"] = rows
    flat = rows[0]
    result["retention"] = {r["spec"]: r["ndcg@10"] / flat["ndcg@10"] for r in rows}
    result["recall_retention"] = {r["spec"]: r["recall@100"] / flat["recall@100"] for r in rows}

    # 2. hybrid
    sparse = BM25Retriever(bm25.build(data.corpus))
    result["bm25"] = scores_of(sparse, data)
    result["hybrid"] = {}
    for chunks in ("Flat", "Flat first-chunk"):
        root = os.path.join(work, "spec-" + "".join(c if c.isalnum() else "_" for c in chunks))
        flat_retriever = DenseRetriever(dense.load(root), embedder=embedder)
        for name, config in (("rrf_k60", HybridConfig()), ("score_w0.5", HybridConfig(method="score", weight=0.5))):
            result["hybrid"][f"{name} {chunks}"] = scores_of(HybridRetriever(sparse, flat_retriever, config), data, qvec)
        result["hybrid_cv"] = result.get("hybrid_cv", {})
        result["hybrid_cv"][chunks] = hybrid_cv(sparse, flat_retriever, data, qvec)
    log(f"bm25 {result['bm25']} hybrid {result['hybrid']} cv {result['hybrid_cv']}")

    # 3. encoding speed and each backend's quality
    texts = _chunk_texts(ref, data)
    step = max(1, len(texts) // args.speed_texts)
    speed = encode_speed(texts[::step][: args.speed_texts], backends, args.batch_size, args.rounds)
    speed["quality"] = {"torch": {k: flat[k] for k in ("ndcg@10", "recall@100")}}
    for b in backends:
        root = os.path.join(work, f"backend-{b}")
        config = dense.DenseConfig(device="cpu", batch_size=args.batch_size, backend=b)
        e = dense.embedder_for(config)
        t: dict[str, float] = {}
        if not os.path.exists(os.path.join(root, "manifest.json")):
            dense.build(data.corpus, root, config, e, t)
        q = scores_of(DenseRetriever(dense.load(root), embedder=e), data)
        speed["quality"][b] = {**q, "ndcg_retention": q["ndcg@10"] / flat["ndcg@10"],
                               "whole_corpus_docs_per_s": data.corpus.num_rows / t["embed_s"] if t else None}
        log(f"backend {b}: {speed['quality'][b]}")
    result["encoding"] = speed
    result["encode_speedup"] = speed["speedup"].get(args.fast)
    result["fast_path"] = args.fast
    if timings:
        result["encoding"]["reference_whole_corpus_docs_per_s"] = data.corpus.num_rows / timings["embed_s"]

    # 4. one million vectors
    if args.million:
        real = np.concatenate([ref.vectors(np.arange(ref.n_vectors)), qvec]).astype(np.float32)
        result["million"] = million(real, args.million, args.million_queries, work, args.million_train)

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result) if args.json else json.dumps(result, indent=1))
    return 0


def _chunk_texts(index, data) -> list[str]:
    texts = dict(zip(data.corpus["id"].to_pylist(), data.corpus["text"].to_pylist(), strict=True))
    out = []
    for shard in index.shards:
        ids = shard.docs["id"].to_pylist()
        for d, s, e in zip(*(shard.chunks[c].to_pylist() for c in ("doc", "start", "end")), strict=True):
            out.append(texts[ids[d]][s:e])
    return out


if __name__ == "__main__":
    sys.exit(main())
