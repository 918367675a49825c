"""Query a BM25 index: analyze the query like the documents, then an exact top k from a compiled kernel.

Query analysis keeps a cache from raw word to vocabulary id (stopword and
stemming decisions are made once per distinct word), so a batch of queries
costs one split of their joined text, a dict lookup per word and one kernel
call per index shard. The kernel
(tamis/retrievers/bm25_kernel.py) never builds a score array of the shard's
size: short postings are summed term-at-a-time into a reused accumulator,
long ones go through block-max MaxScore, which skips the documents that
cannot reach the top k. A batch of queries is one kernel call per shard.
Every shard was scored with the global idf and avgdl and the top-k heap
carries from shard to shard, so results are the exact global top k, ties
broken by document order (shard, then row). Documents that match no query
term are never returned. The kernel releases the GIL while it searches a
shard, so other threads (a service's event loop parsing the next request)
run meanwhile; its scratch is one per retriever, zeroed after every call, and
a lock lets one search at a time use it, so threads may share a retriever.
"""

import json
import logging
import threading
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.indexes.analysis import SEPARATOR, Analyzer
from tamis.indexes.bm25 import BLOCK, BM25Index, load
from tamis.retrievers.base import Hits
from tamis.retrievers.bm25_kernel import AUTO, DENSE, WINDOW, query_terms, search_shard

log = logging.getLogger(__name__)

WORD_CACHE = 1 << 20  # raw words whose vocabulary id is remembered
_END = -2  # the id of SEPARATOR in an analyzed word stream
_UNSEEN = -3  # a word not in the cache yet


class BM25Retriever:
    """Top-k search over one index (any number of shards), optionally restricted by docstore fields."""

    kind = "bm25-index"

    def __init__(self, index: BM25Index):
        self.index = index
        self.analyzer = Analyzer(index.config.analysis)
        self._term_ids = index.vocab.ids()
        self._word_ids = {SEPARATOR: _END}  # raw word -> vocabulary id, -1 for a stopword or unknown word
        self._shift = np.asarray(index.vocab.shift, dtype=np.float64)
        self._has_shift = bool(np.any(self._shift))
        self._ids: list[str] | None = None
        self._meta: dict[tuple[int, str], np.ndarray] = {}
        self._bases = np.cumsum([0] + [sh.n_docs for sh in index.shards])
        self._shards = [_kernel_arrays(sh) for sh in index.shards]
        # Scratch for the kernel: an accumulator (zero between calls) and the list of its touched cells, for the
        # largest shard or MaxScore window, plus the one slot a branch-free append writes past the last.
        size = max(max((sh.n_docs for sh in index.shards), default=0), WINDOW) + 1
        self._scratch = (np.zeros(size, np.float64), np.zeros(size, np.int32))
        self._lock = threading.Lock()  # one search at a time uses the scratch
        # MaxScore's bounds and the touched-cell lists count on contributions that are never negative: true unless
        # some idf is (only okapi's floor can be), and then every shard is scored by the dense pass.
        self._strategy = DENSE if bool(np.any(np.asarray(index.vocab.idf) < 0)) else AUTO
        self._no_filter = np.zeros(0, np.uint8)

    @classmethod
    def open(cls, root: str, verify: bool = True) -> "BM25Retriever":
        return cls(load(root, verify=verify))

    @property
    def n_docs(self) -> int:
        return int(self._bases[-1])

    # --- query analysis ---------------------------------------------------------------------------------------

    def _word_id(self, word: str) -> int:
        terms = self.analyzer.word_terms(word)
        found = self._term_ids.get(terms[0], -1) if terms else -1
        if len(self._word_ids) >= WORD_CACHE:
            self._word_ids.clear()
            self._word_ids[SEPARATOR] = _END
        self._word_ids[word] = found
        return found

    def query_terms(self, query: str) -> tuple[np.ndarray, np.ndarray]:
        """Vocabulary ids of the query's terms and how often each occurs; unknown terms and stopwords drop out."""
        tids, weights, _ = self.analyze([query])
        return tids, weights

    def analyze(self, queries: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every query's distinct vocabulary ids (flat, ascending within a query), their counts in the query, and
        each query's slice bounds: the input of `search_terms`."""
        stream = self.analyzer.word_stream(queries if isinstance(queries, list) else list(queries))
        ids = np.array(list(map(self._word_ids.get, stream, repeat(_UNSEEN, len(stream)))), np.int64)
        unseen = np.flatnonzero(ids == _UNSEEN)
        for i in unseen.tolist():
            ids[i] = self._word_id(stream[i])
        return query_terms(ids, len(queries))

    # --- search -------------------------------------------------------------------------------------------------

    def search(self, queries: Sequence[str], k: int = 10, where: dict[str, Any] | None = None) -> Hits:
        """Top-k ids and scores per query; `where` keeps documents whose field (or meta key) is in the given values."""
        hd, hs, counts = self._top(self.analyze(queries), k, where)
        ids = self.doc_ids()
        if all(c == hd.shape[1] for c in counts):  # every query filled its k: no per-row slicing
            rows, scores = hd.tolist(), list(hs)
        else:
            rows = [hd[q, :c].tolist() for q, c in enumerate(counts)]
            scores = [hs[q, :c] for q, c in enumerate(counts)]
        return [[ids[d] for d in row] for row in rows], scores

    def search_positions(
        self, queries: Sequence[str], k: int = 10, where: dict[str, Any] | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Like `search`, with each hit as its position in the index (shard after shard, row within the shard)."""
        return self.search_terms(*self.analyze(queries), k, where)

    def search_terms(
        self,
        tids: np.ndarray,
        weights: np.ndarray,
        bounds: np.ndarray,
        k: int = 10,
        where: dict[str, Any] | None = None,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Top-k positions and scores of analyzed queries (the output of `analyze`)."""
        hd, hs, counts = self._top((tids, weights, bounds), k, where)
        return [hd[q, :c] for q, c in enumerate(counts)], [hs[q, :c] for q, c in enumerate(counts)]

    def _top(
        self, analyzed: tuple[np.ndarray, np.ndarray, np.ndarray], k: int, where: dict[str, Any] | None
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Positions and scores (one row per query, best first) and how many of each row are filled."""
        if k < 1:
            raise ConfigError(f"The 'k' parameter of search must be >= 1. Got {k} instead.")
        tids, weights, bounds = analyzed
        n_queries = len(bounds) - 1
        k = max(1, min(k, self.n_docs))
        hs = np.empty((n_queries, k), np.float64)
        hd = np.empty((n_queries, k), np.int64)
        hn = np.zeros(n_queries, np.int64)
        acc, touched = self._scratch
        last = len(self._shards) - 1
        masks = [self._mask(s, where) if where else self._no_filter for s in range(len(self._shards))]
        with self._lock:
            for s, arrays in enumerate(self._shards):
                n_docs, base = int(self._bases[s + 1] - self._bases[s]), int(self._bases[s])
                search_shard(tids, weights, bounds, *arrays, n_docs, base, masks[s], self._strategy, hs, hd, hn, acc,
                             touched, s == last)
        if self._has_shift and len(tids):
            shift = np.zeros(n_queries)
            per_term = self._shift[tids] * weights
            np.add.at(shift, np.repeat(np.arange(n_queries), np.diff(bounds)), per_term)
            hs += shift[:, None]
        return hd, hs, hn.tolist()

    # --- the docstore -------------------------------------------------------------------------------------------

    def doc_ids(self) -> list[str]:
        """Every document id, in index order (read from the docstores on first use)."""
        if self._ids is None:
            self._ids = [d for sh in self.index.shards for d in sh.docs["id"].to_pylist()]
        return self._ids

    def texts(self, ids: Sequence[str]) -> list[str | None] | None:
        """The stored text of each id (None for an id the index lacks), or None when the index stores no text."""
        if not self.index.config.store_text:
            return None
        wanted = pa.array(list(ids), pa.string())
        out: list[str | None] = [None] * len(wanted)
        for shard in self.index.shards:
            rows = pc.index_in(wanted, value_set=shard.docs["id"].combine_chunks())
            hit = np.flatnonzero(rows.is_valid().to_numpy(zero_copy_only=False))
            if len(hit):
                found = shard.docs["text"].take(rows.filter(rows.is_valid())).to_pylist()
                for i, text in zip(hit.tolist(), found, strict=True):
                    out[i] = text
        return out

    def _mask(self, s: int, where: dict[str, Any]) -> np.ndarray:
        docs = self.index.shards[s].docs
        keep = np.ones(docs.num_rows, dtype=bool)
        for name, allowed in where.items():
            values = allowed if isinstance(allowed, (list, tuple, set)) else [allowed]
            column = self._field(s, name)
            keep &= pc.is_in(column, value_set=pa.array(list(values), type=column.type)).to_numpy(zero_copy_only=False)
        return keep.astype(np.uint8)

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


def _readonly(array: np.ndarray, dtype) -> np.ndarray:
    """A plain read-only ndarray view (memory-mapped or not), so the kernel compiles once for both."""
    out = np.asarray(array)
    if out.dtype != dtype:
        out = out.astype(dtype)
    out = out.view(np.ndarray)
    out.flags.writeable = False
    return out


def _kernel_arrays(shard) -> tuple[np.ndarray, ...]:
    """The arrays the kernel reads for a shard: postings, block bounds and each term's first block."""
    data = np.asarray(shard.data)
    data = _readonly(data, data.dtype)
    indices = _readonly(shard.indices, np.int32)
    indptr = _readonly(shard.indptr, np.int64)
    block_max = _readonly(shard.block_max, np.float32)
    block_last = _readonly(shard.block_last, np.int32)
    blocks = (np.diff(indptr) + BLOCK - 1) // BLOCK
    block_ptr = np.zeros(len(blocks) + 1, np.int64)
    np.cumsum(blocks, out=block_ptr[1:])
    return data, indices, indptr, block_max, block_last, _readonly(block_ptr, np.int64)
