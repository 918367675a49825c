"""The `quality` filter: P(high quality) from one or more quality classifiers, kept by threshold or top fraction.

Adds `quality.<name>` for every configured model: a TF-IDF + LR model folder
or a fastText model file (`tamis.filters.classifiers.load`). The keep rule reads one of
them (`keep_by`, or the only model): `threshold` keeps documents scoring at
least that; `top_fraction` keeps the best fraction of the whole run, which no
single batch can decide, so the cutoff is computed over all scores first
(`tamis.pipelines.quality_cut.TopFractionCut`, from a fixed histogram that
combines across workers) and handed to the rule as `cutoff`.
"""

import math
from typing import Any

import numpy as np
from pydantic import PrivateAttr

from tamis.errors import ConfigError, IntegrityError
from tamis.filters import classifiers as models_io
from tamis.filters import fasttext_model
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.text import DocView

BINS = 1 << 16  # histogram resolution of the run-wide cutoff: 1.5e-5 in probability


def histogram(probs: np.ndarray) -> np.ndarray:
    """Counts of probabilities in BINS equal bins over [0, 1]; histograms of shards add up."""
    idx = np.minimum((np.asarray(probs, dtype=np.float64) * BINS).astype(np.int64), BINS - 1)
    return np.bincount(np.clip(idx, 0, BINS - 1), minlength=BINS).astype(np.int64)


def cutoff_for_fraction(hist: np.ndarray, fraction: float) -> float:
    """Lowest bin edge that keeps at least `fraction` of the documents (ties in a bin are all kept)."""
    total = int(hist.sum())
    if total == 0:
        return 1.0
    want = max(1, math.ceil(fraction * total))
    from_top = np.cumsum(hist[::-1])
    top_bins = int(np.searchsorted(from_top, want)) + 1  # bins needed, counted from the top
    return (BINS - min(top_bins, BINS)) / BINS


@register
class Quality(Filter):
    name = "quality"
    models: dict[str, str]
    positive_label: str = fasttext_model.POSITIVE
    keep_by: str | None = None
    threshold: float | None = None
    top_fraction: float | None = None
    cutoff: float | None = None  # run-wide cutoff for top_fraction; set by the pipeline, not by users
    model_sha256: dict[str, str] | None = None  # pins model bytes; params() fills it in for run manifests
    _classifiers: dict[str, models_io.QualityClassifier] = PrivateAttr(default_factory=dict)

    def check(self) -> None:
        if not self.models:
            raise ConfigError(
                "The 'models' parameter of quality must name at least one model.", hint="models: {dclm: model.bin}"
            )
        if self.threshold is not None and self.top_fraction is not None:
            raise ConfigError("quality takes 'threshold' or 'top_fraction', not both.")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"The 'threshold' parameter of quality must be in [0, 1]. Got {self.threshold} instead.")
        if self.top_fraction is not None and not 0.0 < self.top_fraction <= 1.0:
            raise ConfigError(
                f"The 'top_fraction' parameter of quality must be in (0, 1]. Got {self.top_fraction} instead."
            )
        if self.keep_by is not None and self.keep_by not in self.models:
            raise ConfigError(
                f"The 'keep_by' parameter of quality must be one of {sorted(self.models)}. Got {self.keep_by!r} instead."
            )
        if (
            self.keep_by is None
            and len(self.models) > 1
            and (self.threshold is not None or self.top_fraction is not None)
        ):
            raise ConfigError("quality with several models needs 'keep_by' to say which one the rule reads.")
        self._classifiers = {n: models_io.load(p, self.positive_label) for n, p in self.models.items()}
        for n, want in (self.model_sha256 or {}).items():
            got = self._classifiers[n].sha256 if n in self._classifiers else None
            if got != want:
                raise IntegrityError(
                    f"quality model {n!r} has sha256 {got}, but the config pins {want}",
                    hint="point 'models' at the pinned model, or drop 'model_sha256' to accept this one",
                )

    def params(self) -> dict[str, Any]:
        return {
            "models": self.models,
            "model_sha256": {n: c.sha256 for n, c in self.classifiers.items()},
            "positive_label": self.positive_label,
            "keep_by": self.keep_by,
            "threshold": self.threshold,
            "top_fraction": self.top_fraction,
            "cutoff": self.cutoff,
        }

    @property
    def classifiers(self) -> dict[str, models_io.QualityClassifier]:
        if not self._classifiers:
            self.check()
        return self._classifiers

    @property
    def run_wide(self) -> bool:
        return self.top_fraction is not None

    @property
    def rule_column(self) -> str:
        return self.col(self.keep_by or next(iter(self.models)))

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        return {self.col(n): c.proba(docs.texts) for n, c in self.classifiers.items()}

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        p = scores[self.rule_column]
        if self.top_fraction is not None:
            if self.cutoff is None:
                raise ConfigError(
                    "quality with 'top_fraction' needs the cutoff computed over the whole run",
                    hint="apply it with tamis.pipelines.quality_cut.TopFractionCut, or use 'threshold'",
                )
            return first_reason(len(p), [(f"{self.rule_column}<top_{self.top_fraction:g}", p < self.cutoff)])
        if self.threshold is None:
            return first_reason(len(p), [])
        return first_reason(len(p), [(f"{self.rule_column}<{self.threshold:g}", p < self.threshold)])
