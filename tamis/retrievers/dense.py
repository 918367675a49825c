"""Query a dense index: encode queries as the documents were, search FAISS, rescore, one hit per document.

Queries go through the same model, backend, normalization and Matryoshka
truncation as the documents; a query encoder whose weights, dimension,
pooling or normalization differ from the index's is refused, since its
vectors would score garbage. A document is as good as its best chunk
(max over chunks): the retriever asks FAISS for enough chunks to fill k
distinct documents, doubling the depth until it has them or the index has no
more. With rescoring (always for binary indexes unless turned off), FAISS
returns `rescore_multiplier` times that depth and the candidates are scored
exactly against the stored float16 (or int8) vectors.
"""

import logging
import math
from collections.abc import Sequence

import numpy as np

from tamis.embeddings import Embedder
from tamis.errors import ConfigError
from tamis.indexes import dense, quantize
from tamis.indexes.dense import DenseIndex
from tamis.retrievers.base import Hits

log = logging.getLogger(__name__)


class DenseRetriever:
    """Top-k documents by cosine similarity of their best chunk, from any FAISS spec the index was built with."""

    def __init__(
        self,
        index: DenseIndex,
        embedder: Embedder | None = None,
        device: str = "auto",
        search_params: str | None = None,
        rescore_multiplier: int | None = None,
    ):
        self.index = index
        config = index.config
        self.embedder = embedder or Embedder(config.model, device, config.batch_size, config.backend)
        dense.check_model(index, self.embedder)
        self.search_params = config.search_params if search_params is None else search_params
        self.rescore_multiplier = rescore_multiplier or config.rescore_multiplier
        if self.rescore_multiplier < 1:
            raise ConfigError(f"The 'rescore_multiplier' parameter must be >= 1. Got {self.rescore_multiplier}.")
        self.rescore = index.manifest["index"]["rescore"]
        self.binary = config.binary
        dense.set_search_params(index.faiss_index, self.search_params)
        self.faiss_index, self.device = dense.to_gpu(index.faiss_index, device, "search")
        docs = max(index.n_docs, 1)
        self._chunks_per_doc = max(1, math.ceil(index.n_vectors / docs))

    @classmethod
    def open(cls, root: str, verify: bool = True, **options) -> "DenseRetriever":
        return cls(dense.load(root, verify=verify), **options)

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        """Query vectors in the index's space (normalized, truncated like the documents)."""
        return dense.truncate(self.embedder.encode(list(queries)), self.index.config.truncate_dim)

    def search(self, queries: Sequence[str], k: int = 10, vectors: np.ndarray | None = None) -> Hits:
        """Top-k ids and scores (cosine, descending) per query; `vectors` skips encoding (from `encode`)."""
        if k < 1:
            raise ConfigError(f"The 'k' parameter of search must be >= 1. Got {k} instead.")
        if vectors is None:
            vectors = self.encode(queries)
        return self.search_vectors(vectors, k)

    def search_vectors(self, vectors: np.ndarray, k: int) -> Hits:
        n = len(vectors)
        ids: list[list[str]] = [[] for _ in range(n)]
        scores: list[np.ndarray] = [np.zeros(0, np.float32) for _ in range(n)]
        total = self.index.n_vectors
        if total == 0 or n == 0:
            return ids, scores
        pending = np.arange(n)
        depth = min(total, k * self._chunks_per_doc)
        while len(pending):
            rows, values = self._candidates(np.ascontiguousarray(vectors[pending], dtype=np.float32), depth)
            again = []
            for qi, r, v in zip(pending.tolist(), rows, values, strict=True):
                valid = r >= 0
                docs, best = _best_per_doc(self.index.chunk_doc[r[valid]], v[valid], k)
                exhausted = depth >= total or valid.sum() < depth
                if len(docs) < k and not exhausted:
                    again.append(qi)
                    continue
                ids[qi] = [self.index.ids[d] for d in docs.tolist()]
                scores[qi] = best
            pending = np.asarray(again, dtype=np.int64)
            depth = min(total, depth * 2)
        return ids, scores

    def _candidates(self, q: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of the top `depth` chunks per query, best first; row -1 where FAISS found fewer."""
        fetch = min(self.index.n_vectors, depth * self.rescore_multiplier) if self.rescore != "none" else depth
        if self.binary:
            distances, rows = self.faiss_index.search(quantize.to_bits(q), fetch)
            values = 1.0 - 2.0 * distances.astype(np.float32) / self.index.dim  # cosine of the sign vectors
        else:
            values, rows = self.faiss_index.search(q, fetch)
        if self.rescore == "none":
            return rows, values
        exact = np.full(rows.shape, -np.inf, np.float32)
        valid = rows >= 0
        exact[valid] = np.einsum("ij,ij->i", self.index.vectors(rows[valid]), np.repeat(q, valid.sum(1), axis=0))
        order = np.argsort(-exact, axis=1, kind="stable")[:, :depth]
        rows = np.take_along_axis(rows, order, axis=1)
        return rows, np.take_along_axis(exact, order, axis=1)


def _best_per_doc(docs: np.ndarray, values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The first (best) chunk of each document, in rank order, at most k documents."""
    _, first = np.unique(docs, return_index=True)
    first = np.sort(first)[:k]
    return docs[first], values[first].astype(np.float32)
