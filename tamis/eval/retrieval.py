"""`tamis eval retrieval`: quality and speed of a retriever on a BEIR-format folder.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
(`_id`, `text`) and `qrels/<split>.tsv` (query-id, corpus-id, score, with a
header). A document is indexed as its title and text joined by a space, as
BEIR's own BM25 baselines do. Every judged query is asked; nDCG@10 and
recall@100 (pytrec_eval, through tamis.eval.metrics) are averaged over them.
QPS is measured one query at a time for the top 10, on one core, repeated over
the query set for at least `--min-time` seconds.
"""

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tamis.errors import ConfigError, InputError
from tamis.eval.metrics import ranking
from tamis.io.side_files import jsonl_rows
from tamis.retrievers.base import Retriever

log = logging.getLogger(__name__)


@dataclass
class BeirSet:
    corpus: pa.Table  # tamis document columns: id, text, source, offset, meta
    queries: dict[str, str]  # judged queries only, in file order
    qrels: dict[str, dict[str, int]]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    hint = "--beir takes a folder with corpus.jsonl, queries.jsonl, qrels/"
    return [row for _, row in jsonl_rows(path, hint=hint)]


def load_beir(directory: str | Path, split: str = "test") -> BeirSet:
    root = Path(directory)
    qrels_path = root / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise InputError(f"{qrels_path} does not exist", hint="BEIR folders keep judgments in qrels/<split>.tsv")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            cols = line.rstrip("\n").split("\t")
            if n == 1 and not cols[-1].lstrip("-").isdigit():
                continue  # header
            if len(cols) != 3:
                raise InputError(f"{qrels_path}:{n}: expected query-id, corpus-id, score separated by tabs")
            qrels.setdefault(cols[0], {})[cols[1]] = int(cols[2])
    docs = _jsonl(root / "corpus.jsonl")
    corpus = pa.table(
        {
            "id": [str(d["_id"]) for d in docs],
            "text": [f"{d.get('title') or ''} {d.get('text') or ''}".strip() for d in docs],
            "source": ["corpus.jsonl"] * len(docs),
            "offset": list(range(len(docs))),
        }
    )
    queries = {str(q["_id"]): q["text"] for q in _jsonl(root / "queries.jsonl") if str(q["_id"]) in qrels}
    if not queries:
        raise InputError(f"No query of {root / 'queries.jsonl'} is judged in {qrels_path}.")
    return BeirSet(corpus, queries, qrels)


def _bm25(corpus: pa.Table, index_dir: str | None, index_config: str | None) -> tuple[Retriever, dict[str, Any]]:
    """Load the index at `index_dir` if it is finished there, else build it (saving it there when given)."""
    import tempfile

    from tamis.indexes import bm25
    from tamis.retrievers.bm25 import BM25Retriever

    if index_dir and os.path.exists(os.path.join(index_dir, "manifest.json")):
        start = time.perf_counter()
        index = bm25.load(index_dir)
        return BM25Retriever(index), {
            "load_s": time.perf_counter() - start,
            "index_bytes": bm25.index_bytes(index_dir),
        }
    config = bm25.load_config(index_config)
    start = time.perf_counter()
    index = bm25.build(corpus, config)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="tamis-bm25-") as tmp:
        root = index_dir or tmp
        start = time.perf_counter()
        bm25.save(index, root)
        info = {"build_s": build_s, "save_s": time.perf_counter() - start, "index_bytes": bm25.index_bytes(root)}
    return BM25Retriever(index), info


def _dense(spec: str | None = None):
    """Builder of a dense retriever: `dense:SPEC` (a FAISS factory string) over the config's defaults."""

    def build(corpus: pa.Table, index_dir: str | None, index_config: str | None) -> tuple[Retriever, dict[str, Any]]:
        import tempfile

        from tamis.indexes import dense
        from tamis.retrievers.dense import DenseRetriever

        if index_dir and os.path.exists(os.path.join(index_dir, "manifest.json")):
            start = time.perf_counter()
            retriever = DenseRetriever.open(index_dir)
            return retriever, {"load_s": time.perf_counter() - start, **_dense_info(retriever, index_dir)}
        config = dense.load_config(index_config)
        if spec:
            config = dense.config_from_dict({**config.to_dict(), "spec": spec})
        embedder = dense.embedder_for(config)
        timings: dict[str, float] = {}
        root = index_dir or tempfile.mkdtemp(prefix="tamis-dense-")
        start = time.perf_counter()
        dense.build(corpus, root, config, embedder, timings)
        info = {"build_s": time.perf_counter() - start, **timings, "encode_docs_per_s": corpus.num_rows / timings["embed_s"]}
        retriever = DenseRetriever.open(root, embedder=embedder)
        info.update(_dense_info(retriever, root))
        if not index_dir:
            import shutil

            shutil.rmtree(root, ignore_errors=True)  # the retriever keeps what it needs in memory or mapped
        return retriever, info

    return build


def _dense_info(retriever, root: str) -> dict[str, Any]:
    from tamis.indexes import dense

    found = retriever.index.manifest
    return {
        "spec": found["index"]["spec"],
        "bytes_per_vector": found["index"]["code_bytes"],
        "rescore": found["index"]["rescore"],
        "rescore_depth_per_k": retriever.rescore_multiplier if found["index"]["rescore"] != "none" else 0,
        "vectors": found["vectors"]["count"],
        "index_bytes": dense.index_bytes(root),
        "model": found["model"]["name"],
        "backend": found["model"]["backend"],
        "device": retriever.device,  # where FAISS searches
        "encode_device": retriever.embedder.device,
    }


def _hybrid(spec: str | None = None):
    """Builder of `hybrid:SPEC`: the default BM25 fused (RRF unless the config's `hybrid:` says) with dense SPEC.

    The index config YAML may hold `bm25:`, `dense:` and `hybrid:` (method, k, weight, depth) mappings;
    `--index DIR` keeps the two indexes in DIR/bm25 and DIR/dense.
    """

    def build(corpus: pa.Table, index_dir: str | None, index_config: str | None) -> tuple[Retriever, dict[str, Any]]:
        from tamis.io.side_files import read_yaml
        from tamis.retrievers.hybrid import HybridConfig, HybridRetriever
        from tamis.validation import parse

        raw = read_yaml(index_config, "Index config") if index_config else {}
        sub = {"bm25": None, "dense": None}
        if index_dir:
            sub = {name: os.path.join(index_dir, name) for name in sub}
        sparse, sparse_info = _bm25(corpus, sub["bm25"], index_config if "bm25" in raw else None)
        dense_retriever, dense_info = _dense(spec)(corpus, sub["dense"], index_config if "dense" in raw else None)
        config = parse(HybridConfig, raw.get("hybrid") or {}, owner="hybrid")
        info = {**{f"bm25_{k}": v for k, v in sparse_info.items()}, **dense_info, "fusion": config.to_dict()}
        return HybridRetriever(sparse, dense_retriever, config), info

    return build


# name -> builder(corpus, index folder, index config YAML) -> (retriever, info); see `resolve` for NAME:SPEC.
BUILDERS: dict[str, Callable[[pa.Table, str | None, str | None], tuple[Retriever, dict[str, Any]]]] = {
    "bm25": _bm25,
    "dense": _dense(),
    "hybrid": _hybrid(),
}
# builders that take a spec after a colon: dense:SQ8, hybrid:HNSW32
SPEC_BUILDERS = {"dense": _dense, "hybrid": _hybrid}


def resolve(name: str) -> Callable[[pa.Table, str | None, str | None], tuple[Retriever, dict[str, Any]]] | None:
    """The builder for `name` (bm25, dense, hybrid) or `name:SPEC` (dense:SQ8, hybrid:Flat); None if unknown."""
    base, _, spec = name.partition(":")
    if spec and base in SPEC_BUILDERS:
        return SPEC_BUILDERS[base](spec)
    return BUILDERS.get(name)


def quality(retriever: Retriever, data: BeirSet, k_ndcg: int = 10, k_recall: int = 100) -> dict[str, float]:
    """nDCG@k_ndcg and recall@k_recall of the retriever's top max(k) over every judged query (pytrec_eval)."""
    qids = list(data.queries)
    ids, scores = retriever.search([data.queries[q] for q in qids], k=max(k_ndcg, k_recall))
    run = {q: dict(zip(i, map(float, s), strict=True)) for q, i, s in zip(qids, ids, scores, strict=True)}
    return ranking(run, {q: data.qrels[q] for q in qids}, k_ndcg, k_recall)


def qps(search_one: Callable[[str], Any], queries: list[str], min_time: float = 1.0) -> float:
    """Queries per second, one at a time, over whole passes of the query set lasting at least `min_time`."""
    done, start = 0, time.perf_counter()
    while True:
        for q in queries:
            search_one(q)
        done += len(queries)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return done / elapsed


def check_corpus(retriever: Retriever, data: BeirSet) -> None:
    """Refuse an index built from another corpus: its scores would be silently meaningless (nDCG 0.0)."""
    from tamis.retrievers.hybrid import doc_ids, ids_digest

    index_ids = doc_ids(getattr(retriever, "sparse", retriever))
    corpus_ids = data.corpus.column("id").to_pylist()
    if len(index_ids) != len(corpus_ids) or ids_digest(index_ids) != ids_digest(corpus_ids):
        missing = sorted(set(corpus_ids) - set(index_ids))[:3]
        raise ConfigError(
            f"The index holds {len(index_ids):,} documents that are not this BEIR corpus's {len(corpus_ids):,} "
            f"(e.g. not indexed: {missing})",
            hint="point --index at an index built from this corpus, or at a new folder to build one",
        )


def evaluate(data: BeirSet, retriever: Retriever, info: dict[str, Any], min_time: float = 1.0) -> dict[str, Any]:
    """Quality and QPS; a retriever that encodes queries (has `encode`) gets `qps` for the search alone, with
    query vectors computed beforehand, and `qps_end_to_end` with the encoding."""
    check_corpus(retriever, data)
    result = {**quality(retriever, data)}
    texts = list(data.queries.values())
    if hasattr(retriever, "encode"):
        vectors = retriever.encode(texts)
        position = {q: i for i, q in enumerate(texts)}
        result["qps"] = qps(lambda q: retriever.search([q], 10, vectors=vectors[position[q]][None]), texts, min_time)
        result["qps_end_to_end"] = qps(lambda q: retriever.search([q], k=10), texts, min_time)
    else:
        result["qps"] = qps(lambda q: retriever.search([q], k=10), texts, min_time)
    return {**result, **info, "queries": len(texts), "docs": data.corpus.num_rows}
