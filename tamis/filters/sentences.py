"""Sentence ends and spaCy-sentencizer-like sentence counts for whole batches.

C4 counts a page's sentences with spaCy's rule-based sentencizer (as datatrove
does) and FineWeb asks whether lines end in a sentence terminal. Both use the
characters below: Unicode's sentence terminals as datatrove lists them, so
decisions compare one to one. (spaCy's own sentencizer list lacks 31 of them,
in Khmer, Samaritan, Sogdian and other rare scripts; text in those scripts may
count more sentences here than under datatrove.)
"""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.filters.words import split_words

SENTENCE_END = (
    "!.?\u0589\u061d\u061e\u061f\u06d4\u0700\u0701\u0702\u07f9\u0837\u0839\u083d\u083e\u0964\u0965\u104a\u104b"
    "\u1362\u1367\u1368\u166e\u1735\u1736\u17d4\u17d5\u17d6\u17d9\u17da\u1803\u1809\u1944\u1945\u1aa8\u1aa9\u1aaa"
    "\u1aab\u1b5a\u1b5b\u1b5e\u1b5f\u1b7d\u1b7e\u1c3b\u1c3c\u1c7e\u1c7f\u203c\u203d\u2047\u2048\u2049\u2e2e\u2e3c"
    "\u2e53\u2e54\u3002\ua4ff\ua60e\ua60f\ua6f3\ua6f7\ua876\ua877\ua8ce\ua8cf\ua92f\ua9c8\ua9c9\uaa5d\uaa5e\uaa5f"
    "\uaaf0\uaaf1\uabeb\ufe52\ufe56\ufe57\uff01\uff0e\uff1f\uff61\U00010a56\U00010a57\U00010f55\U00010f56\U00010f57"
    "\U00010f58\U00010f59\U00010f86\U00010f87\U00010f88\U00010f89\U00011047\U00011048\U000110be\U000110bf\U000110c0"
    "\U000110c1\U00011141\U00011142\U00011143\U000111c5\U000111c6\U000111cd\U000111de\U000111df\U00011238\U00011239"
    "\U0001123b\U0001123c\U000112a9\U0001144b\U0001144c\U000115c2\U000115c3\U000115c9\U000115ca\U000115cb\U000115cc"
    "\U000115cd\U000115ce\U000115cf\U000115d0\U000115d1\U000115d2\U000115d3\U000115d4\U000115d5\U000115d6\U000115d7"
    "\U00011641\U00011642\U0001173c\U0001173d\U0001173e\U00011944\U00011946\U00011a42\U00011a43\U00011a9b\U00011a9c"
    "\U00011c41\U00011c42\U00011ef7\U00011ef8\U00011f43\U00011f44\U00016a6e\U00016a6f\U00016af5\U00016b37\U00016b38"
    "\U00016b44\U00016e98\U0001bc9f\U0001da88"
)
_ENDS = pa.array(list(SENTENCE_END), pa.string())


def last_char_in(values: pa.Array, chars: pa.Array) -> np.ndarray:
    """Whether each string ends with one of the single characters `chars` (False for empty strings)."""
    last = pc.utf8_slice_codeunits(values, -1)
    return np.asarray(pc.fill_null(pc.is_in(last, value_set=chars), False), dtype=bool)


def count_sentences(texts: pa.Array) -> np.ndarray:
    """Sentences per text as spaCy's sentencizer splits them after its tokenizer (an empty text counts 1).

    A sentence ends at a terminal mark; the next sentence starts at the next
    token that is neither punctuation nor a terminal, so `Wait... what?!`
    stays one sentence. Per token this is: a word starts a sentence when a
    terminal stands between it and the previous word of the same text.
    (spaCy also makes tokens of runs of whitespace, which count as words there;
    they change a count only when a terminal follows one with no word between.)
    """
    tokens = split_words(texts)
    n = len(tokens.offsets) - 1
    if len(tokens.values) == 0:
        return np.ones(n, dtype=np.int64)
    terminal = np.asarray(pc.is_in(tokens.values, value_set=_ENDS), dtype=bool)
    punct = np.asarray(pc.match_substring_regex(tokens.values, r"^\pP+$"), dtype=bool)
    word = np.flatnonzero(~punct & ~terminal)
    seen = np.concatenate([[0], np.cumsum(terminal)])  # terminals before each flat position
    rows = tokens.rows[word]
    first = np.ones(len(word), dtype=bool)
    first[1:] = rows[1:] != rows[:-1]
    # Terminals since the previous word of the row, or since the row's first token.
    since = np.where(first, tokens.offsets[rows], np.concatenate([[0], word[:-1] + 1]))
    starts = seen[word] - seen[since] > 0
    return 1 + np.bincount(rows[starts], minlength=n).astype(np.int64)
