"""Batch word tokenization in RE2 (via Arrow compute), shaped after spaCy's English rules.

datatrove's Gopher, FineWeb and C4 filters count words with spaCy's English
tokenizer, one document at a time; that is most of their run time. Here three
regex rewrites put spaces where spaCy would split a whitespace-separated chunk,
for a whole batch at once in C++ (Arrow's RE2 kernels), and one whitespace split
returns the tokens as a flat string array with offsets. The rewrites match
sparsely (punctuation and glued forms, not plain words), which keeps RE2 on its
fast DFA path; per-token statistics are then numpy reductions, not Python loops.

The tokens follow spaCy's rules where they move the counts the filters use:
punctuation at a chunk's edges is a token of its own (one per mark, `...` as
one); hyphens split words (`x-ray`) but not `COVID-19`; `1,000`, `10:30`, `3.5`,
`C++`, `O'Brien`, URLs, emoticons, `U.S.`, `Mr.`, `p.` and initials stay whole;
contractions and number+unit split (`do n't`, `it 's`, `10 km`); `/`, `:` and `=`
split before a letter unless the chunk is domain-like; `-` and `/` stay on a
word at its edges (`-1`, `/usr`, `micro-`); brackets and `$` inside a chunk
stay in it (`f(x)$.`, `\\frac{1}{2}`), as spaCy only splits them off its ends.
A period before an upper-case letter splits (`said.He`); markdown table rules
(`|---|`) and number ranges (`1990–2005`) stay whole.
On 4,000 web pool pages 82% get exactly spaCy's tokens. Known gaps, each
moving a page's count by a token or a few: some marks inside TeX formulas
split here (`(-1)`, `a_{n-1}$`), `+ * ^` between digits do not (`4+6`),
`—` inside a CJK paragraph splits, apostrophe-less contractions other than
`dont`-like ones (`thats`, `Wed`) stay whole, and rarer special cases of
spaCy's exception table are not reproduced. docs/filters.md lists how these
move filter decisions.
"""

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.filters.text import DocView


def char_class(chars: str) -> str:
    """The characters of `chars` as RE2 class items, each escaped by code point."""
    return "".join(f"\\x{{{ord(c):x}}}" for c in dict.fromkeys(chars))


# Python's str.isspace() set; RE2's \s is ASCII only.
WHITESPACE = r"\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}"

_CURRENCY = "$£€¥฿₽﷼₴"
# Marks spaCy splits off a chunk's edges: its punctuation, quote, currency and prefix lists.
_EDGE = "…,:;!?¿؟¡()[]{}<>_#*&。？！，、；：～·।،۔؛٪'\"”“`‘´’‚„»«「」『』（）〔〕【】《》〈〉〈〉⟦⟧§%=—–" + _CURRENCY
_EDGE_CLASS = char_class(_EDGE) + r"\x{20a0}-\x{20bf}"
# Edge marks that still glue two word parts together (`AT&T`, `O'Brien`, `foo_bar`).
_GLUE_CLASS = char_class("".join(c for c in _EDGE if c not in ",:…—–<>=" + _CURRENCY))

_NONSPACE = f"[^{WHITESPACE}]"
# A plain word character: not space, edge mark, period, hyphen or slash. (Symbols such
# as `©` split only at a chunk's start: excluding \p{So} here too blows up RE2's DFA.)
_CH = rf"[^{WHITESPACE}{_EDGE_CLASS}./\-]"
# After a word's first inner period an upper-case letter starts a new token (`said.He`, `Music.SE`).
_CH_NOT_UPPER = rf"[^{WHITESPACE}{_EDGE_CLASS}./\-A-Z]"
# Joins inside a word. Before the word's first inner period `/ : < > =` glue only before
# a non-letter (spaCy's infix rule); after it the word is domain-like and they always glue.
_CUR_CLASS = char_class(_CURRENCY)
# Latin letters stand in for \pL inside glues: each \pL costs ~2 ms of RE2 compile per batch.
_LATIN = r"[A-Za-z\x{c0}-\x{24f}]"
_GLUE_PLAIN = (
    rf"{_LATIN}-[0-9]|[,–—][0-9]|{_LATIN}[{_CUR_CLASS}]|[{_GLUE_CLASS}$]+[=:]?{_CH}|://|[:<>=/][\pN@#&*+|~^%\\]"
)
_GLUE_DOMAIN = rf"{_LATIN}-[0-9]|[0-9][,–—][0-9]|{_LATIN}[{_CUR_CLASS}]|[{_GLUE_CLASS}:<>=/.]{_CH}"
# A word with at least one glue (plain words need no split, so they are not matched).
# The first glue either starts on a word character or follows one.
_GLUED = (
    rf"(?:{_CH}*(?:{_LATIN}-[0-9]|[0-9][,–—][0-9]|{_LATIN}[{_CUR_CLASS}])|{_CH}+(?:[{_GLUE_CLASS}$]+{_CH}|[:<>=/][\pN@#&*+|~^%\\]))"
    rf"(?:{_GLUE_PLAIN}|{_CH})*(?:\.{_CH_NOT_UPPER}(?:{_GLUE_DOMAIN}|{_CH})*)?(?:[{_GLUE_CLASS}]*\$\.?)?"
    rf"|{_CH}+\.{_CH_NOT_UPPER}(?:{_GLUE_DOMAIN}|{_CH})*|(?:^|[{WHITESPACE}])\.{_CH}(?:{_GLUE_DOMAIN}|{_CH})*"
)
_URL = rf"(?:https?://|www\.)(?:{_NONSPACE}*[^{WHITESPACE}.,;:!?'\x{{22}}”’)\]}}>])?"
_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Dr|Prof|St|Jr|Sr|Inc|Ltd|Co|Corp|Bros|Messrs|vs|Gen|Gov|Rep|Sen|Rev|Adm|Mt|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Ph\\.D|"
    "Ala|Ariz|Ark|Calif|Colo|Conn|Del|Fla|Ga|Ill|Ind|Kan|Kans|Ky|La|Mass|Md|Mich|Minn|Miss|Mo|Mont|"
    "Neb|Nebr|Nev|Okla|Ore|Pa|Tenn|Va|Wash|Wis"
)
_SPECIALS = (
    r"\):|:\)|:-\)|;\)|;-\)|:\(|:-\(|:D|:-D|:P|:p|:-P|<3|\(=|=\)|''|\^\^|\|(?:[:\-]+\|)+|:/|:-/|\band/or\b"
    r"|['’](?:[sSmMdD]|re|RE|ve|VE|ll|LL)\b"
)
# spaCy has no prefix or suffix rule for `-` and `/`: at a chunk's edges they stay on the word
# (`-1`, `/usr`, `micro-`, `w/`). The whitespace before or after is part of the match.
_LEADING_DASH = rf"[\-/]+(?:{_CH}+(?:[.,]{_CH}+)*)?"
_EDGE_DASH = rf"(?:^|[{WHITESPACE}]){_LEADING_DASH}|{_CH}+[\-/]+(?:[{WHITESPACE}](?:{_LEADING_DASH})?|$)"
_TOKEN_PATTERN = (
    rf"{_URL}|{_SPECIALS}|{_CH}+\$\.|\.\.+|…|(?:{_LATIN}\.){{2,}}|{_EDGE_DASH}|{_GLUED}"
    rf"|\b(?:[A-Z]|{_ABBREVIATIONS})\.|(?:^|[{WHITESPACE}])(?:[a-zäöü]\.)+|-+|\p{{So}}|[{_EDGE_CLASS}./]"
)

# Splits spaCy makes inside a word by special rule, rare enough for capture groups.
_UNITS = (
    "km|km²|km³|m|m²|m³|dm|dm²|dm³|cm|cm²|cm³|mm|mm²|mm³|ha|µm|nm|yd|in|ft|kg|g|mg|µg|t|lb|oz|"
    "m/s|km/h|kmh|mph|hPa|Pa|mbar|mb|MB|kb|KB|gb|GB|tb|TB|T|G|M|K"
)
_AFFIX_PATTERN = (
    r"([A-Za-z0-9\x{c0}-\x{24f}])(n['’]t|['’](?:[sSmMdD]|re|RE|ve|VE|ll|LL))\b"
    rf"|\b([0-9]+(?:[.,][0-9]+)*)({_UNITS})\b"
)
_AFFIX_REWRITE = r"\1 \2\3 \4"
# spaCy's apostrophe-less contractions that occur in real text (`im` is also German).
_STEM_PATTERN = (
    r"\b([Dd]o|[Cc]a|[Ww]o|[Ii]s|[Aa]i|[Dd]id|[Ww]as|[Aa]re|[Hh]as|[Hh]ad|[Dd]oes|[Ww]ere|[Hh]ave"
    r"|[Cc]ould|[Ww]ould|[Ss]hould)(nt)\b|\b([Ii])(m|d|ve)\b|\b([Cc]an)(not)\b|\b([Gg]on|[Gg]ot)(na|ta)\b"
)
_STEM_REWRITE = r"\1\3\5\7 \2\4\6\8"


@dataclass(frozen=True)
class Segments:
    """Per-document lists of strings as one flat array plus row offsets (len n+1)."""

    values: pa.Array
    offsets: np.ndarray

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def rows(self) -> np.ndarray:
        """Row index of each flat value."""
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def row_sum(self, per_value: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=per_value, minlength=len(self.offsets) - 1)

    def lengths(self) -> np.ndarray:
        """Characters (code points) of each flat value."""
        return np.asarray(pc.utf8_length(self.values), dtype=np.int64)

    def select(self, keep: np.ndarray) -> "Segments":
        """The values where `keep` is true, still grouped by row."""
        counts = np.bincount(self.rows[keep], minlength=len(self.offsets) - 1)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return Segments(self.values.filter(pa.array(keep)), offsets)

    def take_rows(self, rows: np.ndarray) -> "Segments":
        """The rows at `rows` (ascending), their values in order."""
        keep = np.zeros(len(self.offsets) - 1, dtype=bool)
        keep[rows] = True
        offsets = np.concatenate([[0], np.cumsum(self.counts[rows])]).astype(np.int64)
        return Segments(self.values.filter(pa.array(keep[self.rows])), offsets)

    @classmethod
    def from_lists(cls, lists: pa.Array) -> "Segments":
        offsets = np.asarray(lists.offsets, dtype=np.int64)
        values = lists.values
        if offsets[0] != 0 or offsets[-1] != len(values):
            values = values.slice(offsets[0], offsets[-1] - offsets[0])
            offsets = offsets - offsets[0]
        return cls(values, offsets)


def split_words(texts: pa.Array) -> Segments:
    """Word and punctuation tokens of each text (none for empty or null text)."""
    spaced = pc.fill_null(texts, "")
    for pattern, rewrite in (
        (_AFFIX_PATTERN, _AFFIX_REWRITE),
        (_STEM_PATTERN, _STEM_REWRITE),
        (_TOKEN_PATTERN, r" \0 "),
    ):
        spaced = pc.replace_substring_regex(spaced, pattern, rewrite)
    tokens = Segments.from_lists(pc.utf8_split_whitespace(pc.utf8_trim_whitespace(spaced)))
    empty = np.asarray(pc.binary_length(tokens.values)) == 0  # a blank text splits into one ""
    return tokens.select(~empty) if empty.any() else tokens


# Python's str.splitlines() boundaries.
LINE_BREAK = r"\r\n|[\n\r\x{0b}\x{0c}\x{1c}-\x{1e}\x{85}\x{2028}\x{2029}]"


def split_pattern(texts: pa.Array, pattern: str) -> Segments:
    """Pieces of each text between matches of an RE2 pattern, as Python's re.split gives them."""
    return Segments.from_lists(pc.split_pattern_regex(pc.fill_null(texts, ""), pattern))


# Per-batch derived data shared by the heuristic filters; each is computed once per DocView.


def text_array(docs: DocView) -> pa.Array:
    """The text column as one Arrow array, nulls as empty text."""
    return docs.cached("text.array", lambda d: pc.fill_null(d.batch.column("text"), ""), per_row=True)


def char_counts(docs: DocView) -> np.ndarray:
    """Characters (code points) per text, as Python's len()."""
    return docs.cached("text.chars", lambda d: np.asarray(pc.utf8_length(text_array(d)), dtype=np.int64), per_row=True)


def words(docs: DocView) -> Segments:
    """spaCy-English-like word and punctuation tokens (see split_words)."""
    return docs.cached("words.en", lambda d: split_words(text_array(d)), per_row=True)


def word_lengths(docs: DocView) -> np.ndarray:
    """Characters of each token of words(docs)."""
    return docs.cached("words.en.lengths", lambda d: words(d).lengths())


def lines(docs: DocView) -> Segments:
    """Lines as Python's str.splitlines() gives them (no trailing empty line)."""

    def compute(d: DocView) -> Segments:
        pieces = split_pattern(text_array(d), LINE_BREAK)
        ends = pieces.offsets[1:] - 1  # every row has at least one piece
        keep = np.ones(len(pieces.values), dtype=bool)
        keep[ends[pieces.lengths()[ends] == 0]] = False
        return pieces.select(keep)

    return docs.cached("text.splitlines", compute, per_row=True)


def pieces(docs: DocView, pattern: str) -> Segments:
    """Pieces of each text split on an RE2 pattern (as re.split), cached per pattern."""
    return docs.cached(f"text.split:{pattern}", lambda d: split_pattern(text_array(d), pattern), per_row=True)
