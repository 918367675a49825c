"""C4's clean-up rules (Raffel et al., 2020, section 2.2), line by line for a whole batch at once.

A line is removed when it holds a word over `max_word_length` characters, does
not end in a terminal mark (`. ? ! " '`, but not `...`), has fewer than
`min_words_per_line` words, mentions "javascript" or a cookie/terms-of-use
phrase. A page is dropped when a line that survives the first three checks
says "lorem ipsum" or holds a curly bracket, or when the kept lines hold fewer
than `min_num_sentences` sentences (spaCy's sentencizer rule, see
`sentences.count_sentences`). Wikipedia citation marks (`[1]`, `[edit]`,
`[citation needed]`) are cut first. Kept lines, stripped, joined by newlines,
become the document's text (`c4_quality.text`).

Defaults and rule order are datatrove's `C4QualityFilter` (0.10.1), which
follows the TFDS reference code rather than the paper's prose: the word-length
and cookie-policy rules and citation removal come from the code; a word is a
whitespace-separated chunk, counted before citations are cut; a line ending in
`'` counts as terminated; sentences are spaCy's (the TFDS code used NLTK's
Punkt). Not reproduced: datatrove's sentence mode
(`split_paragraph=False`) and the paper's bad-words list. One addition: a
document left with no line is dropped (`c4_empty`) even when the sentence
count is off, instead of being kept with empty text.

Columns: `lines` (as str.splitlines counts them), `kept_lines`, `sentences`
(exact below `min_num_sentences` kept lines; from there on the kept-line
count, a lower bound that already passes, since the sentencizer then need not
run), `lorem_ipsum_line` and `curly_bracket_line` (index of the first line
that drops the page, -1 if none). A dropped page keeps its text as read.

Everything is Arrow compute over the batch's flat line array plus numpy
reductions; only lines longer than `max_word_length` characters are split into
words to find the longest.

Agreement with datatrove, and the classes of disagreement, are in docs/filters.md.
"""


import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.filters.base import Filter, first_reason
from tamis.filters.registry import register
from tamis.filters.sentences import count_sentences, last_char_in
from tamis.filters.text import DocView
from tamis.filters.words import WHITESPACE, Segments, lines

CITATION = r"\[\p{Nd}*\]|\[edit\]|\[citation needed\]"
POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_TERMINAL = pa.array(list(".?!\"'"), pa.string())


def _has_words(stripped: pa.Array, k: int) -> np.ndarray:
    """Whether each stripped line has at least k (> 1) whitespace-separated words; an anchored match stops early."""
    if k > 100:  # keeps the RE2 program small
        return np.asarray(pc.list_value_length(pc.utf8_split_whitespace(stripped))) >= k
    pattern = f"^(?:[^{WHITESPACE}]+[{WHITESPACE}]+){{{k - 1}}}[^{WHITESPACE}]"
    return np.asarray(pc.match_substring_regex(stripped, pattern), dtype=bool)


def _first_line(segments: Segments, flagged: np.ndarray) -> np.ndarray:
    """Index within its document of the first flagged line, -1 where none is."""
    n = len(segments.offsets) - 1
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    idx = np.flatnonzero(flagged)
    np.minimum.at(first, segments.rows[idx], idx)
    return np.where(first == np.iinfo(np.int64).max, -1, first - segments.offsets[:-1])


@register
class C4Quality(Filter):
    """Removes lines by C4's rules and rewrites the text; drops pages by lorem ipsum, curly bracket, sentences."""

    name = "c4_quality"
    remove_citations: bool = True
    filter_no_terminal_punct: bool = True
    min_num_sentences: int = 5  # -1 disables
    min_words_per_line: int = 3  # -1 disables
    max_word_length: int = 1000  # -1 disables
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True

    def check(self) -> None:
        for key in ("min_num_sentences", "min_words_per_line", "max_word_length"):
            if getattr(self, key) < -1:
                raise ConfigError(
                    f"The {key!r} parameter of c4_quality must be -1 (off) or at least 0. Got {getattr(self, key)} instead."
                )

    def _line_checks(self, stripped: pa.Array) -> tuple[np.ndarray, pa.Array]:
        """(mask of lines passing the word-length, terminal-mark and word-count checks, lines with citations cut)."""
        ok = np.ones(len(stripped), dtype=bool)
        if self.max_word_length != -1:
            long_lines = np.flatnonzero(np.asarray(pc.utf8_length(stripped)) > self.max_word_length)
            if len(long_lines):
                words = Segments.from_lists(pc.utf8_split_whitespace(stripped.take(pa.array(long_lines))))
                longest = np.zeros(len(long_lines), dtype=np.int64)
                np.maximum.at(longest, words.rows, words.lengths())
                ok[long_lines] = longest <= self.max_word_length
        cut = pc.replace_substring_regex(stripped, CITATION, "") if self.remove_citations else stripped
        if self.filter_no_terminal_punct:
            ok &= last_char_in(cut, _TERMINAL) & ~np.asarray(pc.ends_with(cut, "..."), dtype=bool)
        if self.min_words_per_line > 1:
            ok &= _has_words(stripped, self.min_words_per_line)
        elif self.min_words_per_line == 1:
            ok &= np.asarray(pc.binary_length(stripped)) > 0
        return ok, cut

    def _sentences(self, kept_lines: Segments, undecided: np.ndarray) -> np.ndarray:
        """Sentences of the kept lines, counted only where the line count leaves the rule undecided.

        Every line holds a sentence, so a page with at least
        `min_num_sentences` lines passes whatever its exact count, and a page
        already dropped needs no count: both report their line count. This
        saves most of the sentencizer's cost on real web text.
        """
        sentences = kept_lines.counts.astype(np.int64)
        todo = undecided & (sentences > 0) & (sentences < self.min_num_sentences)
        if todo.any():
            mask = todo[kept_lines.rows]
            sub = kept_lines.select(mask)
            sentences[todo] = sub.row_sum(count_sentences(sub.values))[todo]
        return sentences

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        segs = lines(docs)
        stripped = pc.utf8_trim_whitespace(segs.values)
        ok, cut = self._line_checks(stripped)
        # The phrase checks only look at lines that passed the first three. (RE2 finds
        # literals here several times faster than Arrow's match_substring.)
        idx = np.flatnonzero(ok)
        sub = cut.take(pa.array(idx))
        lower = pc.utf8_lower(sub)

        def flags(on: bool, values: pa.Array, pattern: str) -> np.ndarray:
            if not on:
                return np.zeros(len(idx), dtype=bool)
            return np.asarray(pc.match_substring_regex(values, pattern), dtype=bool)

        lorem = flags(self.filter_lorem_ipsum, lower, "lorem ipsum")
        javascript = flags(self.filter_javascript, lower, "javascript")
        curly = flags(self.filter_curly_bracket, sub, r"\{") & ~lorem & ~javascript
        policy = flags(self.filter_policy, lower, "|".join(POLICY))
        kept = np.zeros(len(cut), dtype=bool)
        kept[idx] = ~(lorem | javascript | curly | policy)
        lorem_line = np.zeros(len(cut), dtype=bool)
        lorem_line[idx] = lorem
        curly_line = np.zeros(len(cut), dtype=bool)
        curly_line[idx] = curly

        kept_lines = Segments(cut, segs.offsets).select(kept)
        lorem_at, curly_at = _first_line(segs, lorem_line), _first_line(segs, curly_line)
        sentences = self._sentences(kept_lines, (lorem_at < 0) & (curly_at < 0))
        joined = pc.binary_join(
            pa.ListArray.from_arrays(pa.array(kept_lines.offsets, pa.int32()), kept_lines.values), "\n"
        )
        scores = {
            self.col("lines"): segs.counts.astype(np.int64),
            self.col("kept_lines"): kept_lines.counts.astype(np.int64),
            self.col("sentences"): sentences,
            self.col("lorem_ipsum_line"): lorem_at,
            self.col("curly_bracket_line"): curly_at,
        }
        new_text = pc.utf8_trim_whitespace(joined)
        return {self.col("text"): np.asarray(new_text.to_pylist(), dtype=object), **scores}

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        lorem, curly = scores[self.col("lorem_ipsum_line")], scores[self.col("curly_bracket_line")]
        kept = scores[self.col("kept_lines")]
        return first_reason(
            len(kept),
            [
                ("c4_lorem_ipsum", (lorem >= 0) & ((curly < 0) | (lorem <= curly))),
                ("c4_curly_bracket", curly >= 0),
                ("c4_too_few_sentences", scores[self.col("sentences")] < self.min_num_sentences),
                ("c4_empty", kept == 0),
            ],
        )
