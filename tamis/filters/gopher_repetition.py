"""Gopher repetition rules (Rae et al., 2021, table A1), vectorized over a batch.

A document is dropped when too much of it repeats: duplicate paragraphs or
lines (by count over 0.3, by characters over 0.2), the most frequent 2-, 3- or
4-gram covering over 0.20, 0.18 or 0.16 of the characters, or duplicated 5- to
10-grams covering over 0.15 down to 0.10. Definitions follow datatrove's
GopherRepetitionFilter, so the two agree document by document: paragraphs split
on `\\n\\n+` after stripping, lines on `\\n+`; a top n-gram counts its words
joined by spaces times its frequency (the first seen wins a tie); duplicated
n-grams are counted by a left-to-right walk that jumps past each repeat.

Every repeated n-gram gets an exact integer id per batch: token ids from one
hash dictionary, then each (n-1)-gram id paired with the next token id and
grouped again by a sort. Only positions
whose (n-1)-gram repeats are extended, and only the walk over repeated n-grams
is a Python loop; ordinary text has few.
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from tamis.errors import ConfigError
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.text import DocView
from tamis.filters.words import Segments, char_counts, pieces, split_pattern, text_array, word_lengths, words


def _encode(values: pa.Array) -> np.ndarray:
    """Dense ids of equal strings, in first-seen order."""
    return np.asarray(pc.dictionary_encode(values).indices, dtype=np.int64)


def _group(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dense ids of equal integer keys, with the argsort and where each group starts in it.

    One unstable argsort: several times faster than np.unique(return_index=True) or
    Arrow's hash dictionary on mostly distinct integers.
    """
    order = np.argsort(keys)
    ordered = keys[order]
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(keys) else np.zeros(0, dtype=bool)
    ids = np.empty(len(keys), dtype=np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids, order, np.flatnonzero(new)


def duplicates(segs: Segments) -> tuple[np.ndarray, np.ndarray]:
    """Per row: how many values repeat an earlier value of the row, and their characters."""
    n = len(segs.offsets) - 1
    ids = _encode(segs.values)
    grouped, order, starts = _group(segs.rows * (int(ids.max(initial=0)) + 1) + ids)
    repeat = np.ones(len(ids), dtype=bool)
    if len(ids):
        repeat[np.minimum.reduceat(order, starts)] = False  # the first of each group
    rows = segs.rows[repeat]
    return np.bincount(rows, minlength=n), np.bincount(rows, weights=segs.lengths()[repeat], minlength=n)


class NGrams:
    """Ids of the n-grams of a token batch that occur more than once in their document, for growing n.

    An n-gram repeats only where its (n-1)-gram prefix does, so each step extends only the
    positions that still repeat: most text has few repeated 5-grams.
    """

    def __init__(self, tokens: Segments, lengths: np.ndarray, start: int = 2):
        self.docs = len(tokens.offsets) - 1
        self.starts = tokens.offsets[:-1]
        self.counts = tokens.counts
        self.rows = tokens.rows
        self.token_ids = _encode(tokens.values)
        self.vocab = int(self.token_ids.max(initial=0)) + 1
        self.cum = np.r_[0, np.cumsum(lengths, dtype=np.int64)]
        rows, tok, vocab = self.rows, self.token_ids, self.vocab
        if start == 1 or self.docs * vocab * vocab >= 2**62:  # row-qualified unigrams
            self.n, self.pos = 1, np.arange(len(rows), dtype=np.int64)
            self._keep_repeated(_group(rows * vocab + tok)[0])
        else:  # straight to bigrams: one sort of the batch fewer
            self.n, self.pos = 2, np.flatnonzero(rows[:-1] == rows[1:])
            self._keep_repeated(_group((rows[self.pos] * vocab + tok[self.pos]) * vocab + tok[self.pos + 1])[0])

    def _keep_repeated(self, ids: np.ndarray) -> None:
        """Keep the positions whose n-gram occurs again in its document."""
        freq = np.bincount(ids)[ids] if len(ids) else ids
        keep = freq > 1
        self.pos, self.ids, self.freq = self.pos[keep], ids[keep], freq[keep]

    def grow(self) -> None:
        end = self.pos + self.n
        inside = end < len(self.rows)
        inside[inside] = self.rows[end[inside]] == self.rows[self.pos[inside]]
        self.pos = self.pos[inside]
        ids = _group(self.ids[inside] * self.vocab + self.token_ids[end[inside]])[0]
        self.n += 1
        self._keep_repeated(ids)

    def chars(self, pos: np.ndarray) -> np.ndarray:
        """Characters of the words of the n-grams at `pos`, without separators."""
        return self.cum[pos + self.n] - self.cum[pos]


def top_gram_chars(grams: NGrams) -> np.ndarray:
    """Per row: characters of the most frequent n-gram (words joined by spaces) times its count."""
    out = np.zeros(grams.docs, dtype=np.float64)
    has = grams.counts >= grams.n  # no repeat: the first n-gram, once
    out[has] = grams.chars(grams.starts[has]) + (grams.n - 1)
    if len(grams.pos):
        rows = grams.rows[grams.pos]
        # Highest count first, then the earliest first occurrence (Counter.most_common's tie rule):
        # the earliest position among the most frequent n-grams is that n-gram's first occurrence.
        order = np.lexsort((grams.pos, -grams.freq, rows))
        best = order[np.r_[True, rows[order][1:] != rows[order][:-1]]]
        out[rows[best]] = (grams.chars(grams.pos[best]) + (grams.n - 1)) * grams.freq[best]
    return out


def repeated_gram_chars(grams: NGrams) -> np.ndarray:
    """Per row: characters of n-grams that repeat one seen earlier in a left-to-right walk that
    steps 1 past a new n-gram and n past a repeat (words joined without separators)."""
    out = np.zeros(grams.docs, dtype=np.float64)
    # n-grams seen once never repeat, so walking only the repeated ones decides the same; a jump
    # goes straight to the first repeated n-gram at or after pos + n (never past its row's end).
    jump = np.searchsorted(grams.pos, grams.pos + grams.n).tolist()
    ids, rows, chars = grams.ids.tolist(), grams.rows[grams.pos].tolist(), grams.chars(grams.pos).tolist()
    seen: set[int] = set()
    row, i, end = -1, 0, len(ids)
    while i < end:
        if rows[i] != row:
            seen.clear()
            row = rows[i]
        if ids[i] in seen:
            out[row] += chars[i]
            i = jump[i]
        else:
            seen.add(ids[i])
            i += 1
    return out


def _top_default() -> dict[int, float]:
    return {2: 0.20, 3: 0.18, 4: 0.16}


def _dup_default() -> dict[int, float]:
    return {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


@register
class GopherRepetition(Filter):
    """Adds dup_para_frac, dup_para_char_frac, dup_line_frac, dup_line_char_frac, top_<n>_gram_char_frac
    and dup_<n>_gram_char_frac; drops by the Gopher thresholds (None turns a rule off)."""

    name = "gopher_repetition"
    dup_para_frac: float | None = 0.3
    dup_para_char_frac: float | None = 0.2
    dup_line_frac: float | None = 0.3
    dup_line_char_frac: float | None = 0.2
    top_n_grams: dict[int, float] = Field(default_factory=_top_default)
    dup_n_grams: dict[int, float] = Field(default_factory=_dup_default)

    def check(self) -> None:
        for key in ("top_n_grams", "dup_n_grams"):
            for n in getattr(self, key):
                if not isinstance(n, int) or isinstance(n, bool) or n < 1:
                    raise ConfigError(
                        f"The {key!r} parameter of {self.name} must map n-gram sizes (integers >= 1) to fractions. "
                        f"Got key {n!r} instead."
                    )

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        chars = char_counts(docs).astype(np.float64)
        safe = np.maximum(chars, 1.0)
        paragraphs = docs.cached(
            "text.paragraphs",
            lambda d: split_pattern(pc.utf8_trim_whitespace(text_array(d)), r"\n\n+"),
            per_row=True,
        )
        lines = pieces(docs, r"\n+")
        out: dict[str, np.ndarray] = {}
        for label, segs in (("para", paragraphs), ("line", lines)):
            dup, dup_chars = duplicates(segs)
            out[self.col(f"dup_{label}_frac")] = dup / np.maximum(segs.counts, 1)
            out[self.col(f"dup_{label}_char_frac")] = dup_chars / safe
        sizes = sorted(set(self.top_n_grams) | set(self.dup_n_grams))
        grams = NGrams(words(docs), word_lengths(docs), start=min(sizes, default=2))
        for size in sizes:
            while grams.n < size:
                grams.grow()
            if size in self.top_n_grams:
                out[self.col(f"top_{size}_gram_char_frac")] = top_gram_chars(grams) / safe
            if size in self.dup_n_grams:
                out[self.col(f"dup_{size}_gram_char_frac")] = repeated_gram_chars(grams) / safe
        out[self.col("chars")] = chars.astype(np.int64)
        return out

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        chars = scores[self.col("chars")]
        checks = [("gopher_empty", chars == 0)]
        for label, limit in (
            ("dup_para_frac", self.dup_para_frac),
            ("dup_para_char_frac", self.dup_para_char_frac),
            ("dup_line_frac", self.dup_line_frac),
            ("dup_line_char_frac", self.dup_line_char_frac),
        ):
            if limit is not None:
                checks.append((f"gopher_{label}", scores[self.col(label)] > limit))
        for size, limit in sorted(self.top_n_grams.items()):
            checks.append((f"gopher_top_{size}_gram", scores[self.col(f"top_{size}_gram_char_frac")] > limit))
        for size, limit in sorted(self.dup_n_grams.items()):
            checks.append((f"gopher_duplicated_{size}_n_grams", scores[self.col(f"dup_{size}_gram_char_frac")] > limit))
        return first_reason(len(chars), checks)
