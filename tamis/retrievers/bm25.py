"""Query a BM25 index: analyze the query like the documents, sum the terms' precomputed columns, take the top k.

A query costs one gather of its terms' postings, one `bincount` over the shard
and one `argpartition`, so its time grows with its postings and the shard size,
not with Python work per document. A batch of queries is scored in one
`bincount` over (query, document) cells, chunked to bound memory. Every shard
was scored with the global idf and avgdl, so the shards' top lists merge into
exact global results. Documents that match no query term are never returned.
"""

import json
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.indexes.analysis import Analyzer
from tamis.indexes.bm25 import BM25Index, load
from tamis.retrievers.base import Hits

log = logging.getLogger(__name__)

CELLS_PER_CHUNK = 1 << 23  # (query, document) score cells per batch step: 64 MiB of float64


class BM25Retriever:
    """Top-k search over one index (any number of shards), optionally restricted by docstore fields."""

    def __init__(self, index: BM25Index):
        self.index = index
        self.analyzer = Analyzer(index.config.analysis)
        self._term_ids = index.vocab.ids()
        self._shift = np.asarray(index.vocab.shift, dtype=np.float64)
        self._has_shift = bool(np.any(self._shift))
        self._ids: list[list[str] | None] = [None] * len(index.shards)
        self._meta: dict[tuple[int, str], np.ndarray] = {}
        # plain ndarray views of the (memory-mapped) shard arrays: slicing a np.memmap costs more per call
        self._arrays = [
            (np.asarray(sh.data), np.asarray(sh.indices), np.asarray(sh.indptr), sh.n_docs) for sh in index.shards
        ]

    @classmethod
    def open(cls, root: str, verify: bool = True) -> "BM25Retriever":
        return cls(load(root, verify=verify))

    def query_terms(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary ids of the query's terms and how often each occurs; unknown terms and stopwords drop out."""
        ids = self._term_ids
        found: dict[int, int] = {}
        for t in self.analyzer.terms(query):
            i = ids.get(t)
            if i is not None:
                found[i] = found.get(i, 0) + 1
        return np.fromiter(found, np.int64, len(found)), np.fromiter(found.values(), np.float64, len(found))

    def search(self, queries: Sequence[str], k: int = 10, where: dict[str, Any] | None = None) -> Hits:
        """Top-k ids and scores per query; `where` keeps documents whose field (or meta key) is in the given values."""
        if k < 1:
            raise ConfigError(f"The 'k' parameter of search must be >= 1. Got {k} instead.")
        terms = [self.query_terms(q) for q in queries]
        per_shard = [self._search_shard(i, terms, k, where) for i in range(len(self.index.shards))]
        ids: list[list[str]] = []
        scores: list[np.ndarray] = []
        for qi, (tids, qtf) in enumerate(terms):
            if len(per_shard) == 1:
                docs, vals = per_shard[0][qi]
                shard_of = np.zeros(len(docs), np.int64)
            else:
                shard_of = np.concatenate([np.full(len(p[qi][0]), si) for si, p in enumerate(per_shard)])
                docs = np.concatenate([p[qi][0] for p in per_shard])
                vals = np.concatenate([p[qi][1] for p in per_shard])
                order = np.lexsort((docs, shard_of, -vals))[:k]
                shard_of, docs, vals = shard_of[order], docs[order], vals[order]
            if self._has_shift and len(tids):
                vals = vals + float(self._shift[tids] @ qtf)
            ids.append([self._shard_ids(s)[d] for s, d in zip(shard_of.tolist(), docs.tolist(), strict=True)])
            scores.append(vals)
        return ids, scores

    def _shard_ids(self, s: int) -> list[str]:
        if self._ids[s] is None:
            self._ids[s] = self.index.shards[s].docs["id"].to_pylist()
        return self._ids[s]

    def _search_shard(
        self, s: int, terms: list[tuple[np.ndarray, np.ndarray]], k: int, where: dict[str, Any] | None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        data, indices, indptr, n = self._arrays[s]
        mask = self._mask(s, where) if where else None
        chunk = max(1, CELLS_PER_CHUNK // max(n, 1))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for start in range(0, len(terms), chunk):
            part = terms[start : start + chunk]
            tids = np.concatenate([t for t, _ in part]) if len(part) > 1 else part[0][0]
            if not len(tids):
                out.extend((np.zeros(0, np.int64), np.zeros(0, np.float64)) for _ in part)
                continue
            # One gather of every posting of every (query, term): copies of contiguous slices, no fancy index.
            bounds = list(zip(indptr[tids].tolist(), indptr[tids + 1].tolist(), strict=True))
            lengths = np.fromiter((e - b for b, e in bounds), np.int64, len(bounds))
            cells = np.concatenate([indices[b:e] for b, e in bounds])
            weights = np.concatenate([data[b:e] for b, e in bounds])
            qtf = np.concatenate([w for _, w in part]) if len(part) > 1 else part[0][1]
            if np.any(qtf != 1.0):
                weights = weights * np.repeat(qtf, lengths)
            if len(part) > 1:
                rows = np.repeat(np.arange(len(part)), [len(t) for t, _ in part])
                cells = cells + np.repeat(rows * n, lengths)
            table = np.bincount(cells, weights, minlength=n * len(part)).reshape(len(part), n)
            if mask is not None:
                table[:, ~mask] = 0.0
            out.extend(_top_k(row, k) for row in table)
        return out

    def _mask(self, s: int, where: dict[str, Any]) -> np.ndarray:
        docs = self.index.shards[s].docs
        keep = np.ones(docs.num_rows, dtype=bool)
        for name, allowed in where.items():
            values = allowed if isinstance(allowed, (list, tuple, set)) else [allowed]
            column = self._field(s, name)
            keep &= pc.is_in(column, value_set=pa.array(list(values), type=column.type)).to_numpy(zero_copy_only=False)
        return keep

    def _field(self, s: int, name: str) -> pa.Array:
        docs = self.index.shards[s].docs
        if name in docs.column_names:
            return docs[name].combine_chunks()
        if "meta" not in docs.column_names:
            raise ConfigError(f"Cannot filter on {name!r}: the docstore has {docs.column_names} and no meta column.")
        key = (s, name)
        if key not in self._meta:
            metas = [json.loads(m) if m else {} for m in docs["meta"].to_pylist()]
            self._meta[key] = np.asarray([str(m.get(name)) if name in m else None for m in metas], dtype=object)
        return pa.array(self._meta[key], pa.string())


def _top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best non-zero scores, descending, ties by document order."""
    hit = np.argpartition(-scores, k - 1)[:k] if len(scores) > k else np.arange(len(scores))
    hit = hit[scores[hit] != 0.0]
    hit = hit[np.lexsort((hit, -scores[hit]))]
    return hit, scores[hit]
