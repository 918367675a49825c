"""Size-capped Parquet shards, each written atomically and checksummed as it is written."""

import hashlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.io import atomic


class _HashingSink:
    """A write-only file wrapper that hashes and counts what passes through it."""

    def __init__(self, f):
        self._f = f
        self.sha = hashlib.sha256()
        self.bytes = 0
        self.closed = False

    def write(self, data) -> int:
        data = bytes(data)
        self.sha.update(data)
        self.bytes += len(data)
        self._f.write(data)
        return len(data)

    def tell(self) -> int:
        return self.bytes

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self.closed = True  # the atomic writer owns the real file

    def writable(self) -> bool:
        return True


class ShardWriter:
    """Writes record batches into `<root>/<prefix>-NNNN.parquet` files of about `target_bytes` each.

    The size cap counts in-memory Arrow bytes, so a shard holds a predictable
    amount of text whatever the compression. Batches are never split, so a
    shard can exceed the target by one batch. `close()` returns one manifest
    entry (path relative to `base`, rows, bytes, sha256) per shard.
    """

    def __init__(self, base: str, folder: str, prefix: str, target_bytes: int, compression: str = "zstd"):
        self.base, self.folder, self.prefix = base, folder, prefix
        self.target_bytes = target_bytes
        self.compression = None if compression == "none" else compression
        self.entries: list[dict[str, Any]] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        if self._pending_bytes >= self.target_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending).combine_chunks()
        rel = f"{self.folder}/{self.prefix}-{len(self.entries):04d}.parquet"
        with atomic.atomic_write(atomic.join(self.base, rel)) as f:
            sink = _HashingSink(f)
            pq.write_table(table, sink, compression=self.compression, row_group_size=64 * 1024)
        self.entries.append({"path": rel, "rows": table.num_rows, "bytes": sink.bytes, "sha256": sink.sha.hexdigest()})
        self._pending, self._pending_bytes = [], 0

    def close(self) -> list[dict[str, Any]]:
        self._flush()
        return self.entries
