"""Hybrid retrieval: fuse BM25 and dense results for the same corpus.

Two fusions, both over each retriever's top `depth` documents:

- `rrf` (reciprocal rank fusion, Cormack et al. 2009): score = sum over the
  lists of 1 / (k + rank), rank from 1; k = 60 as in the paper. Needs no
  score calibration, so it is the default;
- `score`: each list's scores min-max normalized to [0, 1] within the query,
  then weight x dense + (1 - weight) x bm25; a document missing from a list
  gets 0 there.

Both retrievers must index the same documents: ids are compared as sets
when the hybrid is built, and a mismatch is refused, since fusing lists over
different corpora silently favours whichever holds the answer.
"""

import hashlib
from collections.abc import Sequence
from typing import Literal

import numpy as np

from tamis.errors import ConfigError, IntegrityError
from tamis.retrievers.base import Hits, Retriever
from tamis.validation import Params

Method = Literal["rrf", "score"]


class HybridConfig(Params):
    method: Method = "rrf"
    k: int = 60  # RRF constant
    weight: float = 0.5  # score fusion: weight of the dense scores
    depth: int = 100  # documents taken from each retriever (at least the k asked for)

    def check(self) -> None:
        if self.k < 0:
            raise ConfigError(f"The 'k' parameter of hybrid must be >= 0. Got {self.k} instead.")
        if not 0.0 <= self.weight <= 1.0:
            raise ConfigError(f"The 'weight' parameter of hybrid must be in [0, 1]. Got {self.weight} instead.")
        if self.depth < 1:
            raise ConfigError(f"The 'depth' parameter of hybrid must be >= 1. Got {self.depth} instead.")


def doc_ids(retriever) -> list[str]:
    """Every document id a retriever can return (dense: its index's ids; BM25: its shards' docstores)."""
    index = retriever.index
    if isinstance(getattr(index, "ids", None), list):
        return index.ids
    return [i for shard in index.shards for i in shard.docs["id"].to_pylist()]


def ids_digest(ids: Sequence[str]) -> str:
    """sha256 of the sorted ids: equal digests, equal corpora (as id sets)."""
    h = hashlib.sha256()
    for i in sorted(ids):
        h.update(i.encode() + b"\x00")
    return h.hexdigest()


class HybridRetriever:
    """Fused top-k of a sparse (BM25) and a dense retriever over the same documents."""

    def __init__(self, sparse: Retriever, dense: Retriever, config: HybridConfig | None = None):
        self.sparse, self.dense, self.config = sparse, dense, config or HybridConfig()
        a, b = doc_ids(sparse), doc_ids(dense)
        if len(a) != len(b) or ids_digest(a) != ids_digest(b):
            only_a, only_b = sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3]
            raise IntegrityError(
                f"The BM25 index ({len(a)} documents) and the dense index ({len(b)}) do not hold the same ids "
                f"(only in BM25: {only_a}; only in dense: {only_b})",
                hint="build both indexes from the same inputs",
            )

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        return self.dense.encode(queries)

    def texts(self, ids: Sequence[str]) -> list[str | None] | None:
        """Document texts for snippets, from whichever index keeps them (TextStore)."""
        for part in (self.sparse, self.dense):
            if hasattr(part, "texts"):
                found = part.texts(ids)
                if found is not None:
                    return found
        return None

    def search(self, queries: Sequence[str], k: int = 10, vectors: np.ndarray | None = None) -> Hits:
        if k < 1:
            raise ConfigError(f"The 'k' parameter of search must be >= 1. Got {k} instead.")
        depth = max(k, self.config.depth)
        s_ids, s_scores = self.sparse.search(list(queries), depth)
        d_ids, d_scores = self.dense.search(list(queries), depth, vectors=vectors)
        fuse = rrf if self.config.method == "rrf" else score_fusion
        out_ids, out_scores = [], []
        for lists in zip(s_ids, s_scores, d_ids, d_scores, strict=True):
            ids, scores = fuse(*lists, self.config)
            out_ids.append(ids[:k])
            out_scores.append(scores[:k])
        return out_ids, out_scores


def _ranked(fused: dict[str, float]) -> tuple[list[str], np.ndarray]:
    order = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    return [d for d, _ in order], np.asarray([s for _, s in order], dtype=np.float64)


def rrf(s_ids, s_scores, d_ids, d_scores, config: HybridConfig) -> tuple[list[str], np.ndarray]:
    fused: dict[str, float] = {}
    for ids in (s_ids, d_ids):
        for rank, doc in enumerate(ids, start=1):
            fused[doc] = fused.get(doc, 0.0) + 1.0 / (config.k + rank)
    return _ranked(fused)


def _minmax(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if not len(s):
        return s
    span = s.max() - s.min()
    return (s - s.min()) / span if span > 0 else np.ones_like(s)


def score_fusion(s_ids, s_scores, d_ids, d_scores, config: HybridConfig) -> tuple[list[str], np.ndarray]:
    fused: dict[str, float] = {}
    for ids, scores, w in ((s_ids, s_scores, 1.0 - config.weight), (d_ids, d_scores, config.weight)):
        for doc, s in zip(ids, _minmax(scores).tolist(), strict=True):
            fused[doc] = fused.get(doc, 0.0) + w * s
    return _ranked(fused)
