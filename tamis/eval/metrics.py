"""Evaluation metrics as plain functions over strings and numbers.

Token-level text overlap (extraction quality) follows the
article-extraction-benchmark's tokenization: tokens are the `\\w+` runs of the
lowercased text (Unicode-aware, so it works for any script with word
characters), compared as multisets. For one page, tp is the size of the
multiset intersection of truth and prediction tokens, fp = |pred| - tp,
fn = |truth| - tp. A set's score is the mean over pages of the per-page
precision, recall and F1 (each page weighs the same whatever its length).
"""

import math
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


# Ranking metrics, computed as pytrec_eval / trec_eval do: gain = the judged relevance (unjudged and rel <= 0 count 0),
# discount log2(rank + 1), the ideal DCG from the query's judgments. `ranked` is one query's ids, best first.


def ndcg_at_k(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    """nDCG@k of one ranking (trec_eval's ndcg_cut_k); 0.0 for a query with no relevant document."""
    dcg = sum(max(qrels.get(d, 0), 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((r for r in qrels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: list[str], qrels: dict[str, int], k: int) -> float:
    """Share of the query's relevant documents found in the top k (trec_eval's recall_k)."""
    relevant = {d for d, r in qrels.items() if r > 0}
    return len(relevant.intersection(ranked[:k])) / len(relevant) if relevant else 0.0
