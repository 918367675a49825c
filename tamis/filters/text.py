"""Per-batch text views shared by every scorer, so text is split once per batch, not once per rule."""

import re
from collections.abc import Callable
from typing import Any

import pyarrow as pa

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]", re.UNICODE)


class DocView:
    """A document batch with lazily computed, cached derived data (words, lines, ...).

    Scorers call `cached(key, fn)` for anything another scorer may need too;
    the first caller computes it, the rest reuse it.
    """

    def __init__(self, batch: pa.RecordBatch):
        self.batch = batch
        self._cache: dict[str, Any] = {}

    def __len__(self) -> int:
        return self.batch.num_rows

    def cached(self, key: str, fn: Callable[["DocView"], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = fn(self)
        return self._cache[key]

    @property
    def texts(self) -> list[str]:
        return self.cached("texts", lambda d: d.batch.column("text").to_pylist())

    @property
    def ids(self) -> list[str]:
        return self.cached("ids", lambda d: d.batch.column("id").to_pylist())

    @property
    def lines(self) -> list[list[str]]:
        return self.cached("lines", lambda d: [t.split("\n") for t in d.texts])

    @property
    def tokens(self) -> list[list[str]]:
        """Words and punctuation marks, split by one Unicode regex."""
        return self.cached("tokens", lambda d: [_WORD.findall(t) for t in d.texts])
