"""`tamis eval retrieval`: quality and speed of a retriever on a BEIR-format folder.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl`
(`_id`, `text`) and `qrels/<split>.tsv` (query-id, corpus-id, score, with a
header). A document is indexed as its title and text joined by a space, as
BEIR's own BM25 baselines do. Every judged query is asked; nDCG@10 and
recall@100 (tamis.eval.metrics, pytrec_eval-compatible) are averaged over them.
QPS is measured one query at a time for the top 10, on one core, repeated over
the query set for at least `--min-time` seconds.
"""

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from tamis.errors import ConfigError, InputError
from tamis.eval.metrics import ndcg_at_k, recall_at_k
from tamis.io.side_files import jsonl_rows
from tamis.retrievers.base import Retriever

log = logging.getLogger(__name__)

HELP = "retrieval quality and speed on a BEIR-format folder (nDCG@10, recall@100, QPS)"


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


def _bm25(corpus: pa.Table, args: argparse.Namespace) -> tuple[Retriever, dict[str, Any]]:
    """Load the index at --index if it is finished there, else build it (saving it to --index when given)."""
    import tempfile

    from tamis.indexes import bm25
    from tamis.retrievers.bm25 import BM25Retriever

    if args.index and os.path.exists(os.path.join(args.index, "manifest.json")):
        start = time.perf_counter()
        index = bm25.load(args.index)
        return BM25Retriever(index), {
            "load_s": time.perf_counter() - start,
            "index_bytes": bm25.index_bytes(args.index),
        }
    config = bm25.load_config(args.index_config)
    start = time.perf_counter()
    index = bm25.build(corpus, config)
    build_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="tamis-bm25-") as tmp:
        root = args.index or tmp
        start = time.perf_counter()
        bm25.save(index, root)
        info = {"build_s": build_s, "save_s": time.perf_counter() - start, "index_bytes": bm25.index_bytes(root)}
    return BM25Retriever(index), info


# name -> builder(corpus, args) -> (retriever, info); a dense retriever adds its entry here.
BUILDERS: dict[str, Callable[[pa.Table, argparse.Namespace], tuple[Retriever, dict[str, Any]]]] = {"bm25": _bm25}


def quality(retriever: Retriever, data: BeirSet, k_ndcg: int = 10, k_recall: int = 100) -> dict[str, float]:
    qids = list(data.queries)
    ids, _ = retriever.search([data.queries[q] for q in qids], k=max(k_ndcg, k_recall))
    n = len(qids)
    return {
        f"ndcg@{k_ndcg}": sum(ndcg_at_k(r, data.qrels[q], k_ndcg) for q, r in zip(qids, ids, strict=True)) / n,
        f"recall@{k_recall}": sum(recall_at_k(r, data.qrels[q], k_recall) for q, r in zip(qids, ids, strict=True)) / n,
    }


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


def evaluate(data: BeirSet, retriever: Retriever, info: dict[str, Any], min_time: float = 1.0) -> dict[str, Any]:
    result = {**quality(retriever, data)}
    texts = list(data.queries.values())
    result["qps"] = qps(lambda q: retriever.search([q], k=10), texts, min_time)
    return {**result, **info, "queries": len(texts), "docs": data.corpus.num_rows}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beir", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    parser.add_argument("--split", default="test", help="qrels split (default: test)")
    parser.add_argument("--retriever", default="bm25", help=f"one of {', '.join(BUILDERS)} (default: bm25)")
    parser.add_argument("--index-config", help="YAML with the index parameters (default: built-in defaults)")
    parser.add_argument("--index", help="index folder: loaded if finished there, else built and saved there")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of query timing (default: 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    if args.retriever not in BUILDERS:
        raise ConfigError(f"The '--retriever' option must be one of {list(BUILDERS)}. Got {args.retriever!r} instead.")
    data = load_beir(args.beir, args.split)
    retriever, info = BUILDERS[args.retriever](data.corpus, args)
    result = {"retriever": args.retriever, **evaluate(data, retriever, info, args.min_time)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}  {value:.4f}" if isinstance(value, float) else f"{key:>12}  {value}")
    return 0
