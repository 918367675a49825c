"""Vectorized text normalization and shingle hashing over a whole batch at once.

A batch of texts becomes one array of Unicode code points (UTF-32), so every
step is a numpy operation over the batch, never a Python loop per shingle:

* normalization is a lookup table over code points and keeps every text's
  length, so word positions still point into the original text (decontamination
  cuts spans by them);
* a substring hash is O(1) from a prefix sum of ``c_i * P**i`` (mod 2**64,
  P odd so it has an inverse), so every word, word n-gram and character n-gram
  of the batch is hashed in a few array passes, then mixed by splitmix64.

Words are runs of non-space code points after normalization; a word n-gram
hashes its n word hashes, so it ignores how much space separates the words.
A text with fewer than n units (words or characters) yields one shingle of all of them.
"""

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from tamis.errors import ConfigError

_MASK = (1 << 64) - 1
_P = 0x9E3779B97F4A7C15  # odd, so invertible mod 2**64
_LEN = np.uint64(0xD6E8FEB86659FD93)
_SPACE = 32
_BMP = 0x10000  # the lookup table covers the Basic Multilingual Plane; other code points pass unchanged


@dataclass(frozen=True)
class Shingling:
    """How a text becomes a set of shingles; recorded whole in manifests."""

    kind: Literal["word", "char"] = "word"
    n: int = 5
    lowercase: bool = True
    punctuation: bool = True  # punctuation and symbols become spaces (word separators)
    digits: bool = True  # every decimal digit becomes 0, so numbers that differ only in value match
    whitespace: bool = True  # char shingles: runs of spaces count as one space (words always ignore spacing)

    def validate(self) -> None:
        if self.kind not in ("word", "char"):
            raise ConfigError(f"The 'kind' parameter of shingling must be 'word' or 'char'. Got {self.kind!r} instead.")
        if self.n < 1:
            raise ConfigError(f"The 'n' parameter of shingling must be >= 1. Got {self.n} instead.")


def _inverse(x: int) -> int:
    inv = x  # Newton's iteration doubles the correct low bits each step
    for _ in range(6):
        inv = (inv * (2 - x * inv)) & _MASK
    return inv


@lru_cache(maxsize=8)
def _table(lowercase: bool, punctuation: bool, digits: bool) -> np.ndarray:
    """Code point → normalized code point for the BMP; every whitespace maps to a plain space."""
    table = np.arange(_BMP, dtype=np.uint32)
    for cp in range(_BMP):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if ch.isspace():
            table[cp] = _SPACE
            continue
        cat = unicodedata.category(ch)
        if punctuation and cat[0] in "PS":
            table[cp] = _SPACE
        elif digits and cat == "Nd":
            table[cp] = ord("0")
        elif lowercase:
            low = ch.lower()
            if len(low) == 1:  # keep lengths: a few letters lowercase to two code points and stay as they are
                table[cp] = ord(low)
    return table


@lru_cache(maxsize=1)
def _powers_cache() -> dict[str, np.ndarray]:
    return {"pow": np.ones(1, np.uint64), "inv": np.ones(1, np.uint64)}


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """P**i and P**-i mod 2**64 for i < n (grown on demand and kept)."""
    cache = _powers_cache()
    if len(cache["pow"]) < n:
        size = max(n, 2 * len(cache["pow"]))
        for key, base in (("pow", _P), ("inv", _inverse(_P))):
            arr = np.empty(size, np.uint64)
            arr[0] = 1
            arr[1:] = base
            cache[key] = np.multiply.accumulate(arr)
    return cache["pow"][:n], cache["inv"][:n]


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: a bijection on uint64 that spreads every input bit over the output."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _span_hashes(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mixed polynomial hashes of values[s:s+len] for every (s, len), all at once."""
    pw, inv = _powers(len(values) + 1)
    prefix = np.zeros(len(values) + 1, np.uint64)
    np.cumsum((values.astype(np.uint64) + np.uint64(1)) * pw[: len(values)], out=prefix[1:])
    raw = (prefix[starts + lengths] - prefix[starts]) * inv[starts]
    return mix64(raw + lengths.astype(np.uint64) * _LEN)


@dataclass
class CodePoints:
    """A batch's texts as one array of normalized code points, ' '-separated."""

    cp: np.ndarray  # uint32, normalized; whitespace is 32
    starts: np.ndarray  # int64, len n + 1: text i is cp[starts[i] : starts[i] + lengths[i]]
    lengths: np.ndarray  # int64 code points per text

    @property
    def n(self) -> int:
        return len(self.lengths)


def code_points(texts: list[str], cfg: Shingling) -> CodePoints:
    joined = " ".join(texts) + " "
    raw = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    table = _table(cfg.lowercase, cfg.punctuation, cfg.digits)
    bmp = raw < _BMP
    cp = np.where(bmp, table[np.where(bmp, raw, 0)], raw)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    starts = np.zeros(len(texts) + 1, np.int64)
    np.cumsum(lengths + 1, out=starts[1:])
    return CodePoints(cp, starts, lengths)


@dataclass
class Words:
    """Word spans of a batch: word j is cp[begin[j]:end[j]] of text doc[j]; text i owns words first[i]:first[i+1]."""

    begin: np.ndarray
    end: np.ndarray
    first: np.ndarray  # int64, len n + 1


def words(c: CodePoints) -> Words:
    is_word = c.cp != _SPACE
    edges = np.diff(is_word.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
    begin = np.flatnonzero(edges == 1)
    end = np.flatnonzero(edges == -1)  # the separators guarantee no word crosses two texts
    first = np.searchsorted(begin, c.starts)
    return Words(begin, end, first)


def _ngrams(unit_hashes: np.ndarray, first: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every run of n consecutive units inside one text; returns (hashes, per-text offsets)."""
    counts = np.diff(first)
    per_text = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(per_text, out=offsets[1:])
    owner = np.repeat(np.arange(len(counts)), per_text)
    starts = first[owner] + (np.arange(offsets[-1]) - offsets[owner])
    lengths = np.minimum(counts[owner], n)
    return _span_hashes(unit_hashes, starts, lengths), offsets


def word_hashes(c: CodePoints, w: Words) -> np.ndarray:
    return _span_hashes(c.cp, w.begin, w.end - w.begin)


def shingles(texts: list[str], cfg: Shingling) -> tuple[np.ndarray, np.ndarray]:
    """Shingle hashes of every text of a batch: (uint64 hashes, int64 offsets of len n + 1)."""
    c = code_points(texts, cfg)
    if cfg.kind == "word":
        w = words(c)
        return _ngrams(word_hashes(c, w), w.first, cfg.n)
    cp, owner = c.cp, np.repeat(np.arange(c.n), c.lengths + 1)
    if cfg.whitespace:
        space = cp == _SPACE
        keep = ~space | np.r_[False, ~space[:-1]]  # one space after a word; leading spaces go
        cp, owner = cp[keep], owner[keep]
    first = np.searchsorted(owner, np.arange(c.n + 1))
    return _ngrams(cp, first, cfg.n)
