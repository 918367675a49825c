"""The analysis chain: text -> index terms, the same function at index time and at query time.

Tokens are maximal runs of Unicode word characters (at least `min_chars` of them,
like scikit-learn's and bm25s's default pattern), lowercased, stopwords removed,
then stemmed with Snowball (PyStemmer). The `code` tokenizer also splits
identifiers (camelCase, snake_case) into their parts and keeps the whole
identifier, so `getUserName` matches both "user name" and "getusername".
The resolved config is stored in the index manifest, and a loaded index rebuilds
its analyzer from it, so queries are analyzed exactly as the documents were.

Many texts are split in one pass (`word_stream`): for ASCII text of the `word`
tokenizer, `str.translate` + `split` gives exactly the regex's runs of word
characters at a fraction of its cost (runs shorter than `min_chars` come out
too, and `word_terms` maps them to no term), and each text is followed by a
SEPARATOR token, so callers map the whole stream through one dict.
"""

import re
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tamis.errors import ConfigError
from tamis.validation import Params

# Lucene's EnglishAnalyzer stop set (also Pyserini's and bm25s's "english" default).
ENGLISH_STOPWORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_STOPWORD_SETS = {"english": ENGLISH_STOPWORDS, "none": frozenset()}
SEPARATOR = "\x01"  # ends each text in a word stream; not a word character, so no text yields it as a token
# ASCII characters that are not regex word characters (\w), mapped to spaces; SEPARATOR itself is kept
_ASCII_BREAKS = str.maketrans({chr(c): " " for c in range(128) if not (chr(c).isalnum() or chr(c) in "_\x01")})
# Split an identifier part: acronym before a capitalized word, capitalized word, lowercase run, acronym, digits.
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[^\W\d_A-Z]+|[A-Z]+|[0-9]+")


class AnalysisConfig(Params):
    """How text becomes terms. `stopwords`: "english", "none" or a list; `stemmer`: a Snowball language or "none"."""

    tokenizer: Literal["word", "code"] = "word"
    lowercase: bool = True
    stopwords: str | list[str] = "english"
    stemmer: str = "english"
    min_chars: int = 2

    def check(self) -> None:
        if isinstance(self.stopwords, str) and self.stopwords not in _STOPWORD_SETS:
            raise ConfigError(
                f"The 'stopwords' parameter of analysis must be one of {sorted(_STOPWORD_SETS)} or a list of words. "
                f"Got {self.stopwords!r} instead."
            )
        if self.stemmer != "none":
            import Stemmer

            if self.stemmer not in Stemmer.algorithms():
                raise ConfigError(
                    f"The 'stemmer' parameter of analysis must be 'none' or one of {Stemmer.algorithms()}. "
                    f"Got {self.stemmer!r} instead."
                )
        if self.min_chars < 1:
            raise ConfigError(f"The 'min_chars' parameter of analysis must be >= 1. Got {self.min_chars} instead.")



@dataclass
class Analyzer:
    """Maps texts to terms. Stems are cached per distinct word, since corpora repeat words heavily."""

    config: AnalysisConfig = field(default_factory=AnalysisConfig)
    cache_size: int = 2_000_000

    def __post_init__(self) -> None:
        self.config.check()
        c = self.config
        self._pattern = re.compile(rf"\w{{{c.min_chars},}}" if c.tokenizer == "word" else r"\w+")
        words = c.stopwords if isinstance(c.stopwords, list) else _STOPWORD_SETS[c.stopwords]
        self._stop = frozenset(w.lower() for w in words) if c.lowercase else frozenset(words)
        self._stemmer = None
        if c.stemmer != "none":
            import Stemmer

            self._stemmer = Stemmer.Stemmer(c.stemmer)
        self._terms: dict[str, tuple[str, ...]] = {}  # raw token -> its terms (empty for a stopword)

    def word_stream(self, texts: list[str]) -> list[str]:
        """The raw tokens of many texts, flat, each text followed by SEPARATOR (see the module docstring).

        Tokens shorter than `min_chars` may appear; `word_terms` gives them no term.
        """
        if not texts:
            return []
        joined = f" {SEPARATOR} ".join(texts) + f" {SEPARATOR}"
        if self.config.tokenizer == "word" and joined.isascii() and joined.count(SEPARATOR) == len(texts):
            return (joined.lower() if self.config.lowercase else joined).translate(_ASCII_BREAKS).split()
        out: list[str] = []
        for text in texts:
            out += self.words(text)
            out.append(SEPARATOR)
        return out

    def words(self, text: str) -> list[str]:
        """Raw tokens before stopwords and stemming (identifier parts included for `code`)."""
        if self.config.tokenizer == "word":
            return self._pattern.findall(text.lower() if self.config.lowercase else text)
        out: list[str] = []
        n = self.config.min_chars
        lower = self.config.lowercase
        for ident in self._pattern.findall(text):
            parts = [p for chunk in ident.split("_") for p in _CAMEL.findall(chunk)]
            if len(parts) > 1 and len(ident) >= n:
                out.append(ident.lower() if lower else ident)
            out.extend(p.lower() if lower else p for p in parts if len(p) >= n)
        return out

    def word_terms(self, word: str) -> tuple[str, ...]:
        terms = self._terms.get(word)
        if terms is None:
            if word in self._stop or len(word) < self.config.min_chars:
                terms = ()
            else:
                terms = (self._stemmer.stemWord(word) if self._stemmer else word,)
            if len(self._terms) >= self.cache_size:
                self._terms.clear()
            self._terms[word] = terms
        return terms

    def word_terms_many(self, words: list[str]) -> list[tuple[str, ...]]:
        """`word_terms` of many words, the uncached ones stemmed in one PyStemmer call."""
        cache = self._terms
        out = [cache.get(w) for w in words]
        missing = [w for w, t in zip(words, out, strict=True) if t is None]
        if not missing:
            return out
        n = self.config.min_chars
        kept = [w for w in missing if w not in self._stop and len(w) >= n]
        stems = iter(self._stemmer.stemWords(kept) if self._stemmer else kept)
        found = {w: () if w in self._stop or len(w) < n else (next(stems),) for w in missing}
        if len(cache) + len(found) > self.cache_size:
            cache.clear()
        cache.update(found)
        return [found[w] if t is None else t for w, t in zip(words, out, strict=True)]

    def terms(self, text: str) -> list[str]:
        """The index terms of one text, in order, repeats kept."""
        lookup = self.word_terms
        return [t for w in self.words(text) for t in lookup(w)]


_END = -2  # the id of SEPARATOR in a mapped word stream


class TermIds:
    """Texts -> ids of their terms in a vocabulary that grows as new terms appear (one per index shard).

    Per token the work is one dict lookup (raw word -> term id), two for a chunk
    that brings new words; stopword and stemming decisions run once per distinct word.
    """

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer
        self.terms: dict[str, int] = {}  # term -> id, in order of first appearance
        self._word_ids: dict[str, int] = {SEPARATOR: _END}  # raw word -> term id, -1 for a stopword or short word

    def __call__(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Term ids of every kept token of `texts`, in order, and the number of kept tokens per text."""
        stream = self.analyzer.word_stream(texts)
        known = self._word_ids
        found = list(map(known.get, stream))  # one hash per token; words not seen before give None
        if None in found:
            fresh = list(dict.fromkeys(w for w, t in zip(stream, found, strict=True) if t is None))
            add = self.terms.setdefault
            for word, terms in zip(fresh, self.analyzer.word_terms_many(fresh), strict=True):
                known[word] = add(terms[0], len(self.terms)) if terms else -1
            found = list(map(known.__getitem__, stream))
        ids = np.array(found, dtype=np.int64)
        ends = ids == _END
        text_of_token = np.cumsum(ends) - ends
        kept = ids >= 0
        return ids[kept], np.bincount(text_of_token[kept], minlength=len(texts))
