"""The `dsir` scorer: log importance weight of each document under a fitted DSIR model (tamis.mixers.dsir)."""

from typing import Any

import numpy as np
from pydantic import PrivateAttr

from tamis.filters.base import Scorer
from tamis.filters.registry import register
from tamis.filters.text import DocView
from tamis.mixers.dsir import DSIRModel


@register
class DSIRWeight(Scorer):
    """Adds `dsir.log_weight` (one target) or `dsir.log_weight_<t>` (separate targets) and `dsir.length`.

    `dsir.length` is the reference's token length; selection skips documents
    shorter than the model's `min_example_length`. The model loads (and its
    checksums are verified) when the scorer is built, so a missing artifact
    fails before any work with ResourceError.
    """

    name = "dsir"
    artifact: str
    _model: DSIRModel | None = PrivateAttr(None)

    def check(self) -> None:
        self._model = DSIRModel.load(self.artifact)

    def params(self) -> dict[str, Any]:
        return {"artifact": self.artifact}

    @property
    def model(self) -> DSIRModel:
        if self._model is None:
            self.check()
        return self._model

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        weights, lengths = self.model.weigh(docs.texts)
        cols = {self.col("length"): lengths}
        if weights.shape[1] == 1:
            cols[self.col("log_weight")] = weights[:, 0]
        else:
            cols.update({self.col(f"log_weight_{t}"): weights[:, t] for t in range(weights.shape[1])})
        return cols
