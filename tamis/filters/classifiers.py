"""Load any quality classifier tamis trains, by what its artifact says it is.

A fastText model is a `.bin` file with `<model>.bin.manifest.json` beside it;
a TF-IDF + LR model is a folder with a `manifest.json` whose kind says so.
Both load verified (a changed byte is an IntegrityError) and give P(high
quality) per text through `proba`, and `sha256` to pin the exact bytes.
"""

import os
from typing import Protocol

import numpy as np

from tamis.errors import ConfigError
from tamis.filters import fasttext_model, tfidf_model


class QualityClassifier(Protocol):
    manifest: dict
    sha256: str

    def proba(self, texts) -> np.ndarray: ...


def load(path: str, positive: str = fasttext_model.POSITIVE) -> QualityClassifier:
    """The classifier at `path`: a TF-IDF + LR model folder, else a fastText model file."""
    if os.path.isdir(path):
        if positive != fasttext_model.POSITIVE:
            raise ConfigError(
                f"{path} is a TF-IDF + LR model, whose positive label is {fasttext_model.POSITIVE!r}; got {positive!r}",
                hint=f"drop positive_label or set it to {fasttext_model.POSITIVE!r}",
            )
        return tfidf_model.load(path)
    return fasttext_model.load(path, positive)
