"""Find kept or dropped documents of a run with their scores and why they were dropped (`tamis inspect`).

Selection reads the small columns first (id, reason) and the text only of the
rows it returns, so looking up one id in a large run reads no other text.
Kept documents carry their `<scorer>.<field>` columns; dropped ones the stage,
reason, `dup_of` and the scores that decided the drop (their `detail`).
"""

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis.errors import InputError
from tamis.io import atomic
from tamis.report import runs

_BASE = ("id", "text", "source", "offset", "meta")
_DROP = ("stage", "reason", "dup_of", "detail")


def _rows(run: str, rel: str, indices: list[int]) -> list[dict[str, Any]]:
    """Whole rows (every column) of one file at the given row indices."""
    with atomic.open_read(atomic.join(run, rel)) as f:
        pf = pq.ParquetFile(f)
        out, start = [], 0
        wanted = sorted(indices)
        for g in range(pf.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            inside = [i - start for i in wanted if start <= i < start + n]
            if inside:
                out += pf.read_row_group(g).take(pa.array(inside)).to_pylist()
            start += n
        return out


def _record(row: dict[str, Any], status: str, chars: int) -> dict[str, Any]:
    text = row.get("text") or ""
    rec = {"id": row["id"], "status": status, "source": row.get("source"), "offset": row.get("offset")}
    if status == "dropped":
        rec.update(stage=row.get("stage"), reason=row.get("reason"), dup_of=row.get("dup_of"))
        rec["scores"] = json.loads(row["detail"]) if row.get("detail") else {}
    else:
        rec["scores"] = {k: v for k, v in row.items() if k not in _BASE and v is not None}
    rec.update(text=text[:chars] if chars else text, chars=len(text), meta=row.get("meta"))
    return rec


def _matches(run: str, files: list[str], column: str, values: set[str]) -> list[tuple[str, int]]:
    out = []
    for rel in files:
        start = 0
        for batch in runs.batches(run, rel, [column]):
            if not batch.num_columns:
                break
            hit = np.flatnonzero(np.asarray(pc.is_in(batch.column(0), value_set=pa.array(sorted(values)))))
            out += [(rel, start + int(i)) for i in hit]
            start += batch.num_rows
    return out


def _first(run: str, files: list[str], n: int) -> tuple[int, list[tuple[str, int]]]:
    """(rows in all files, the first n (file, row) positions)."""
    total, out = 0, []
    for rel in files:
        with atomic.open_read(atomic.join(run, rel)) as f:
            rows = pq.ParquetFile(f).metadata.num_rows
        out += [(rel, i) for i in range(min(rows, n - len(out)))]
        total += rows
    return total, out


def find(run: str, reason: str | None = None, doc_id: str | None = None, kept: bool = False, n: int = 10,
         chars: int = 400) -> dict[str, Any]:
    """{"matched": how many documents match, "documents": the first `n` of them in file order}.

    With `doc_id`: that document, kept or dropped (both, if an id repeats), and under "duplicates" the ids
    dropped as its duplicates. With `kept`: kept documents.
    Otherwise dropped documents, only those dropped for `reason` when given. `chars` cuts the text (0: whole).
    """
    m = runs.load(run)
    shards, dropped = runs.parquet_files(m, "shards"), runs.parquet_files(m, "dropped")
    if doc_id is not None:
        hits = [(rel, i, "kept") for rel, i in _matches(run, shards, "id", {doc_id})]
        hits += [(rel, i, "dropped") for rel, i in _matches(run, dropped, "id", {doc_id})]
        if not hits:
            raise InputError(f"No document with id {doc_id!r} in {run} (neither kept nor dropped).",
                             hint="ids are those of the input records; errors/ holds records that had none")
        links = runs.read_columns(run, dropped, ["id", "dup_of"])
        copies = links.filter(pc.equal(links.column("dup_of"), doc_id)) if links.num_rows else links
        return {"matched": len(hits), "documents": _load(run, hits[:n], chars),
                "duplicates": copies.column("id").to_pylist() if copies.num_rows else []}
    if kept or reason is None:
        total, first = _first(run, shards if kept else dropped, n)
        status = "kept" if kept else "dropped"
        return {"matched": total, "documents": _load(run, [(rel, i, status) for rel, i in first], chars)}
    by_reason = m.get("counts", {}).get("dropped_by_reason", {})
    if reason not in by_reason:
        raise InputError(f"No document of {run} was dropped for {reason!r}.",
                         hint=f"reasons in this run: {', '.join(sorted(by_reason)) or 'none'}")
    hits = [(rel, i, "dropped") for rel, i in _matches(run, dropped, "reason", {reason})]
    return {"matched": len(hits), "documents": _load(run, hits[:n], chars)}


def _load(run: str, hits: list[tuple[str, int, str]], chars: int) -> list[dict[str, Any]]:
    """The records at (file, row, status) positions, in that order."""
    out = []
    for rel in dict.fromkeys(rel for rel, _, _ in hits):
        mine = [(i, s) for r, i, s in hits if r == rel]
        rows = _rows(run, rel, [i for i, _ in mine])
        out += [_record(row, s, chars) for row, (_, s) in zip(rows, sorted(mine), strict=True)]
    return out
