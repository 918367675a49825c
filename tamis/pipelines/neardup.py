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

With `keep_signatures`, signing also outputs each batch's band keys, evidence
and ranks (`signatures`, keyed by input file) for the run directory; on
resume, `finished` names the kept signature files of finished inputs, which
become the same nodes and bucket-key partitions their batches gave when
signed (tamis.dedup.signatures): the graph, its clusters and every keeper are
those of an uninterrupted run, and the decisions for finished batches meet no batch.
"""

import apache_beam as beam
import numpy as np

from tamis.dedup import signatures
from tamis.dedup.neardup import Node, Signer, candidate_pairs, cluster_drops, node, ranks
from tamis.pipelines import disk_shuffle, pool, spill
from tamis.pipelines.components import StarRounds, UnionFindClusters
from tamis.pipelines.drops import ApplyDrops, Staged
from tamis.pipelines.read import DROPPED

STAGE = "near_dedup"
REASON = "near_dup"


NODES, SIGNATURES = "nodes", "signatures"


def _signed(key, rows: list[int], docs: list[str], evidence: list[bytes], doc_ranks: list, buckets: np.ndarray,
            partitions: int):
    """A batch's signed documents → a node each, and (partition, (bucket keys, ids)) per bucket-key partition."""
    for j, r in enumerate(rows):
        yield beam.pvalue.TaggedOutput(NODES, (docs[j], (evidence[j], doc_ranks[j], (key, r))))
    keys = buckets.ravel()
    owner = np.repeat(np.arange(len(docs)), buckets.shape[1])
    part = (keys % np.uint64(partitions)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    bounds = np.flatnonzero(np.diff(part[order])) + 1
    for sel in np.split(order, bounds) if len(order) else []:
        yield int(part[sel[0]]), (keys[sel], [docs[i] for i in owner[sel].tolist()])


class _Sign(beam.DoFn):
    """A batch → (partition, (bucket keys, ids)) per bucket-key partition, a node per signed document, and with
    `keep` its signatures."""

    def __init__(self, cfg, keep: bool = False):
        self.cfg, self.keep = cfg, keep

    def setup(self):
        self.signer = Signer(self.cfg)

    def process(self, element):
        key, batch = element
        batch = spill.load(batch)
        ids = batch.column("id").to_pylist()
        signed = self.signer.sign(batch.column("text").to_pylist())
        batch_ranks = ranks(batch, self.cfg.keep, self.cfg.score_column)
        rows = signed.rows.tolist()
        docs, doc_ranks = [ids[r] for r in rows], [batch_ranks[r] for r in rows]
        if self.keep:
            kept = signatures.near(key[1], signed.rows, docs, doc_ranks, signed.evidence, signed.buckets)
            yield beam.pvalue.TaggedOutput(SIGNATURES, (key[0], ((signatures.NEAR, key[1]), kept)))
        yield from _signed(key, rows, docs, signed.evidence, doc_ranks, signed.buckets, self.cfg.partitions)


def _kept_nodes(element, partitions: int):
    """A finished input's kept signatures → the same nodes and partitions `_Sign` made of its batches."""
    index, paths = element
    for b, t in signatures.by_batch(signatures.read(paths[signatures.NEAR], signatures.NEAR)):
        docs = t.column("id").to_pylist()
        doc_ranks = list(zip(t.column("rank_score").to_pylist(), t.column("rank_length").to_pylist(), docs,
                             strict=True))
        bands = t.column("bands").combine_chunks()
        buckets = bands.values.to_numpy().reshape(len(docs), -1) if len(docs) else np.empty((0, 0), np.uint64)
        yield from _signed((index, b), t.column("row").to_pylist(), docs, t.column("evidence").to_pylist(),
                           doc_ranks, buckets, partitions)


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
    """(key, batch) → `kept` (key, batch) and `dropped` (reason near_dup, dup_of = the kept id), and `signatures`
    (input, ((kind, batch), rows)) when `keep_signatures`.

    `finished`: (input index, {kind: path}) of finished inputs whose kept signatures join the graph.
    """

    def __init__(self, cfg, keep_signatures: bool = False, finished: beam.PCollection | None = None):
        super().__init__()
        self.cfg, self.keep, self.finished = cfg, keep_signatures, finished

    def expand(self, batches):
        cfg = self.cfg
        batches = batches | "Rebalance" >> spill.Rebalance()  # local runs: even shares for signing and scoring
        sign = pool.pooled(batches.pipeline, _Sign(cfg, self.keep))
        signed = batches | "Sign" >> beam.ParDo(sign).with_outputs(NODES, SIGNATURES, main="buckets")
        nodes, buckets = signed[NODES], signed.buckets
        if self.finished is not None:
            kept = self.finished | "KeptSignatures" >> beam.FlatMap(_kept_nodes, cfg.partitions).with_outputs(
                NODES, main="buckets")
            nodes, buckets = (nodes, kept[NODES]), (buckets, kept.buckets)  # each shuffled where it is made
        pairs = (
            buckets
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
        applied = batches | "ApplyNearDups" >> ApplyDrops(STAGE, decisions)
        return Staged(applied.kept, applied[DROPPED], signed[SIGNATURES])
