"""The component contract: a scorer maps a batch to score columns; a filter adds a keep rule.

Components are small pydantic models (tamis.validation.Params) whose constructor
only stores and checks keyword parameters (as in scikit-learn), so a config can build them, a manifest can record them
and a test suite can check all of them the same way. Each has a stable,
versioned name (`gopher_quality@1`) recorded in manifests.
"""

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from tamis.filters.text import DocView
from tamis.validation import Params


class Scorer(Params, ABC):
    """Adds columns named `<name>.<field>`; pure: same batch in, same columns out."""

    name: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def key(cls) -> str:
        return f"{cls.name}@{cls.version}"

    def params(self) -> dict[str, Any]:
        return self.model_dump()

    def col(self, field: str) -> str:
        return f"{self.name}.{field}"

    @abstractmethod
    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        """Return score columns, each an array of len(docs)."""


class Filter(Scorer):
    """A scorer plus a rule; the rule decides from the score columns alone."""

    @abstractmethod
    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Return (keep mask of bool, reason array of str; "" where kept)."""

    @property
    def run_wide(self) -> bool:
        """True when the rule needs a statistic of the whole run (a top fraction): a chain then only
        scores, and the pipeline applies the rule after a pass over every batch."""
        return False

    def apply(self, docs: DocView) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        scores = self.score(docs)
        keep, reason = self.rule(scores)
        return scores, keep, reason


def first_reason(n: int, checks: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Combine named failure masks: a document is dropped for the first check it fails."""
    reason = np.full(n, "", dtype=object)
    for name, failed in checks:
        reason[(reason == "") & failed] = name
    return reason == "", reason
