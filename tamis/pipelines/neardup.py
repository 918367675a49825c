"""NearDup: MinHash LSH near-duplicate removal as a Beam stage (the steps are in tamis.dedup.neardup).

    batches ─Sign─► (partition, [(bucket key, id)]) ─GroupByKey─► candidate pairs (a, b)
            └─────► nodes: id → (evidence, rank, (batch key, row))
    pairs ⋈ nodes on a, then on b ─► verified edges ─clusters─► drops ─side input─► batches

Shuffled per document: one (uint64, id) record per band, packed per batch
and bucket-key partition into numpy arrays (one Beam element per partition,
not per record), and its node (the verification evidence: a bottom-k sketch
of at most 4 × `verify_k` bytes, 1.5 KB by default, or a `num_perm` × 2-byte
signature sketch; the rank and the row reference) twice; per candidate pair, two small records. A worker holds
one partition's keys at a time (~30 bytes × documents × bands / partitions);
on the local runner the shuffles go through files (tamis.pipelines.disk_shuffle).

Clusters come from large-star/small-star rounds over the verified edges
(tamis.pipelines.components; `clustering: star_rounds`, the default): a
worker holds one node's neighbours at a time, and each round shuffles one
small record per linked document and direction. `clustering: union_find`
links them in one process instead (every linked document, ~400 bytes each).
Either way a cluster keeps its best member by the keep rule. See docs/dedup.md.
"""

import apache_beam as beam
import numpy as np

from tamis.dedup.neardup import Node, Signer, candidate_pairs, cluster_drops, node, ranks
from tamis.pipelines import disk_shuffle, spill
from tamis.pipelines.components import StarRounds, UnionFindClusters
from tamis.pipelines.drops import ApplyDrops

STAGE = "near_dedup"
REASON = "near_dup"


class _Sign(beam.DoFn):
    """A batch → (partition, (bucket keys, ids)) per bucket-key partition, and a node per signed document."""

    NODES = "nodes"

    def __init__(self, cfg):
        self.cfg = cfg

    def setup(self):
        self.signer = Signer(self.cfg)

    def process(self, element):
        key, batch = element
        batch = spill.load(batch)
        ids = batch.column("id").to_pylist()
        signed = self.signer.sign(batch.column("text").to_pylist())
        batch_ranks = ranks(batch, self.cfg.keep, self.cfg.score_column)
        docs = [ids[r] for r in signed.rows.tolist()]
        for j, r in enumerate(signed.rows.tolist()):
            yield beam.pvalue.TaggedOutput(self.NODES, (docs[j], (signed.evidence[j], batch_ranks[r], (key, r))))
        keys = signed.buckets.ravel()
        owner = np.repeat(np.arange(len(docs)), signed.buckets.shape[1])
        part = (keys % np.uint64(self.cfg.partitions)).astype(np.int64)
        order = np.argsort(part, kind="stable")
        bounds = np.flatnonzero(np.diff(part[order])) + 1
        for sel in np.split(order, bounds) if len(order) else []:
            yield int(part[sel[0]]), (keys[sel], [docs[i] for i in owner[sel].tolist()])


def _pairs(element, limit: int):
    _, parts = element
    parts = list(parts)
    keys = np.concatenate([k for k, _ in parts])
    yield from candidate_pairs(keys, [d for _, ids in parts for d in ids], limit)


def _attach_first(element):
    """Join on a: each distinct b gets a's node (pairs repeated by several bands collapse here)."""
    a, joined = element
    nodes = list(joined["node"])
    if nodes:
        for b in sorted(set(joined["pair"])):
            yield b, (a, nodes[0])


class _Verify(beam.DoFn):
    def __init__(self, cfg):
        self.cfg = cfg

    def setup(self):
        self.signer = Signer(self.cfg)

    def process(self, element):
        b, joined = element
        nodes = list(joined["node"])
        if not nodes:
            return
        node_b = nodes[0]
        for a, node_a in joined["pair"]:
            if self.signer.verified(node_a[0], node_b[0]):
                yield node(a, *node_a[1:]), node(b, *node_b[1:])


def _decision(pair: tuple[Node, Node]):
    """(dropped node, kept node) → the dropped row's decision, keyed by its batch."""
    dropped, kept = pair
    key, row = dropped[2]
    return key, (row, REASON, kept[1][2], None)


class NearDup(beam.PTransform):
    """(key, batch) → `kept` (key, batch) and `dropped` (reason near_dup, dup_of = the kept id)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg

    def expand(self, batches):
        cfg = self.cfg
        batches = batches | "Rebalance" >> spill.Rebalance()  # local runs: even shares for signing and scoring
        signed = batches | "Sign" >> beam.ParDo(_Sign(cfg)).with_outputs(_Sign.NODES, main="buckets")
        nodes = signed[_Sign.NODES]
        pairs = (
            signed.buckets
            | "GroupBuckets" >> disk_shuffle.GroupByKey(cfg.partitions)
            | "CandidatePairs" >> beam.FlatMap(_pairs, cfg.bucket_pairs)
        )
        edges = (
            {"node": nodes, "pair": pairs}
            | "JoinFirst" >> disk_shuffle.CoGroupByKey()
            | "AttachFirst" >> beam.FlatMap(_attach_first)
        )
        verified = (
            {"node": nodes, "pair": edges} | "JoinSecond" >> disk_shuffle.CoGroupByKey() | "Verify" >> beam.ParDo(_Verify(cfg))
        )
        if cfg.clustering == "union_find":
            clusters = verified | "Clusters" >> UnionFindClusters(cluster_drops)
        else:
            clusters = verified | "Clusters" >> StarRounds(cfg.max_rounds, cluster_drops, max(1, cfg.partitions // 8))
        decisions = clusters | "Decide" >> beam.Map(_decision)
        return batches | "ApplyNearDups" >> ApplyDrops(STAGE, decisions)
