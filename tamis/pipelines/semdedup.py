"""SemanticDedup: SemDeDup as a Beam stage (the steps are in tamis.dedup.semdedup).

    batches ─Embed─► (key, ids, ranks, vectors) ─SmallestKeys─► sample ─TrainKMeans─► centroids (side input)
                             └─Assign(centroids)─► (cluster, members of one batch) ─GroupByKey─► drops ⋈ batches

Every worker loads the model once (Embedder caches it per process). Two
things meet in one place: the k-means sample (`sample` × dim × 4 bytes, 154 MB
at the defaults with MiniLM) and, per cluster, its members' vectors
(n_cluster × dim × 4 bytes), so raise `clusters` with the corpus to bound it.
On the local runner the vectors also wait in memory for the centroids
(dim × 4 bytes per document); the cluster shuffle goes through files.
"""

import json

import apache_beam as beam
import numpy as np

from tamis.dedup.neardup import ranks
from tamis.dedup.semdedup import assign, cluster_drops, embed, embedder, sample_keys, sample_order, train_kmeans
from tamis.embeddings import resolve_device
from tamis.pipelines import disk_shuffle, progress
from tamis.pipelines.drops import ApplyDrops
from tamis.pipelines.progress import StageClock

STAGE = "semantic_dedup"
REASON = "semantic_dup"


class _Embed(beam.DoFn):
    def __init__(self, cfg, progress_dir: str | None = None):
        self.cfg, self.progress_dir = cfg, progress_dir

    def setup(self):
        self.model = embedder(self.cfg)
        self.clock = StageClock(STAGE, self.progress_dir)

    def finish_bundle(self):
        self.clock.flush()

    def process(self, element):
        key, batch = element
        with self.clock.timed(batch.num_rows):
            vectors = embed(self.model, batch.column("text").to_pylist(), self.cfg.max_chars)
        yield key, batch.column("id").to_pylist(), ranks(batch, self.cfg.keep, self.cfg.score_column), vectors


class _SmallestKeys(beam.CombineFn):
    """The `n` documents with the smallest (sample key, id): (keys, ids, vectors), in that order."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed = n, seed

    def create_accumulator(self):
        return []  # parts (keys, ids, vectors); truncated to n once they pass 2n rows

    def _truncate(self, parts, force: bool = False):
        if not force and sum(len(p[1]) for p in parts) <= 2 * self.n:
            return parts
        parts = [p for p in parts if len(p[1])]
        if not parts:
            return []
        keys = np.concatenate([p[0] for p in parts])
        ids = [i for p in parts for i in p[1]]
        vectors = np.concatenate([p[2] for p in parts])
        top = sample_order(keys, ids)[: self.n]
        return [(keys[top], [ids[i] for i in top], vectors[top])]

    def add_input(self, acc, element):
        _, ids, _, vectors = element
        acc.append((sample_keys(ids, self.seed), ids, vectors))
        return self._truncate(acc)

    def merge_accumulators(self, accs):
        return self._truncate([p for acc in accs for p in acc])

    def extract_output(self, acc):
        return self._truncate(acc, force=True)


def _train(parts, cfg) -> np.ndarray:
    sample = parts[0][2] if parts else np.zeros((0, 1), np.float32)  # no documents: nothing will be assigned
    return train_kmeans(sample, cfg.clusters, cfg.kmeans_iterations, cfg.seed, gpu=resolve_device(cfg.device) == "cuda")


def _assign(element, centroids):
    key, ids, batch_ranks, vectors = element
    labels = assign(vectors, centroids)
    for c in np.unique(labels).tolist():
        rows = np.flatnonzero(labels == c)
        yield c, (key, rows, [ids[r] for r in rows], [batch_ranks[r] for r in rows], vectors[rows])


def _dedup_cluster(element, eps: float):
    cluster, parts = element
    parts = list(parts)
    refs = [(p[0], int(r)) for p in parts for r in p[1]]
    ids = [i for p in parts for i in p[2]]
    rank = [r for p in parts for r in p[3]]
    vectors = np.concatenate([p[4] for p in parts])
    for d in cluster_drops(vectors, rank, eps):
        key, row = refs[d.row]
        detail = json.dumps({"cosine": round(d.cosine, 4), "cluster": cluster})
        yield key, (row, REASON, ids[d.kept], detail)


class SemanticDedup(beam.PTransform):
    """(key, batch) → `kept` (key, batch) and `dropped` (reason semantic_dup, dup_of = the kept id)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def expand(self, batches):
        cfg = self.cfg
        embedded = batches | "Embed" >> beam.ParDo(_Embed(cfg, progress.folder_of(batches.pipeline)))
        centroids = (
            embedded
            | "Sample" >> beam.CombineGlobally(_SmallestKeys(cfg.sample, cfg.seed))
            | "TrainKMeans" >> beam.Map(_train, cfg)
        )
        decisions = (
            embedded
            | "Assign" >> beam.FlatMap(_assign, beam.pvalue.AsSingleton(centroids))
            | "GroupClusters" >> disk_shuffle.GroupByKey()
            | "DedupClusters" >> beam.FlatMap(_dedup_cluster, cfg.eps)
        )
        return batches | "ApplySemanticDups" >> ApplyDrops(STAGE, decisions)
