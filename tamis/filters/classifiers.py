"""Load any quality classifier tamis trains, by what its artifact says it is.

A fastText model is a `.bin` file with `<model>.bin.manifest.json` beside it;
a TF-IDF + LR model and the default ensemble are folders with a
`manifest.json` whose kind says which. All load verified (a changed byte is an IntegrityError) and give P(high
quality) per text through `proba`, and `sha256` to pin the exact bytes.
"""

import json
import os
from typing import Protocol

import numpy as np

from tamis.errors import ConfigError, IntegrityError
from tamis.filters import ensemble_model, fasttext_model, tfidf_model


class QualityClassifier(Protocol):
    manifest: dict
    sha256: str

    def proba(self, texts) -> np.ndarray: ...


def load(path: str, positive: str = fasttext_model.POSITIVE) -> QualityClassifier:
    """The classifier at `path`: a model folder (TF-IDF + LR or ensemble), else a fastText model file."""
    if not os.path.isdir(path):
        return fasttext_model.load(path, positive)
    loaders = {tfidf_model.KIND: tfidf_model.load, ensemble_model.KIND: ensemble_model.load}
    kind = _kind(path)
    if kind not in loaders:
        raise IntegrityError(
            f"{path} holds a {kind!r}, not a quality classifier", hint="train one with `tamis quality train`"
        )
    if positive != fasttext_model.POSITIVE:
        raise ConfigError(
            f"{path} is a {kind}, whose positive label is {fasttext_model.POSITIVE!r}; got {positive!r}",
            hint=f"drop positive_label or set it to {fasttext_model.POSITIVE!r}",
        )
    return loaders[kind](path)


def _kind(path: str) -> str | None:
    """The kind a model folder's manifest names (its checksums are verified by the loader)."""
    try:
        with open(os.path.join(path, "manifest.json"), "rb") as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise IntegrityError(f"{path} has no manifest.json: it is not a finished model", hint="retrain it") from None
    except ValueError as e:
        raise IntegrityError(f"{path}/manifest.json is not valid JSON ({e})") from e
    return manifest.get("kind") if isinstance(manifest, dict) else None
