"""What every retriever offers, so evaluation, the service, augmentation and `tamis search` take any of them.

A retriever maps a batch of query strings to, per query, at most k document ids
and their scores, best first. A query that matches nothing gets empty lists.
A retriever whose index keeps document text also offers `texts` (TextStore).
"""

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

Hits = tuple[list[list[str]], list[np.ndarray]]


class Retriever(Protocol):
    def search(self, queries: list[str], k: int = 10) -> Hits:
        """Top-k ids and scores (descending) for each query."""
        ...


@runtime_checkable
class TextStore(Protocol):
    def texts(self, ids: Sequence[str]) -> list[str | None] | None:
        """The stored text of each id (None for an id the index lacks), or None when the index keeps no text."""
        ...
