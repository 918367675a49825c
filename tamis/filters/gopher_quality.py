"""Gopher quality rules (Rae et al., 2021, appendix A.1.1), vectorized over a batch.

A document is dropped if its word count is outside [50, 100000], its mean word
length outside [3, 10] characters, its `#` or ellipsis count over 0.1 per
token, more than 90% of its lines start with a bullet, more than 30% end with
an ellipsis, fewer than 80% of its tokens hold a letter, or it has fewer than 2
of the stop words `the be to of and that have with`. Defaults and comparisons
follow datatrove's GopherQualityFilter, so the two agree document by document:
word counts and mean length exclude punctuation-only tokens, the other ratios
divide by all tokens, stop words match case-sensitively. Any threshold set to
None turns its rule off.

Tokens come from `words.words` (a spaCy-English-like batch tokenizer), lines
from `words.lines`; both are cached on the DocView and shared with the C4 and
FineWeb rules.
"""

import string

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from tamis.errors import ConfigError
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.text import DocView
from tamis.filters.words import WHITESPACE, char_class, lines, text_array, word_lengths, words

STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]
# A token made only of these is punctuation, not a word: ASCII punctuation, controls, the dashes,
# quotes and ellipsis of English text, CJK and fullwidth marks, and sentence ends of other scripts.
# Marks such as `•`, `·`, `§` and `‘` count as words, as in datatrove (Gopher's paper does not say).
_PUNCTUATION = (
    string.punctuation + "—–”“„’´«»…►━∶" + "、。，；：？！（）【】《》〈〉「」～％．｡" + "।॥۔؟؞։።፧፨܀܁܂߹။၊។៕‼‽⁇⁈⁉"
)
_NOT_PUNCT = rf"[^{char_class(_PUNCTUATION)}\x{{0}}-\x{{8}}\x{{b}}-\x{{1f}}\x{{7f}}-\x{{9f}}]"
_BULLET_START = rf"^[{WHITESPACE}]*[•\-]"
_ELLIPSIS_END = rf"(?:\.\.\.|…)[{WHITESPACE}]*$"


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0.0 where den is 0."""
    return np.divide(num, den, out=np.zeros(len(num), dtype=np.float64), where=den > 0)


def _flag(values: pa.Array, pattern: str) -> np.ndarray:
    return np.asarray(pc.match_substring_regex(values, pattern), dtype=np.float64)


@register
class GopherQuality(Filter):
    """Adds word_count, mean_word_length, hash_ratio, ellipsis_ratio, bullet_line_fraction,
    ellipsis_line_fraction, alpha_word_fraction, stop_word_count; drops by the Gopher thresholds."""

    name = "gopher_quality"
    min_doc_words: int | None = 50
    max_doc_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_symbol_word_ratio: float | None = 0.1
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8
    min_stop_words: int | None = 2
    stop_words: list[str] = Field(default_factory=lambda: list(STOP_WORDS))

    def check(self) -> None:
        for key in (
            "max_symbol_word_ratio",
            "max_bullet_lines_ratio",
            "max_ellipsis_lines_ratio",
            "min_alpha_words_ratio",
        ):
            value = getattr(self, key)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"The {key!r} parameter of {self.name} must be in [0, 1]. Got {value} instead.")

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        n = len(docs)
        tokens = words(docs)
        rows = tokens.rows
        n_tokens = tokens.counts.astype(np.float64)
        is_word = _flag(tokens.values, _NOT_PUNCT)
        n_words = np.bincount(rows, weights=is_word, minlength=n)
        word_chars = np.bincount(rows, weights=is_word * word_lengths(docs), minlength=n)
        n_alpha = np.bincount(rows, weights=_flag(tokens.values, r"\pL"), minlength=n)

        stop_index = pc.index_in(tokens.values, value_set=pa.array(self.stop_words, pa.string()))
        hit = np.asarray(pc.is_valid(stop_index))
        k = max(len(self.stop_words), 1)
        distinct = np.unique(rows[hit] * k + np.asarray(pc.fill_null(stop_index, 0))[hit])
        n_stop = np.bincount(distinct // k, minlength=n)

        texts = text_array(docs)
        hashes = np.asarray(pc.count_substring(texts, "#"), dtype=np.float64)
        ellipses = np.asarray(pc.count_substring(texts, "..."), dtype=np.float64) + np.asarray(
            pc.count_substring(texts, "…"), dtype=np.float64
        )
        doc_lines = lines(docs)
        n_lines = doc_lines.counts.astype(np.float64)
        bullets = doc_lines.row_sum(_flag(doc_lines.values, _BULLET_START))
        end_ellipsis = doc_lines.row_sum(_flag(doc_lines.values, _ELLIPSIS_END))
        return {
            self.col("word_count"): n_words.astype(np.int64),
            self.col("mean_word_length"): _ratio(word_chars, n_words),
            self.col("hash_ratio"): _ratio(hashes, n_tokens),
            self.col("ellipsis_ratio"): _ratio(ellipses, n_tokens),
            self.col("bullet_line_fraction"): _ratio(bullets, n_lines),
            self.col("ellipsis_line_fraction"): _ratio(end_ellipsis, n_lines),
            self.col("alpha_word_fraction"): _ratio(n_alpha, n_tokens),
            self.col("stop_word_count"): n_stop.astype(np.int64),
        }

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        s = {k.removeprefix(f"{self.name}."): v for k, v in scores.items() if k.startswith(f"{self.name}.")}
        n = len(s["word_count"])

        def check(reason: str, column: str, bound: float | None, below: bool) -> tuple[str, np.ndarray]:
            if bound is None:
                return reason, np.zeros(n, dtype=bool)
            return reason, (s[column] < bound) if below else (s[column] > bound)

        return first_reason(
            n,
            [
                check("gopher_short_doc", "word_count", self.min_doc_words, True),
                check("gopher_long_doc", "word_count", self.max_doc_words, False),
                check("gopher_below_avg_threshold", "mean_word_length", self.min_mean_word_length, True),
                check("gopher_above_avg_threshold", "mean_word_length", self.max_mean_word_length, False),
                check("gopher_too_many_hashes", "hash_ratio", self.max_symbol_word_ratio, False),
                check("gopher_too_many_ellipsis", "ellipsis_ratio", self.max_symbol_word_ratio, False),
                check("gopher_too_many_bullets", "bullet_line_fraction", self.max_bullet_lines_ratio, False),
                check("gopher_too_many_end_ellipsis", "ellipsis_line_fraction", self.max_ellipsis_lines_ratio, False),
                check("gopher_below_alpha_threshold", "alpha_word_fraction", self.min_alpha_words_ratio, True),
                check("gopher_few_stop_words", "stop_word_count", self.min_stop_words, True),
            ],
        )
