"""`tamis eval quality`: ROC AUC and accuracy of a quality classifier against human labels.

A labeled set is JSONL with `text` and `quality_label` (1 = high quality, 0 =
low), as in `../shared/data/curation/quality/`. Accuracy counts a score >= 0.5
as a high-quality prediction (for the default ensemble, whose score is a
reference quantile, that means "above the reference median"); AUC needs no
threshold, so it is the number to compare.
"""





def drop_overlap(rows: list[dict], ids: set[str], texts: list[str]) -> tuple[list[dict], int]:
    """`rows` minus any whose id is in `ids` or whose normalized text equals one of `texts`, and how many went.

    Keeps an evaluation file unseen by whatever is trained for it: the same
    document can come back under another id, or the same id with other spacing.
    """
    from tamis.filters.fasttext_model import normalize

    seen = {normalize(t) for t in texts}
    kept = [r for r in rows if r.get("id") not in ids and normalize(r["text"]) not in seen]
    return kept, len(rows) - len(kept)


def evaluate(model: str, labeled: str, positive_label: str = "hq") -> dict:
    from sklearn.metrics import roc_auc_score

    from tamis.filters import classifiers, fasttext_model

    texts, labels = fasttext_model.load_labeled(labeled)
    clf = classifiers.load(model, positive_label)
    p = clf.proba(texts)
    return {
        "model": str(model),
        "model_sha256": clf.sha256,
        "labeled": str(labeled),
        "n": len(texts),
        "positives": int(labels.sum()),
        "auc": round(float(roc_auc_score(labels, p)), 4),
        "accuracy": round(float(((p >= 0.5) == (labels == 1)).mean()), 4),
    }
