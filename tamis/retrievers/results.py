"""Search results as plain records (id, score and, when the index keeps text, a snippet), for people and JSON.

Every retriever kind gives the same records, so `tamis search` (and anything
else that shows results) prints any index the registry opens.
"""

import re
from collections.abc import Sequence
from typing import Any

from tamis.retrievers.base import Retriever, TextStore

SNIPPET_CHARS = 160
_WORD = re.compile(r"\w{3,}")
_SPACE = re.compile(r"\s+")


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` (whitespace collapsed) around the first query word it contains."""
    flat = _SPACE.sub(" ", text).strip()
    if len(flat) <= width:
        return flat
    lower = flat.lower()
    # a query word's first few letters also find its other forms ("changes" for "changing")
    stems = {w[: max(4, len(w) - 3)] for w in _WORD.findall(query.lower())}
    found = [m.start() for s in stems if (m := re.search(rf"\b{re.escape(s)}", lower))]
    start = max(0, min(found) - width // 3) if found else 0
    start = min(start, len(flat) - width)
    if start > 0 and (space := flat.find(" ", start, start + 20)) >= 0:
        start = space + 1  # begin at a word
    cut = flat[start : start + width]
    return ("…" if start > 0 else "") + cut + ("…" if start + width < len(flat) else "")


def search_results(retriever: Retriever, queries: Sequence[str], k: int) -> tuple[list[list[dict[str, Any]]], bool]:
    """Per query, its hits as {id, score[, snippet]}, best first; and whether the index keeps text for snippets."""
    ids, scores = retriever.search(list(queries), k=k)
    texts = None
    if isinstance(retriever, TextStore):
        texts = retriever.texts([d for row in ids for d in row])
    out, at = [], 0
    for query, row, row_scores in zip(queries, ids, scores, strict=True):
        hits = []
        for doc, score in zip(row, row_scores.tolist(), strict=True):
            hit: dict[str, Any] = {"id": doc, "score": score}
            if texts is not None and texts[at] is not None:
                hit["snippet"] = snippet(texts[at], query)
            hits.append(hit)
            at += 1
        out.append(hits)
    return out, texts is not None
