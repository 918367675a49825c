"""Apply a configured chain of scorers and filters to one batch: the pure core of the Score stage."""

import json
import time

import numpy as np
import pyarrow as pa

from tamis.filters.base import Filter, Scorer
from tamis.filters.text import DocView
from tamis.schema import dropped

STAGE = "filter"


def _to_arrow(values: np.ndarray) -> pa.Array:
    if values.dtype == object:
        return pa.array(values.tolist(), pa.string())
    return pa.array(values)


def _detail(scores: dict[str, np.ndarray], row: int) -> str:
    return json.dumps(
        {k: (v[row].item() if hasattr(v[row], "item") else v[row]) for k, v in scores.items() if not k.endswith(".text")},
        ensure_ascii=False,
    )


def apply_chain(
    components: list[Scorer], batch: pa.RecordBatch, timings: dict[str, tuple[float, int]] | None = None
) -> tuple[pa.RecordBatch, list[pa.RecordBatch]]:
    """Run components in order on the rows still kept; return (kept batch with score columns, dropped batches).

    Each component sees only the documents every earlier filter kept, so the
    cost of a chain falls as it drops. A score column named `<name>.text` is a
    rewritten text (C4 line removal, secret redaction): it replaces `text` for
    the kept documents and the components after them, and is not stored as a
    score; a document the same component drops goes to `dropped/` with the
    text it came in with. Text split by one component is reused by the next
    (DocView.take keeps the survivors' rows). A run-wide filter (`Filter.run_wide`) only adds its
    scores here; the pipeline applies its rule once the whole run is scored.
    `timings`, when given, gets (seconds, documents seen) per component key.
    """
    drops: list[pa.RecordBatch] = []
    score_cols: dict[str, np.ndarray] = {}
    view = DocView(batch)
    for comp in components:
        if batch.num_rows == 0:
            break
        started = time.perf_counter()
        rows = batch.num_rows
        scores = comp.score(view)
        new_text = scores.pop(comp.col("text"), None)
        before = batch
        if new_text is not None:
            batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(list(new_text), pa.string()))
            view = DocView(batch)
        if isinstance(comp, Filter) and not comp.run_wide:
            keep, reason = comp.rule(scores)
            keep = np.asarray(keep, dtype=bool)
            if not keep.all():
                drop_idx = np.flatnonzero(~keep)
                detail = [_detail(scores, i) for i in drop_idx]
                drops.append(dropped(before.take(pa.array(drop_idx)), STAGE, list(reason[drop_idx]), detail=detail))
                view = view.take(np.flatnonzero(keep))
                batch = view.batch
                score_cols = {k: v[keep] for k, v in score_cols.items()}
                scores = {k: np.asarray(v)[keep] for k, v in scores.items()}
        score_cols.update({k: np.asarray(v) for k, v in scores.items()})
        if timings is not None:
            timings[comp.key()] = (time.perf_counter() - started, rows)
    for name, values in score_cols.items():
        batch = batch.append_column(name, _to_arrow(values))
    return batch, drops
