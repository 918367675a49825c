"""FineWeb's line-shape rules (Penedo et al., 2024), for a whole batch at once.

They catch what survives the Gopher and C4 filters in Common Crawl text: lists,
menus and repeated boilerplate. Over the non-blank lines of a document (split
on `\\n` only, as datatrove does), a document is dropped when

- fewer than `line_punct_thr` of its lines end in a sentence terminal (0.12),
- more than `short_line_thr` of its lines are at most `short_line_length`
  characters long (0.67, 30),
- lines repeated inside it (after their first occurrence) hold more than
  `char_duplicates_ratio` of its characters, newlines not counted (0.01),
- it has more than `new_line_ratio` newlines per word (0.3), words as the
  spaCy-like tokenizer of `words.py` counts them. Tokenizing is most of the
  cost, so, as in datatrove, only pages that pass the line rules are
  tokenized; `newline_ratio` is NaN on the others.

Defaults are datatrove's `FineWebQualityFilter` (0.10.1), the code FineWeb ran;
the FineWeb write-up quotes 0.1 for the duplicated-character fraction, the code
uses 0.01. A document with no non-blank line is dropped as `fineweb_empty`.

Agreement with datatrove, and the classes of disagreement, are in docs/filters.md.
"""


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.sentences import SENTENCE_END, last_char_in
from tamis.filters.text import DocView
from tamis.filters.words import WHITESPACE, char_counts, pieces, split_words, text_array


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0.0 where den is 0."""
    return np.divide(num, den, out=np.zeros(len(num), dtype=np.float64), where=den > 0)


@register
class FineWebQuality(Filter):
    """Adds line_punct_ratio, short_line_ratio, char_dup_ratio, newline_ratio; drops by FineWeb's thresholds."""

    name = "fineweb_quality"
    line_punct_thr: float = 0.12
    line_punct_exclude_zero: bool = False
    stop_chars: str = SENTENCE_END  # each character ends a sentence
    short_line_thr: float = 0.67
    short_line_length: int = 30
    char_duplicates_ratio: float = 0.01
    new_line_ratio: float = 0.3

    def check(self) -> None:
        for key in ("line_punct_thr", "short_line_thr", "char_duplicates_ratio"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"The {key!r} parameter of fineweb_quality must be in [0, 1]. Got {getattr(self, key)} instead."
                )
        if self.new_line_ratio < 0 or self.short_line_length < 0:
            raise ConfigError(
                "The 'new_line_ratio' and 'short_line_length' parameters of fineweb_quality must be >= 0."
            )
        if not self.stop_chars:
            raise ConfigError("The 'stop_chars' parameter of fineweb_quality must hold at least one character.")

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        segs = pieces(docs, "\n")
        n = len(docs)
        newlines = segs.counts - 1
        solid = np.asarray(pc.match_substring_regex(segs.values, f"[^{WHITESPACE}]"), dtype=bool)
        lines = segs.select(solid)
        count = lines.counts
        stops = pa.array(list(dict.fromkeys(self.stop_chars)), pa.string())
        lengths = lines.lengths()
        # Characters of each repeat of a line already seen in the same document.
        codes = np.asarray(pc.dictionary_encode(lines.values).indices, dtype=np.int64)
        rows = lines.rows
        _, first = np.unique(rows * (codes.max(initial=0) + 1) + codes, return_index=True)
        repeat = np.ones(len(codes), dtype=bool)
        repeat[first] = False
        scores = {
            self.col("lines"): count.astype(np.int64),
            self.col("line_punct_ratio"): _ratio(lines.row_sum(last_char_in(lines.values, stops)), count),
            self.col("short_line_ratio"): _ratio(lines.row_sum(lengths <= self.short_line_length), count),
            self.col("char_dup_ratio"): _ratio(
                np.bincount(rows[repeat], weights=lengths[repeat], minlength=n), char_counts(docs) - newlines
            ),
        }
        # Words are the costly part: count them only on pages the line rules keep (as datatrove does).
        ratio = np.full(n, np.nan)
        todo = np.flatnonzero(self._line_rules(scores)[0])
        if len(todo):
            texts = text_array(docs).take(pa.array(todo))
            ratio[todo] = _ratio(newlines[todo], split_words(texts).counts)
        scores[self.col("newline_ratio")] = ratio
        return scores

    def _line_rules(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        punct = scores[self.col("line_punct_ratio")]
        few_punct = punct < self.line_punct_thr
        if self.line_punct_exclude_zero:
            few_punct &= punct != 0
        return first_reason(
            len(punct),
            [
                ("fineweb_empty", scores[self.col("lines")] == 0),
                ("fineweb_line_punct_ratio", few_punct),
                ("fineweb_short_line_ratio", scores[self.col("short_line_ratio")] > self.short_line_thr),
                ("fineweb_char_dup_ratio", scores[self.col("char_dup_ratio")] > self.char_duplicates_ratio),
            ],
        )

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        keep, reason = self._line_rules(scores)
        too_many = keep & (np.nan_to_num(scores[self.col("newline_ratio")]) > self.new_line_ratio)
        reason[too_many] = "fineweb_list_ratio"
        return keep & ~too_many, reason
