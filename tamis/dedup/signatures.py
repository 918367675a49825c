"""Dedup signatures of one finished input, kept in the run directory so a resumed run need not reread it.

Exact and near dedup decide an unfinished input's drops against every other
document of the run. What they need from a finished input is small next to
its text, and fixed once the input is finished (its documents' fate was decided
against the whole run, as in an uninterrupted run):

- ``exact_docs``: the 64-bit hash of every document that reached exact dedup;
- ``exact_units``: the hash and position of every line or paragraph of the
  documents that survived document dedup (C4-style unit dedup);
- ``near``: each signed document's LSH band keys, verification evidence
  (bottom-k sketch or signature sketch) and keep rank.

Each row also holds the document's id and where it was read (batch, row), since
keepers are chosen by (id, location) and near-dup nodes carry that reference.
A resumed run joins these rows into the dedup stages in place of the finished
inputs' texts, so every decision, keeper and `dup_of` is the one an
uninterrupted run makes. One Arrow IPC file per kind and input, rows sorted by
(batch, row, position): the file is byte-identical whatever the worker count.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import IntegrityError
from tamis.io import arrays

EXACT_DOCS, EXACT_UNITS, NEAR = "exact_docs", "exact_units", "near"
KINDS = (EXACT_DOCS, EXACT_UNITS, NEAR)

_WHERE = [("batch", pa.int64()), ("row", pa.int64())]
SCHEMAS = {
    EXACT_DOCS: pa.schema([*_WHERE, ("hash", pa.uint64()), ("id", pa.string())]),
    EXACT_UNITS: pa.schema([*_WHERE, ("position", pa.int64()), ("hash", pa.uint64()), ("id", pa.string())]),
    NEAR: pa.schema([*_WHERE, ("id", pa.string()), ("rank_score", pa.float64()), ("rank_length", pa.float64()),
                     ("evidence", pa.binary()), ("bands", pa.list_(pa.uint64()))]),
}


def needed(exact: bool, units: bool, near: bool) -> tuple[str, ...]:
    """The kinds a config's dedup stages read back on resume."""
    return tuple(k for k, on in zip(KINDS, (exact, exact and units, near), strict=True) if on)


def file_name(index: int, kind: str) -> str:
    return f"{index:05d}.{kind}.arrow"


def hashes(kind: str, batch: int, rows: np.ndarray, item_hashes: np.ndarray, ids: list[str],
           positions: np.ndarray | None = None) -> pa.RecordBatch:
    """Rows of an exact kind for one batch: (batch, row[, position], hash, id) per item."""
    cols = [pa.array(np.full(len(rows), batch, np.int64)), pa.array(rows.astype(np.int64))]
    if kind == EXACT_UNITS:
        cols.append(pa.array(positions.astype(np.int64)))
    cols += [pa.array(item_hashes.astype(np.uint64)), pa.array(ids, pa.string())]
    return pa.RecordBatch.from_arrays(cols, schema=SCHEMAS[kind])


def near(batch: int, rows: np.ndarray, ids: list[str], ranks: list[tuple], evidence: list[bytes],
         buckets: np.ndarray) -> pa.RecordBatch:
    """Rows of the near kind for one batch: a signed document's band keys ((rows, bands) array), evidence and
    keep rank (its first two fields; the third is the id)."""
    flat = pa.array(np.ascontiguousarray(buckets, np.uint64).ravel())
    offsets = pa.array(np.arange(len(rows) + 1, dtype=np.int32) * np.int32(buckets.shape[1]))
    cols = [
        pa.array(np.full(len(rows), batch, np.int64)), pa.array(rows.astype(np.int64)), pa.array(ids, pa.string()),
        pa.array([r[0] for r in ranks], pa.float64()), pa.array([r[1] for r in ranks], pa.float64()),
        pa.array(evidence, pa.binary()), pa.ListArray.from_arrays(offsets, flat),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=SCHEMAS[NEAR])


def table(kind: str, parts: list[pa.RecordBatch]) -> pa.Table:
    """One input's rows of a kind, in (batch, row, position) order whatever order the parts came in.

    Parts given in batch order are already in that order (each batch's rows are): then the rows are
    only joined, not also taken in order, which would hold the input's rows three times over.
    """
    out = pa.Table.from_batches(parts, schema=SCHEMAS[kind]) if parts else SCHEMAS[kind].empty_table()
    keys = [("batch", "ascending"), ("row", "ascending")] + ([("position", "ascending")] if kind == EXACT_UNITS else [])
    order = pc.sort_indices(out, sort_keys=keys).to_numpy()  # a stable sort: 0, 1, 2, ... when in order
    if np.any(order != np.arange(len(order))):
        out = out.take(order)
    return out.combine_chunks()


def write(path: str, t: pa.Table) -> None:
    arrays.write_arrow(path, t)


def read(path: str, kind: str) -> pa.Table:
    """A kept signature file; IntegrityError if it is not readable or not of its kind's schema."""
    t = arrays.read_arrow(path)
    if not t.schema.equals(SCHEMAS[kind]):
        raise IntegrityError(f"{path} is not a signature file of kind {kind!r} (its columns: {t.schema.names})", hint="rerun to redo it")
    return t


def by_batch(t: pa.Table):
    """Yield (batch index, its rows as a table) for a file's rows sorted by batch."""
    batches = t.column("batch").to_numpy()
    if not len(batches):
        return
    bounds = np.flatnonzero(np.diff(batches)) + 1
    starts = np.r_[0, bounds]
    ends = np.r_[bounds, len(batches)]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        yield int(batches[a]), t.slice(a, b - a)
