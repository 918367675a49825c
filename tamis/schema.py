"""Arrow schemas of the record batches that flow between stages.

A document batch is the Beam element everywhere: readers emit it, scorers add
columns to it, writers persist it. Score columns are named ``<scorer>.<field>``.
"""

import pyarrow as pa

FORMAT_VERSION = 1

DOCUMENT = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),  # input file the record came from
        pa.field("offset", pa.int64(), nullable=False),  # byte offset (JSONL/WARC) or row (Parquet)
        pa.field("meta", pa.string()),  # JSON object of the record's other fields
    ]
)

# A dropped document keeps every column it had plus why and by which stage.
DROP_FIELDS = [
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("dup_of", pa.string()),  # id of the kept document, for dedup drops
    pa.field("detail", pa.string()),  # JSON of the scores that decided the drop
]
DROPPED = pa.schema(list(DOCUMENT) + DROP_FIELDS)

ERROR = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("offset", pa.int64(), nullable=False),
        # what `offset` counts: "file" (bytes of the file as stored), "decompressed" (bytes of the
        # decompressed stream of a .gz/.zst file) or "row" (Parquet rows)
        pa.field("offset_kind", pa.string(), nullable=False),
        pa.field("error", pa.string(), nullable=False),
        pa.field("raw", pa.binary()),  # the record's bytes as read, so nothing is lost
    ]
)

# Retrieval results: one row per query, top-k ids and scores as lists.
NEIGHBOURS = pa.schema(
    [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("ids", pa.list_(pa.string()), nullable=False),
        pa.field("scores", pa.list_(pa.float32()), nullable=False),
    ]
)


def empty_documents() -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([], schema=DOCUMENT)


def dropped(
    batch: pa.RecordBatch,
    stage: str,
    reasons: list[str],
    dup_of: list[str | None] | None = None,
    detail: list[str | None] | None = None,
) -> pa.RecordBatch:
    """The DROPPED batch for all rows of a document batch (take the dropped rows first)."""
    n = batch.num_rows
    cols = [batch.column(f.name) for f in DOCUMENT]
    cols += [
        pa.array([stage] * n, pa.string()),
        pa.array(reasons, pa.string()),
        pa.array(dup_of if dup_of is not None else [None] * n, pa.string()),
        pa.array(detail if detail is not None else [None] * n, pa.string()),
    ]
    return pa.RecordBatch.from_arrays(cols, schema=DROPPED)


def documents(rows: list[dict]) -> pa.RecordBatch:
    """Build a document batch from dicts with id/text/source/offset/meta keys (tests, small inputs)."""
    return pa.RecordBatch.from_pylist(
        [{"source": "", "offset": i, "meta": None, **r} for i, r in enumerate(rows)], schema=DOCUMENT
    )
