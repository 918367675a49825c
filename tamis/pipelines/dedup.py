"""ExactDedup: drop documents whose normalized text an earlier id already has.

Only (hash, id, batch key) triples are shuffled to find duplicates, in
`buckets` partitions resolved with numpy; the drop list then meets its
batches in a join on the batch key.
"""

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.filters.exact_dedup import first_occurrences, text_hashes
from tamis.pipelines.read import DROPPED, STAGE_RANK
from tamis.schema import dropped

STAGE = "exact_dedup"


def _hash_rows(element, buckets: int):
    key, batch = element
    hashes = text_hashes(batch.column("text").to_pylist())
    ids = batch.column("id").to_pylist()
    part = (hashes % np.uint64(buckets)).astype(np.int64)
    for b in np.unique(part):
        rows = np.flatnonzero(part == b)
        yield int(b), (hashes[rows], [ids[i] for i in rows], key, rows)


def _resolve_bucket(element):
    _, groups = element
    groups = list(groups)
    hashes = np.concatenate([g[0] for g in groups])
    ids = [i for g in groups for i in g[1]]
    owner = np.repeat(np.arange(len(groups)), [len(g[1]) for g in groups])
    row = np.concatenate([g[3] for g in groups])
    dup, kept = first_occurrences(hashes, ids)
    for d, k in zip(dup, kept, strict=True):
        yield groups[owner[d]][2], (int(row[d]), ids[k])


class _ApplyDrops(beam.DoFn):
    def process(self, element):
        key, joined = element
        batches, drops = list(joined["batch"]), dict(joined["drop"])
        if not batches:
            return
        (batch,) = batches
        if drops:
            rows = sorted(drops)
            mask = np.ones(batch.num_rows, dtype=bool)
            mask[rows] = False
            gone = dropped(batch.take(pa.array(rows)), STAGE, ["exact_dup"] * len(rows), [drops[r] for r in rows])
            yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], STAGE_RANK[STAGE]), gone)))
            batch = batch.filter(pa.array(mask))
        yield key, batch


class ExactDedup(beam.PTransform):
    def __init__(self, buckets: int = 64):
        super().__init__()
        self.buckets = buckets

    def expand(self, batches):
        drops = (
            batches
            | "HashRows" >> beam.FlatMap(_hash_rows, self.buckets)
            | "GroupBuckets" >> beam.GroupByKey()
            | "Resolve" >> beam.FlatMap(_resolve_bucket)
        )
        return (
            {"batch": batches, "drop": drops}
            | "JoinDrops" >> beam.CoGroupByKey()
            | "ApplyDrops" >> beam.ParDo(_ApplyDrops()).with_outputs(DROPPED, main="kept")
        )
