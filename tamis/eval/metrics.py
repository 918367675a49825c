"""Evaluation metrics as plain functions over strings and numbers.

Token-level text overlap (extraction quality) follows the
article-extraction-benchmark's tokenization: tokens are the `\\w+` runs of the
lowercased text (Unicode-aware, so it works for any script with word
characters), compared as multisets. For one page, tp is the size of the
multiset intersection of truth and prediction tokens, fp = |pred| - tp,
fn = |truth| - tp. A set's score is the mean over pages of the per-page
precision, recall and F1 (each page weighs the same whatever its length).
"""

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_TOKEN = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lowercased `\\w+` tokens."""
    return _TOKEN.findall(text.lower())


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float


def token_prf(truth: str, pred: str) -> PRF:
    """Precision, recall and F1 of `pred`'s tokens against `truth`'s (multiset overlap).

    Both empty: a perfect 1.0 (nothing to find, nothing invented). Only one empty: 0.0 F1.
    """
    t, p = Counter(tokens(truth)), Counter(tokens(pred))
    n_t, n_p = sum(t.values()), sum(p.values())
    if n_t == 0 and n_p == 0:
        return PRF(1.0, 1.0, 1.0)
    tp = sum((t & p).values())
    precision = tp / n_p if n_p else 0.0
    recall = tp / n_t if n_t else 0.0
    f1 = 2 * tp / (n_t + n_p)
    return PRF(precision, recall, f1)


def mean_prf(scores: Iterable[PRF]) -> PRF:
    """Macro average over pages; an empty iterable is an error (a score of nothing means nothing)."""
    scores = list(scores)
    if not scores:
        raise ValueError("mean_prf needs at least one score")
    n = len(scores)
    return PRF(
        sum(s.precision for s in scores) / n,
        sum(s.recall for s in scores) / n,
        sum(s.f1 for s in scores) / n,
    )


def ranking(
    run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]], k_ndcg: int = 10, k_recall: int = 100
) -> dict[str, float]:
    """Mean nDCG@k_ndcg and recall@k_recall over the judged queries of `qrels`, by pytrec_eval (trec_eval's code).

    `run` maps a query id to {document id: score}. Ties are ordered as
    trec_eval orders them (by document id), so figures equal trec_eval's. A
    judged query missing from `run` (or with no hits) counts 0.
    """
    import pytrec_eval

    measures = {f"ndcg_cut.{k_ndcg}", f"recall.{k_recall}"}
    judged = {q: r for q, r in qrels.items() if q in run}
    per_query = pytrec_eval.RelevanceEvaluator(judged, measures).evaluate(
        {q: {d: float(s) for d, s in hits.items()} for q, hits in run.items() if q in judged and hits}
    )
    n = len(qrels)
    return {
        f"ndcg@{k_ndcg}": sum(v[f"ndcg_cut_{k_ndcg}"] for v in per_query.values()) / n if n else 0.0,
        f"recall@{k_recall}": sum(v[f"recall_{k_recall}"] for v in per_query.values()) / n if n else 0.0,
    }
