"""Open a finished run directory for reading: its manifest, and its Parquet files column by column.

The report, `tamis inspect` and `tamis diff` read only the files the manifest
lists (a stale file left beside them is never counted), only the columns they
need, one record batch at a time, so a run of any size is read in bounded memory.
Any kind of run is accepted (curate runs, mixes): what a section needs and does
not find, it says is absent.
"""

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.errors import IntegrityError
from tamis.io import atomic, manifest

FOLDERS = ("shards", "dropped", "errors")
BATCH_ROWS = 8192


def load(run: str, verify: bool = False) -> dict[str, Any]:
    """The run's manifest; with `verify`, refuse a run whose files differ from it (as `tamis verify` does)."""
    found = manifest.read_any(run, check_self=False)  # `verify` checks its own checksum with the files
    if "kind" not in found:
        raise IntegrityError(f"{atomic.join(run, manifest.MANIFEST)} is not a tamis manifest")
    if verify:
        problems = manifest.problems(run, found)
        if problems:
            raise IntegrityError(
                f"{run} fails verification ({len(problems)} problem(s)): {problems[0]}",
                hint=f"see `tamis verify {run}`; a report of a damaged run would show wrong numbers",
            )
    return found


def parquet_files(m: dict[str, Any], folder: str) -> list[str]:
    """Relative paths of the Parquet files of `folder` (shards, dropped, errors) that the manifest lists, sorted."""
    return sorted(e["path"] for e in m.get("files", []) if e["path"].startswith(f"{folder}/") and e["path"].endswith(
        ".parquet"))


def schema(run: str, rel: str) -> pa.Schema:
    with atomic.open_read(atomic.join(run, rel)) as f:
        return pq.ParquetFile(f).schema_arrow


def batches(run: str, rel: str, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """Record batches of `columns` (those the file has) of one listed file."""
    with atomic.open_read(atomic.join(run, rel)) as f:
        pf = pq.ParquetFile(f)
        have = [c for c in columns if c in pf.schema_arrow.names]
        yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=have)


def read_columns(run: str, rels: list[str], columns: list[str]) -> pa.Table:
    """The named columns of several files as one table (never the text: callers stream that with `batches`)."""
    tables = []
    for rel in rels:
        with atomic.open_read(atomic.join(run, rel)) as f:
            pf = pq.ParquetFile(f)
            tables.append(pf.read(columns=[c for c in columns if c in pf.schema_arrow.names]))
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="permissive")


def pointer(*keys: str | int) -> str:
    """The JSON Pointer (RFC 6901) of a value in the manifest: how the report tags each number it shows."""
    return "".join("/" + str(k).replace("~", "~0").replace("/", "~1") for k in keys)


def resolve(m: dict[str, Any], ptr: str) -> Any:
    """The manifest value at a JSON Pointer (the inverse of `pointer`)."""
    value: Any = m
    for raw in ptr.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value
