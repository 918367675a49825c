"""ExactDedup: drop documents whose normalized text a smaller id already has; optionally cut
lines or paragraphs that a smaller id already has (C4).

Only (hash, id, batch key, row, position) tuples are shuffled to find
repeats, in `buckets` partitions resolved with numpy; the decisions then meet
their batches (spilled, where the pipeline spills) in a join on the batch key.

With `keep_signatures`, the hashing steps also output each batch's tuples
(`signatures`, keyed by input file) for the run directory; on resume,
`finished` names the kept signature files of finished inputs, whose tuples
join the shuffle in place of their texts (tamis.dedup.signatures). Their
repeats are resolved like any other, and the decisions for their batches meet
no batch.
"""

from collections import defaultdict

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.dedup import signatures
from tamis.dedup.exact import ExactDedupConfig, first_occurrences, remove_units, text_hashes, unit_hashes
from tamis.pipelines import disk_shuffle, spill
from tamis.pipelines.drops import Staged, remove_rows
from tamis.pipelines.read import DROPPED, STAGE_RANK

STAGE = "exact_dedup"
SIGNATURES = "signatures"


def _partition(key, hashes, item_ids, rows, positions, buckets: int):
    part = (hashes % np.uint64(buckets)).astype(np.int64)
    for b in np.unique(part):
        sel = np.flatnonzero(part == b)
        yield int(b), (key, hashes[sel], [item_ids[i] for i in sel.tolist()], rows[sel], positions[sel])


def _signature(key, kind: str, keep: bool, *columns):
    if keep:
        yield beam.pvalue.TaggedOutput(SIGNATURES, (key[0], ((kind, key[1]), signatures.hashes(kind, key[1], *columns))))


def _hash_docs(element, buckets: int, keep: bool):
    key, batch = element
    n = batch.num_rows
    hashes = text_hashes(batch.column("text").to_pylist())
    ids, rows = batch.column("id").to_pylist(), np.arange(n)
    yield from _signature(key, signatures.EXACT_DOCS, keep, rows, hashes, ids)
    yield from _partition(key, hashes, ids, rows, np.zeros(n, np.int64), buckets)


def _hash_units(element, buckets: int, keep: bool, unit: str, min_chars: int):
    key, batch = element
    hashes, rows, positions = unit_hashes(batch.column("text").to_pylist(), unit, min_chars)
    ids = batch.column("id").to_pylist()
    item_ids = [ids[r] for r in rows.tolist()]
    yield from _signature(key, signatures.EXACT_UNITS, keep, rows, hashes, item_ids, positions)
    yield from _partition(key, hashes, item_ids, rows, positions, buckets)


def _kept_docs(element, buckets: int):
    """A finished input's kept document hashes → the same partitions `_hash_docs` made of its batches."""
    index, paths = element
    for b, t in signatures.by_batch(signatures.read(paths[signatures.EXACT_DOCS], signatures.EXACT_DOCS)):
        rows = t.column("row").to_numpy()
        yield from _partition((index, b), t.column("hash").to_numpy(), t.column("id").to_pylist(), rows,
                              np.zeros(len(rows), np.int64), buckets)


def _kept_units(element, buckets: int):
    index, paths = element
    for b, t in signatures.by_batch(signatures.read(paths[signatures.EXACT_UNITS], signatures.EXACT_UNITS)):
        yield from _partition((index, b), t.column("hash").to_numpy(), t.column("id").to_pylist(),
                              t.column("row").to_numpy(), t.column("position").to_numpy(), buckets)


def _resolve(element):
    """Yield (batch key, (rows, positions, kept ids)) per batch with repeated items in one bucket.

    One record per batch and bucket, not per repeated item: a corpus with many
    repeated lines would otherwise shuffle one small Beam element per line.
    """
    _, groups = element
    groups = list(groups)
    hashes = np.concatenate([g[1] for g in groups])
    ids = [i for g in groups for i in g[2]]
    rows = np.concatenate([g[3] for g in groups])
    positions = np.concatenate([g[4] for g in groups])
    owner = np.repeat(np.arange(len(groups)), [len(g[2]) for g in groups])
    keys = np.array([g[0] for g in groups], dtype=np.int64).reshape(-1, 2)  # (input, batch) per group
    locations = (keys[owner, 0] << 42) | (keys[owner, 1] << 21) | rows  # where each item's document was read
    dup, kept = first_occurrences(hashes, ids, positions, locations)
    order = np.argsort(owner[dup], kind="stable")
    bounds = np.flatnonzero(np.diff(owner[dup][order])) + 1
    for sel in np.split(order, bounds) if len(order) else []:
        d = dup[sel]
        yield groups[owner[d[0]]][0], (rows[d], positions[d], [ids[k] for k in kept[sel].tolist()])


def _joined(element) -> tuple[tuple, pa.RecordBatch | None, list]:
    """(key, the batch or None when it was not joined, its (row, position, kept id) repeats)."""
    key, joined = element
    batches = list(joined["batch"])
    repeats = [
        rep
        for rows, positions, kept in joined["repeats"]
        for rep in zip(rows.tolist(), positions.tolist(), kept, strict=True)
    ]
    return key, (spill.load(batches[0]) if batches else None), repeats


class _DropDocs(beam.DoFn):
    def process(self, element):
        key, batch, repeats = _joined(element)
        if batch is not None:
            yield from remove_rows(key, batch, STAGE, [(row, "exact_dup", kept, None) for row, _, kept in repeats])


class _CutUnits(beam.DoFn):
    """Remove repeated units; a document left with no text is dropped, pointing at the kept copy of its first unit."""

    def __init__(self, unit: str):
        self.unit = unit

    def process(self, element):
        key, batch, repeats = _joined(element)
        if batch is None:
            return
        if not repeats:
            yield key, batch
            return
        cut: dict[int, set[int]] = defaultdict(set)
        source: dict[int, tuple[int, str]] = {}
        for row, pos, kept in repeats:  # in arrival order, which varies with workers and bundles
            cut[row].add(pos)
            source[row] = min(source.get(row, (pos, kept)), (pos, kept))  # the kept copy of the row's first repeat
        texts = batch.column("text").to_pylist()
        for row, positions in cut.items():
            texts[row] = remove_units(texts[row], self.unit, positions)
        batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.string()))
        emptied = [(r, f"all_{self.unit}s_repeated", source[r][1], None) for r in sorted(cut) if not texts[r]]
        yield from remove_rows(key, batch, STAGE, emptied, STAGE_RANK[STAGE] + 1)


class ExactDedup(beam.PTransform):
    """(key, batch) → `kept` (key, batch) and `dropped` (reason exact_dup or all_<unit>s_repeated, dup_of = kept id),
    and `signatures` (input, ((kind, batch), rows)) when `keep_signatures`.

    `finished`: (input index, {kind: path}) of finished inputs whose kept signatures join the shuffles.
    """

    def __init__(self, cfg: ExactDedupConfig, keep_signatures: bool = False, finished: beam.PCollection | None = None):
        super().__init__()
        self.cfg, self.keep, self.finished = cfg, keep_signatures, finished

    def _repeats(self, batches, label: str, hash_fn, kept_fn, *args):
        hashed = batches | f"Hash{label}" >> beam.FlatMap(hash_fn, self.cfg.buckets, self.keep, *args).with_outputs(
            SIGNATURES, main="parts")
        parts = hashed.parts
        if self.finished is not None:
            kept = self.finished | f"Kept{label}" >> beam.FlatMap(kept_fn, self.cfg.buckets)
            parts = (parts, kept)  # each shuffled where it is made
        repeats = parts | f"Group{label}" >> disk_shuffle.GroupByKey() | f"Resolve{label}" >> beam.FlatMap(_resolve)
        return repeats, hashed[SIGNATURES]

    def expand(self, batches):
        repeats, signed = self._repeats(batches, "Docs", _hash_docs, _kept_docs)
        docs = (
            {"batch": batches | "HoldDocs" >> spill.Spill(), "repeats": repeats}
            | "JoinDocs" >> disk_shuffle.CoGroupByKey()
            | "DropDocs" >> beam.ParDo(_DropDocs()).with_outputs(DROPPED, main="kept")
        )
        if self.cfg.units == "off":
            return Staged(docs.kept, docs[DROPPED], signed)
        repeats, signed_units = self._repeats(docs.kept, "Units", _hash_units, _kept_units, self.cfg.units,
                                              self.cfg.min_unit_chars)
        units = (
            {"batch": docs.kept | "HoldUnits" >> spill.Spill(), "repeats": repeats}
            | "JoinUnits" >> disk_shuffle.CoGroupByKey()
            | "CutUnits" >> beam.ParDo(_CutUnits(self.cfg.units)).with_outputs(DROPPED, main="kept")
        )
        # Spilled before each Flatten, which the local runner holds in memory until all its inputs are done.
        held = [docs[DROPPED] | "HoldDropDocs" >> spill.Spill(), units[DROPPED] | "HoldCutUnits" >> spill.Spill()]
        signs = [signed | "HoldSignDocs" >> spill.Spill(), signed_units | "HoldSignUnits" >> spill.Spill()]
        return Staged(units.kept, held | "DedupDropped" >> beam.Flatten(), signs | "Signatures" >> beam.Flatten())
