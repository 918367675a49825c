"""What every retriever offers, so evaluation, the service and augmentation take any of them.

A retriever maps a batch of query strings to, per query, at most k document ids
and their scores, best first. A query that matches nothing gets empty lists.
"""

from typing import Protocol

import numpy as np

Hits = tuple[list[list[str]], list[np.ndarray]]


class Retriever(Protocol):
    def search(self, queries: list[str], k: int = 10) -> Hits:
        """Top-k ids and scores (descending) for each query."""
        ...
