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

from tamis.errors import InputError
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


# name -> builder(corpus, index folder, index config YAML) -> (retriever, info); a dense retriever adds its entry here.
BUILDERS: dict[str, Callable[[pa.Table, str | None, str | None], tuple[Retriever, dict[str, Any]]]] = {"bm25": _bm25}


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


def evaluate(data: BeirSet, retriever: Retriever, info: dict[str, Any], min_time: float = 1.0) -> dict[str, Any]:
    result = {**quality(retriever, data)}
    texts = list(data.queries.values())
    result["qps"] = qps(lambda q: retriever.search([q], k=10), texts, min_time)
    return {**result, **info, "queries": len(texts), "docs": data.corpus.num_rows}
