"""Size-capped Parquet shards, each written atomically and checksummed as it is written."""

import contextlib
import hashlib
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.errors import ConfigError
from tamis.io import atomic
from tamis.validation import Params


class ShardConfig(Params):
    target_bytes: int = 128 * 1024 * 1024  # uncompressed text bytes per shard
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    def check(self) -> None:
        if self.target_bytes <= 0:
            raise ConfigError(f"The 'target_bytes' parameter of shards must be > 0. Got {self.target_bytes} instead.")


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


ROW_GROUP_BYTES = 32 * 1024 * 1024  # in-memory Arrow bytes gathered before a row group is written


class ShardWriter:
    """Writes record batches into `<root>/<prefix>-NNNN.parquet` files of about `target_bytes` each.

    The size cap counts in-memory Arrow bytes, so a shard holds a predictable
    amount of text whatever the compression. Batches are never split, so a
    shard can exceed the target by one batch. A shard is written as it fills,
    a row group of about `ROW_GROUP_BYTES` at a time, so a writer holds one row
    group, not a whole shard; the file appears under its name only once closed.
    `close()` returns one manifest entry (path relative to `base`, rows,
    bytes, sha256) per shard.
    """

    def __init__(self, base: str, folder: str, prefix: str, target_bytes: int, compression: str = "zstd"):
        self.base, self.folder, self.prefix = base, folder, prefix
        self.target_bytes = target_bytes
        self.compression = None if compression == "none" else compression
        self.entries: list[dict[str, Any]] = []
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = 0
        self._open: contextlib.ExitStack | None = None
        self._sink: _HashingSink | None = None
        self._writer: pq.ParquetWriter | None = None
        self._rows = self._bytes = 0

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._open is not None:  # the unfinished shard never appears
            self._open.__exit__(exc_type, exc, tb)

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._bytes += batch.nbytes
        if self._pending_bytes >= ROW_GROUP_BYTES:
            self._write_row_group()
        if self._bytes >= self.target_bytes:
            self._close_shard()

    def _write_row_group(self) -> None:
        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending).combine_chunks()
        if self._writer is None:
            self._open = contextlib.ExitStack()
            f = self._open.enter_context(atomic.atomic_write(atomic.join(self.base, self._rel())))
            self._sink = _HashingSink(f)
            self._writer = pq.ParquetWriter(self._sink, table.schema, compression=self.compression)
        self._writer.write_table(table, row_group_size=table.num_rows)
        self._rows += table.num_rows
        self._pending, self._pending_bytes = [], 0

    def _rel(self) -> str:
        return f"{self.folder}/{self.prefix}-{len(self.entries):04d}.parquet"

    def _close_shard(self) -> None:
        self._write_row_group()
        if self._writer is None:
            return
        self._writer.close()
        rel = self._rel()
        self._open.close()
        sink = self._sink
        self.entries.append({"path": rel, "rows": self._rows, "bytes": sink.bytes, "sha256": sink.sha.hexdigest()})
        self._open = self._sink = self._writer = None
        self._rows = self._bytes = 0

    def close(self) -> list[dict[str, Any]]:
        self._close_shard()
        return self.entries
