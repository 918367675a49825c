"""tamis's default quality classifier: a rank average of TF-IDF + LR and fastText on pretrained vectors.

Chosen by nested cross-validation on the DCLM human labels (docs/quality.md):
the two models make different mistakes (character n-gram weights vs word
vectors learned from unlabeled web text), and averaging their ranks beat
TF-IDF + LR alone in every repeat.

Each member's settings are chosen by stratified K-fold CV on the training
labels (TF-IDF + LR: `tfidf_model.GRID`; fastText: the number of epochs),
then it is refit on all of them. A rank needs a reference: both members score
a hashed sample of the unlabeled documents, and a text's score is the mean of
its two scores' positions in those reference distributions (mid-rank CDF).
So the output is a quantile in [0, 1], not a probability: 0.5 is the
reference median on average. `top_fraction` cuts need nothing else; a
`threshold` reads as "above this quantile".

A model is a folder: `tfidf_lr/` (a TF-IDF + LR model folder), `fasttext.bin`
with its manifest, `reference.npz` (the members' sorted reference scores) and
`manifest.json` written last with the sha256 of every file.
"""

import hashlib
import os
import tempfile
from collections.abc import Iterable
from typing import Any

import numpy as np

from tamis.errors import ConfigError, InputError
from tamis.filters import fasttext_model as fm
from tamis.filters import tfidf_model
from tamis.io import atomic
from tamis.io.manifest import read_manifest, write_manifest

KIND = "quality_ensemble"
FORMAT_VERSION = 1
TFIDF_DIR, FASTTEXT, REFERENCE = "tfidf_lr", "fasttext.bin", "reference.npz"
EPOCHS = (5, 10, 20)  # fastText passes tried by CV (lr 0.5 from pretrained vectors)
REFERENCE_DOCS = 4000  # unlabeled documents whose scores place a new score


def member_params(**overrides: Any) -> fm.FastTextParams:
    """The fastText member's parameters: a few hundred labels, near balanced, from pretrained vectors."""
    return fm.FastTextParams(**{"lr": 0.5, "balance": False, **overrides})


def cdf(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Mid-rank position of each score among the sorted reference scores, in [0, 1]."""
    left = np.searchsorted(reference, scores, side="left")
    right = np.searchsorted(reference, scores, side="right")
    return (left + right) / (2.0 * len(reference))


class EnsembleClassifier:
    def __init__(self, tfidf, fasttext, references: dict[str, np.ndarray], manifest: dict[str, Any]):
        self.tfidf, self.fasttext, self.references, self.manifest = tfidf, fasttext, references, manifest

    @property
    def sha256(self) -> str:
        return self.manifest["manifest_sha256"]

    def member_scores(self, texts: Iterable[str]) -> dict[str, np.ndarray]:
        texts = list(texts)
        return {"tfidf_lr": self.tfidf.proba(texts), "fasttext": self.fasttext.proba(texts)}

    def proba(self, texts: Iterable[str]) -> np.ndarray:
        """The mean of the members' reference quantiles (a rank score in [0, 1])."""
        scores = self.member_scores(texts)
        ranks = [cdf(self.references[name], p) for name, p in scores.items()]
        return np.mean(ranks, axis=0).astype(np.float32)


def _key(i: int, text: str) -> str:
    return f"{i}:{_hash(text).hex()}"


def choose_epochs(examples: list[fm.LabeledText], labels: np.ndarray, params, vectors, epochs, folds: int, seed: int):
    """The fastText epoch count with the best mean fold ROC AUC, and every count's score."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    if len(epochs) == 1:
        return epochs[0], {}
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels))
    scores = {}
    with tempfile.TemporaryDirectory() as tmp:
        for e in epochs:
            aucs = []
            for train, test in splits:
                out = os.path.join(tmp, f"cv-{e}.bin")
                fm.train([examples[i] for i in train], out, params.model_copy(update={"epoch": e}), vectors=vectors)
                p = fm.load(out).proba([examples[i].text for i in test])
                aucs.append(roc_auc_score(labels[test], p))
            scores[e] = float(np.mean(aucs))
    return max(epochs, key=lambda e: scores[e]), scores


def reference_sample(paths: list[str], n: int, seed: int) -> list[str]:
    """Texts of the n unlabeled documents with the smallest hash of (seed, id), wherever the files lie."""
    keyed = []
    for path in paths:
        ids, texts, _ = fm.read_docs(path)
        keyed += [(_hash(f"{seed}\x00{i}"), t) for i, t in zip(ids, texts, strict=True)]
    return [t for _, t in sorted(keyed, key=lambda kt: kt[0])[:n]]


def _hash(key: str) -> bytes:
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=8).digest()


def train(
    texts: list[str],
    labels: np.ndarray,
    unlabeled: list[str],
    out: str,
    sources: list[dict] | None = None,
    params: fm.FastTextParams | None = None,
    epochs: tuple[int, ...] = EPOCHS,
    folds: int = tfidf_model.CV_FOLDS,
    seed: int = 0,
    vectors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Both members chosen by CV and refit, the reference scores, the manifest last; return the manifest.

    `vectors` (from `fasttext_model.pretrain_vectors` on `unlabeled`) skips pretraining them again.
    """
    if not unlabeled:
        raise ConfigError(
            "the ensemble needs --unlabeled documents: fastText's vectors are pretrained on them and "
            "both members' scores are ranked against them",
            hint="give --unlabeled files of documents like those to be scored, or --kind tfidf_lr",
        )
    labels = np.asarray(labels)
    if len(set(labels.tolist())) < 2:
        raise InputError("training needs documents of two labels", hint="give non-empty positive and negative data")
    params = params or member_params()
    atomic.makedirs(out)
    if os.path.exists(os.path.join(out, "manifest.json")):
        os.remove(os.path.join(out, "manifest.json"))  # the old manifest must not vouch for new members
    tfidf_manifest = tfidf_model.train(texts, labels, os.path.join(out, TFIDF_DIR), sources, folds)
    examples = [
        fm.LabeledText(_key(i, t), fm.normalize(t), fm.POSITIVE if y else fm.NEGATIVE)
        for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        vectors = vectors or fm.pretrain_vectors(unlabeled, os.path.join(tmp, "vectors.vec"), params)
        keep = [i for i, ex in enumerate(examples) if ex.text]
        epoch, cv_scores = choose_epochs(
            [examples[i] for i in keep], labels[keep], params, vectors, epochs, folds, seed
        )
        ft_params = params.model_copy(update={"epoch": epoch})
        method = {
            "labels": "given by the training files",
            "epoch_cv": {str(e): round(s, 4) for e, s in cv_scores.items()},
        }
        fm.train(examples, os.path.join(out, FASTTEXT), ft_params, sources, method, vectors=vectors)
    tfidf = tfidf_model.load(os.path.join(out, TFIDF_DIR))
    fasttext = fm.load(os.path.join(out, FASTTEXT))
    ref_texts = reference_sample(unlabeled, REFERENCE_DOCS, seed)
    refs = {"tfidf_lr": np.sort(tfidf.proba(ref_texts)), "fasttext": np.sort(fasttext.proba(ref_texts))}
    with atomic.atomic_write(os.path.join(out, REFERENCE)) as f:
        np.savez(f, **refs)
    files = [os.path.join(TFIDF_DIR, f) for f in ("manifest.json", tfidf_model.VOCABULARY, tfidf_model.WEIGHTS)]
    files += [FASTTEXT, os.path.basename(fm.manifest_path(FASTTEXT)), REFERENCE]
    body = {
        "labels": [fm.POSITIVE, fm.NEGATIVE],
        "examples": tfidf_manifest["examples"],
        "members": {
            "tfidf_lr": {
                "path": TFIDF_DIR,
                "params": tfidf_manifest["params"],
                "chosen_by": tfidf_manifest["chosen_by"],
            },
            "fasttext": {"path": FASTTEXT, "params": ft_params.model_dump(), "epoch_cv": method["epoch_cv"]},
        },
        "combine": "mean of each member's mid-rank CDF position among its reference scores",
        "reference": {"documents": len(ref_texts), "sample": f"smallest hash of (seed {seed}, path, id)"},
        "training_data": sources or [],
    }
    return write_manifest(out, KIND, FORMAT_VERSION, body, files)


def train_from_files(
    positive: list[str],
    negative: list[str],
    labeled: list[str],
    unlabeled: list[str],
    out: str,
    params: fm.FastTextParams | None = None,
    epochs: tuple[int, ...] = EPOCHS,
) -> dict[str, Any]:
    texts, labels, sources = tfidf_model.read_training_files(positive, negative, labeled)
    return train(texts, labels, unlabeled, out, sources, params, epochs)


def load(path: str) -> EnsembleClassifier:
    """An ensemble folder, every file verified against the manifest, and its members loaded verified."""
    manifest = read_manifest(path, KIND, FORMAT_VERSION)
    tfidf = tfidf_model.load(os.path.join(path, TFIDF_DIR))
    fasttext = fm.load(os.path.join(path, FASTTEXT))
    with atomic.open_read(os.path.join(path, REFERENCE)) as f:
        z = np.load(f, allow_pickle=False)
        refs = {name: z[name] for name in ("tfidf_lr", "fasttext")}
    return EnsembleClassifier(tfidf, fasttext, refs, manifest)
