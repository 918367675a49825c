"""DocumentDataset: one sample per row of Parquet shards (a curate run, a mix, or plain files).

It yields rows as dicts of the chosen columns and does not tokenize: packing
needs every document's token count before sample i can be found, which is what
`tamis export tokens` computes once (use TokenDataset on its output for packed
sequences). This dataset suits inspection, fine-tuning on whole documents and
collators that tokenize themselves.

Blocks are Parquet row groups, so a shuffle window is a few random row groups
whose rows are permuted together, and a row group is decoded once per window.
Every rank and worker decodes the windows it reads from, so with many readers
per node the token export, read by position, costs less.
"""

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.errors import ConfigError, IntegrityError
from tamis.io.token_shards import any_manifest, parquet_shards
from tamis.train.base import ResumableDataset
from tamis.train.checks import BackgroundChecks


class DocumentDataset(ResumableDataset):
    """Rows of Parquet shards, shuffled with a bounded buffer, split over ranks and workers, resumable.

    `source`: a directory with a manifest.json (its shards are taken in manifest
    order and checked against their sha256 when first opened, unless
    `verify=False`), or a list of Parquet files (no checksums: pass verify=False).
    """

    def __init__(
        self,
        source: str | os.PathLike | Sequence[str],
        *,
        columns: Sequence[str] = ("id", "text"),
        verify: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 1 << 14,
        batch_size: int = 1,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__(shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer, batch_size=batch_size,
                         drop_last=drop_last, rank=rank, world_size=world_size)
        self.columns, self.verify = list(columns), verify
        if isinstance(source, str | os.PathLike) and os.path.isdir(source):
            root = str(source)
            self.files = [(os.path.join(root, e["path"]), e) for e in parquet_shards(any_manifest(root))]
        else:
            paths = [str(source)] if isinstance(source, str | os.PathLike) else [str(p) for p in source]
            if verify:
                raise ConfigError("plain Parquet files have no manifest to verify against",
                                  hint="give the run directory, or pass verify=False")
            self.files = [(p, None) for p in paths]
        sizes, self.block_file, self.block_group = [], [], []
        for f, (path, entry) in enumerate(self.files):
            for g, n in enumerate(_row_groups(path, entry)):
                sizes.append(n)
                self.block_file.append(f)
                self.block_group.append(g)
        self.bounds = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.num_samples = int(self.bounds[-1])
        self._open: dict[int, pq.ParquetFile] = {}
        self._open_pid = os.getpid()
        self._checks = BackgroundChecks()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_open"] = {}
        return state

    def _extra_state(self) -> dict[str, Any]:
        return {"row_groups": len(self.bounds) - 1}

    def _plan(self, order) -> None:
        if self.verify:
            files = dict.fromkeys([*np.asarray(self.block_file)[order.blocks].tolist(), *range(len(self.files))])
            self._checks.plan([(f, self.files[f][0], self.files[f][1]["sha256"]) for f in files])

    def _file(self, f: int) -> pq.ParquetFile:
        if self._open_pid != os.getpid():  # file handles are not shared with forked workers
            self._open, self._open_pid = {}, os.getpid()
        if f not in self._open:
            self._open[f] = pq.ParquetFile(self.files[f][0])
        return self._open[f]

    def _fetch(self, ids: np.ndarray) -> list[dict[str, Any]]:
        block = np.searchsorted(self.bounds, ids, side="right") - 1
        tables, offsets, at = [], np.zeros(len(self.bounds), dtype=np.int64), 0
        for b in np.unique(block).tolist():
            f, g = self.block_file[b], self.block_group[b]
            tables.append(self._file(f).read_row_group(g, columns=self.columns))
            offsets[b] = at - self.bounds[b]
            at += tables[-1].num_rows
        if self.verify:
            for f in sorted({self.block_file[b] for b in np.unique(block).tolist()}):
                self._checks.wait(f, self.files[f][0], self.files[f][1]["sha256"])
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        rows = ids + offsets[block]
        if 2 * len(rows) >= table.num_rows:  # most of the window is ours: convert it once, then pick
            every = table.to_pylist()
            return [every[r] for r in rows.tolist()]
        return table.take(pa.array(rows)).to_pylist()


def _row_groups(path: str, entry: dict[str, Any] | None) -> list[int]:
    """Row counts of a Parquet file's row groups from its footer; IntegrityError naming a damaged file."""
    if not os.path.isfile(path):
        raise IntegrityError(f"{path} is missing")
    size = os.path.getsize(path)
    if entry is not None and size != entry["bytes"]:
        what = "truncated" if size < entry["bytes"] else "longer than the manifest says"
        raise IntegrityError(f"{path} is {what}: {size} bytes, the manifest says {entry['bytes']}")
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise IntegrityError(f"{path} is not a readable Parquet file, perhaps truncated ({e})") from e
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
