"""Per-batch text views shared by every scorer, so text is split once per batch, not once per rule."""

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


class DocView:
    """A document batch with lazily computed, cached derived data (words, lines, ...).

    Scorers call `cached(key, fn)` for anything another scorer may need too;
    the first caller computes it, the rest reuse it. An entry computed row by
    row (`per_row=True`) also survives `take`, so a filter chain that drops
    documents does not split the survivors' text again.
    """

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self._cache: dict[str, Any] = {}
        self._per_row: set[str] = set()

    def __len__(self) -> int:
        return self.batch.num_rows

    def cached(self, key: str, fn: Callable[["DocView"], Any], per_row: bool = False) -> Any:
        """`fn(self)`, computed once. `per_row`: row i of the value depends on document i alone."""
        if key not in self._cache:
            self._cache[key] = fn(self)
            if per_row:
                self._per_row.add(key)
        return self._cache[key]

    def take(self, rows: np.ndarray) -> "DocView":
        """The view of the documents at `rows` (ascending), with the per-row entries already selected."""
        view = DocView(self.batch.take(pa.array(rows)))
        for key in self._per_row:
            view._cache[key] = _take_rows(self._cache[key], rows)
        view._per_row = set(self._per_row)
        return view

    @property
    def texts(self) -> list[str]:
        return self.cached("texts", lambda d: d.batch.column("text").to_pylist(), per_row=True)

    @property
    def ids(self) -> list[str]:
        return self.cached("ids", lambda d: d.batch.column("id").to_pylist(), per_row=True)

    @property
    def lines(self) -> list[list[str]]:
        return self.cached("lines", lambda d: [t.split("\n") for t in d.texts], per_row=True)

    @property
    def tokens(self) -> list[list[str]]:
        """Words and punctuation marks, split by one Unicode regex."""
        return self.cached("tokens", lambda d: [_WORD.findall(t) for t in d.texts], per_row=True)


def _take_rows(value: Any, rows: np.ndarray) -> Any:
    """The entries of a per-row value at `rows`: a list, numpy or Arrow array, or anything with `take_rows`."""
    if isinstance(value, list):
        return [value[i] for i in rows]
    if isinstance(value, np.ndarray):
        return value[rows]
    if isinstance(value, pa.Array):
        return value.take(pa.array(rows))
    return value.take_rows(rows)
