"""`tamis eval quality`: ROC AUC and accuracy of a quality classifier against human labels.

A labeled set is JSONL with `text` and `quality_label` (1 = high quality, 0 =
low), as in `../shared/data/curation/quality/`. Accuracy counts P >= 0.5 as a
high-quality prediction; AUC needs no threshold, so it is the fairer number
for a classifier trained on other data than the labels.
"""

import argparse
import json
from pathlib import Path

import numpy as np

from tamis.errors import InputError
from tamis.io.side_files import jsonl_rows

HELP = "ROC AUC and accuracy of a fastText quality model on documents with a quality_label"


def load_labeled(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels; a line without text or a 0/1 `quality_label` is an InputError."""
    hint = "each line needs a JSON object with 'text' and 'quality_label' (0 or 1)"
    texts, labels = [], []
    for n, row in jsonl_rows(path, "Labeled file ", hint):
        try:
            text, label = row["text"], row["quality_label"]
        except KeyError as e:
            raise InputError(f"{path}:{n}: not a labeled document (KeyError: {e})", hint=hint) from e
        if not isinstance(text, str) or label not in (0, 1) or isinstance(label, bool):
            raise InputError(f"{path}:{n}: 'text' must be a string and 'quality_label' 0 or 1; got {label!r}")
        texts.append(text)
        labels.append(label)
    if not texts or len(set(labels)) < 2:
        raise InputError(f"{path} needs documents of both labels (0 and 1) to measure AUC")
    return texts, np.array(labels, dtype=np.int64)


def drop_overlap(rows: list[dict], ids: set[str], texts: list[str]) -> tuple[list[dict], int]:
    """`rows` minus any whose id is in `ids` or whose normalized text equals one of `texts`, and how many went.

    Keeps an evaluation file unseen by whatever is trained for it: the same
    document can come back under another id, or the same id with other spacing.
    """
    from tamis.filters.fasttext_model import normalize

    seen = {normalize(t) for t in texts}
    kept = [r for r in rows if r.get("id") not in ids and normalize(r["text"]) not in seen]
    return kept, len(rows) - len(kept)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    from scipy.stats import rankdata

    labels = np.asarray(labels)
    ranks = rankdata(scores)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def evaluate(model: str, labeled: str, positive_label: str = "hq") -> dict:
    from tamis.filters import fasttext_model

    texts, labels = load_labeled(labeled)
    clf = fasttext_model.load(model, positive_label)
    p = clf.proba(texts)
    return {
        "model": str(model),
        "model_sha256": clf.manifest["model"]["sha256"],
        "labeled": str(labeled),
        "n": len(texts),
        "positives": int(labels.sum()),
        "auc": round(roc_auc(labels, p), 4),
        "accuracy": round(float(((p >= 0.5) == (labels == 1)).mean()), 4),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="fastText model written by `tamis quality train`")
    parser.add_argument("--labeled", required=True, help="JSONL with text and quality_label (0/1)")
    parser.add_argument("--positive-label", default="hq", help="the model's high-quality label (default hq)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.model, args.labeled, args.positive_label)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"n={result['n']} auc={result['auc']:.4f} accuracy={result['accuracy']:.4f}")
    return 0
