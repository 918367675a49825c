"""TF-IDF + logistic regression quality classifiers: tuned by cross-validation, saved without pickle, loaded verified.

The classic baseline for a few hundred labeled documents, and a strong one:
scikit-learn's TfidfVectorizer and LogisticRegression, with the vectorizer's
settings (word or character n-grams, sublinear tf, min_df) and the inverse
regularization C chosen by stratified K-fold CV on the training labels (mean
of the folds' ROC AUC over `GRID`), then refit on all of them.

A model is a folder: `vocabulary.json` (the terms, in column order),
`weights.npz` (idf, coefficients, intercept; read with allow_pickle=False)
and `manifest.json` written last with every file's sha256, the parameters
and the CV that chose them. Scoring rebuilds the features from the saved
vocabulary with a CountVectorizer (same analyzer, so the same terms), then
tf → 1 + log(tf) when sublinear → × idf → L2 norm → sigmoid(x·w + b): exactly
scikit-learn's pipeline, which a test checks.
"""

import itertools
import json
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict

from tamis.errors import ConfigError, InputError
from tamis.io import atomic
from tamis.io.manifest import read_manifest, write_manifest
from tamis.validation import Params

KIND = "tfidf_lr_classifier"
FORMAT_VERSION = 1
MAX_CHARS = 100_000  # a document's head, as for fastText: bounds the cost of a 10 MB document
VOCABULARY, WEIGHTS = "vocabulary.json", "weights.npz"
POSITIVE_LABEL, NEGATIVE_LABEL = "hq", "lq"  # as fastText models name them


class TfidfParams(Params):
    """One point of the grid: the vectorizer's settings and LogisticRegression's C (hashable: grid results key on it)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    analyzer: Literal["word", "char_wb"] = "word"
    ngram_min: int = 1
    ngram_max: int = 2
    sublinear_tf: bool = True
    min_df: int = 2
    c: float = 1.0

    def check(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ConfigError(f"TF-IDF needs 1 <= ngram_min <= ngram_max. Got {self.ngram_min}, {self.ngram_max}.")
        if self.min_df < 1:
            raise ConfigError(f"The 'min_df' parameter of TF-IDF must be >= 1. Got {self.min_df} instead.")
        if self.c <= 0:
            raise ConfigError(f"The 'c' parameter of TF-IDF + LR must be > 0. Got {self.c} instead.")

    def vectorizer_args(self) -> dict[str, Any]:
        return {"analyzer": self.analyzer, "ngram_range": (self.ngram_min, self.ngram_max), "lowercase": True}


def _grid() -> list[TfidfParams]:
    shapes = [("word", 1, 1), ("word", 1, 2), ("char_wb", 2, 5)]
    cs = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    return [
        TfidfParams(analyzer=a, ngram_min=lo, ngram_max=hi, sublinear_tf=s, min_df=m, c=c)
        for (a, lo, hi), s, m, c in itertools.product(shapes, (True, False), (1, 2), cs)
    ]


GRID = _grid()  # 84 points: word 1-grams, 1–2-grams or char_wb 2–5-grams × sublinear tf × min_df 1/2 × 7 values of C
CV_FOLDS = 5


def _heads(texts: Iterable[str]) -> list[str]:
    return [t[:MAX_CHARS] for t in texts]


class TfidfClassifier:
    """A fitted or loaded model; `proba` gives P(high quality) per text."""

    def __init__(self, params: TfidfParams, vocabulary: list[str], idf, coef, intercept: float, manifest=None):
        from sklearn.feature_extraction.text import CountVectorizer

        self.params, self.vocabulary = params, vocabulary
        self.idf, self.coef, self.intercept = np.asarray(idf), np.asarray(coef), float(intercept)
        self.manifest = manifest or {}
        self._counts = CountVectorizer(**params.vectorizer_args(), vocabulary={t: i for i, t in enumerate(vocabulary)})

    @property
    def sha256(self) -> str:
        """The manifest's own checksum, which covers every file's sha256: it pins the model's bytes."""
        return self.manifest.get("manifest_sha256", "")

    def features(self, texts: Iterable[str]):
        return _weigh(self._counts.transform(_heads(texts)), self.idf, self.params.sublinear_tf)

    def proba(self, texts: Iterable[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros(0, dtype=np.float32)
        z = self.features(texts) @ self.coef + self.intercept
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)


def fit(texts: Sequence[str], labels: np.ndarray, params: TfidfParams) -> TfidfClassifier:
    """TfidfVectorizer + LogisticRegression(C) on the texts, as a TfidfClassifier."""
    vec, lr = _fit_sklearn(_heads(texts), np.asarray(labels), params)
    vocabulary = [None] * len(vec.vocabulary_)
    for term, i in vec.vocabulary_.items():
        vocabulary[i] = term
    return TfidfClassifier(params, vocabulary, vec.idf_, lr.coef_[0], lr.intercept_[0])


def _fit_sklearn(texts: list[str], labels: np.ndarray, params: TfidfParams, x=None):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(**params.vectorizer_args(), sublinear_tf=params.sublinear_tf, min_df=params.min_df)
    x = vec.fit_transform(texts) if x is None else x
    return vec, LogisticRegression(C=params.c, max_iter=2000).fit(x, labels)


def grid_predictions(
    texts: Sequence[str], labels: np.ndarray, folds: list, grid: Sequence[TfidfParams] = GRID
) -> dict[TfidfParams, np.ndarray]:
    """Out-of-fold P(hq) over `texts` for every grid point, as if each fold's vectorizer were fit on its training part.

    Tokenizing is the slow part and does not depend on the fold, so each n-gram shape counts
    terms once over all texts; per fold, the vocabulary (training df >= min_df), the idf
    (from the training rows, smoothed as scikit-learn does), sublinear tf and the L2 norm
    are applied to those counts: the same features TfidfVectorizer.fit on the training part gives.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels = _heads(texts), np.asarray(labels)
    out = {p: np.zeros(len(texts)) for p in grid}
    shapes: dict[tuple, list[TfidfParams]] = {}
    for p in grid:
        shapes.setdefault((p.analyzer, p.ngram_min, p.ngram_max), []).append(p)
    for group in shapes.values():
        counts = CountVectorizer(**group[0].vectorizer_args()).fit_transform(texts).astype(np.float64).tocsr()
        for train, test in folds:
            df = np.asarray((counts[train] > 0).sum(axis=0)).ravel()
            variants: dict[tuple, list[TfidfParams]] = {}
            for p in group:
                variants.setdefault((p.sublinear_tf, p.min_df), []).append(p)
            for (sublinear, min_df), points in variants.items():
                cols = np.flatnonzero(df >= min_df)
                idf = np.log((1 + len(train)) / (1 + df[cols])) + 1
                x = _weigh(counts[:, cols].tocsr(), idf, sublinear)
                for p in points:
                    lr = LogisticRegression(C=p.c, max_iter=2000).fit(x[train], labels[train])
                    out[p][test] = lr.predict_proba(x[test])[:, 1]
    return out


def _weigh(counts, idf: np.ndarray, sublinear: bool):
    """Raw term counts → tf-idf rows with unit L2 norm (scikit-learn's TfidfTransformer)."""
    x = counts.astype(np.float64, copy=True).tocsr()
    if sublinear:
        np.log(x.data, out=x.data)
        x.data += 1.0
    x = x.multiply(idf[None, :]).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return x.multiply(1.0 / norms[:, None]).tocsr()


def choose(texts: Sequence[str], labels: np.ndarray, folds: int = CV_FOLDS, seed: int = 0) -> dict[str, Any]:
    """The grid point with the best mean fold AUC under stratified K-fold CV, and every point's score."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    labels = np.asarray(labels)
    if min(np.bincount(labels, minlength=2)) < folds:
        raise InputError(f"TF-IDF + LR needs at least {folds} documents of each label to choose its settings by CV")
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels))
    preds = grid_predictions(texts, labels, splits, GRID)
    scores = {p: float(np.mean([roc_auc_score(labels[te], v[te]) for _, te in splits])) for p, v in preds.items()}
    best = max(GRID, key=lambda p: scores[p])  # the first best in grid order
    return {
        "params": best,
        "cv": {"folds": folds, "seed": seed, "metric": "mean fold ROC AUC", "best_auc": round(scores[best], 4)},
        "grid_size": len(GRID),
    }


def save(clf: TfidfClassifier, out: str, body: dict[str, Any]) -> dict[str, Any]:
    """Write the model folder; the manifest goes last."""
    if atomic.exists(atomic.join(out, "manifest.json")):
        os.remove(atomic.join(out, "manifest.json"))  # the old manifest must not vouch for the new files
    atomic.makedirs(out)
    atomic.write_bytes(atomic.join(out, VOCABULARY), json.dumps(clf.vocabulary, ensure_ascii=False).encode())
    with atomic.atomic_write(atomic.join(out, WEIGHTS)) as f:
        np.savez(f, idf=clf.idf, coef=clf.coef, intercept=np.array([clf.intercept]))
    return write_manifest(out, KIND, FORMAT_VERSION, {"params": clf.params.model_dump(), **body}, [VOCABULARY, WEIGHTS])


def load(path: str) -> TfidfClassifier:
    """A model folder, verified against its manifest (IntegrityError on any changed byte)."""
    manifest = read_manifest(path, KIND, FORMAT_VERSION)
    with atomic.open_read(atomic.join(path, VOCABULARY)) as f:
        vocabulary = json.loads(f.read())
    with atomic.open_read(atomic.join(path, WEIGHTS)) as f:
        w = np.load(f, allow_pickle=False)
        idf, coef, intercept = w["idf"], w["coef"], float(w["intercept"][0])
    params = TfidfParams.model_validate(manifest["params"])
    return TfidfClassifier(params, vocabulary, idf, coef, intercept, manifest)


def train(
    texts: Sequence[str], labels: np.ndarray, out: str, sources: list[dict] | None = None, folds: int = CV_FOLDS
) -> dict[str, Any]:
    """Choose the grid point by CV, refit on all labels, write the model folder; return its manifest."""
    labels = np.asarray(labels)
    texts = list(texts)
    if len(set(labels.tolist())) < 2:
        raise InputError("training needs documents of two labels", hint="give non-empty positive and negative data")
    chosen = choose(texts, labels, folds)
    clf = fit(texts, labels, chosen["params"])
    body = {
        "labels": [POSITIVE_LABEL, NEGATIVE_LABEL],
        "examples": {POSITIVE_LABEL: int((labels == 1).sum()), NEGATIVE_LABEL: int((labels == 0).sum())},
        "vocabulary_size": len(clf.vocabulary),
        "chosen_by": {**chosen["cv"], "grid_size": chosen["grid_size"]},
        "max_chars": MAX_CHARS,
        "training_data": sources or [],
    }
    return save(clf, out, body)


def read_training_files(positive: list[str], negative: list[str], labeled: list[str]):
    """Raw texts, 0/1 labels and checksum entries of positive/negative document files and judged files."""
    from tamis.filters.fasttext_model import load_labeled, read_docs

    texts: list[str] = []
    labels: list[int] = []
    sources = []
    for paths, y, name in ((positive, 1, POSITIVE_LABEL), (negative, 0, NEGATIVE_LABEL)):
        for path in paths:
            _, docs, entry = read_docs(path)
            texts += docs
            labels += [y] * len(docs)
            sources.append({**entry, "label": name})
    for path in labeled:
        docs, ys = load_labeled(path)
        texts += docs
        labels += ys.tolist()
        sources.append(
            {"path": path, "documents": len(docs), "sha256": atomic.sha256_file(path), "label": "quality_label"}
        )
    return texts, np.array(labels, dtype=np.int64), sources


def train_from_files(
    positive: list[str], negative: list[str], labeled: list[str], out: str, folds: int = CV_FOLDS
) -> dict[str, Any]:
    """`train` on positive/negative document files and judged files (0/1 `quality_label`), as `tamis quality train`."""
    texts, labels, sources = read_training_files(positive, negative, labeled)
    return train(texts, labels, out, sources, folds)
