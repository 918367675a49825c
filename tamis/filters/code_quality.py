"""StarCoder-style source-file filters: line lengths, alphanumeric fraction and the share of non-code.

Defaults are the StarCoder data recipe (Li et al., 2023): drop a file whose
average line length exceeds 100, whose longest line exceeds 1000 characters
(minified or data blobs), or whose alphanumeric fraction is under 0.25.
The non-code share is the fraction of non-blank characters inside comments
and docstrings; SantaCoder dropped files outside [0.01, 0.8], here only the
upper bound is on by default, since short code without comments is fine.

Comments are found by one scanner per comment syntax that also skips string
literals, so `"http://x"` is code, not a comment. Every scanner branch always
matches once started (an unclosed block comment runs to the end), so a scan
is linear in the text whatever it holds.
"""

import re

import numpy as np

from tamis.errors import ConfigError
from tamis.filters.base import Filter, first_reason
from tamis.filters.code_lang import languages
from tamis.filters.registry import register
from tamis.filters.text import DocView

_DQ = r'"(?:[^"\\\n]|\\.)*"?'
_SQ = r"'(?:[^'\\\n]|\\.)*'?"
_BT = r"`[^`]*`?"
_BLOCK = r"/\*[\s\S]*?(?:\*/|\Z)"
_TRIPLE = r'"""[\s\S]*?(?:"""|\Z)' + r"|'''[\s\S]*?(?:'''|\Z)"


def _scanner(strings: list[str], comments: list[str], docstrings: str = "") -> re.Pattern:
    """Strings and comments in one alternation; docstrings go first so that `\"\"\"` is not read as `\"\"`."""
    doc = f"(?P<d>{docstrings})|" if docstrings else ""
    return re.compile(f"{doc}(?P<s>{'|'.join(strings)})|(?P<c>{'|'.join(comments)})")


SCANNERS = {
    "c": _scanner([_DQ, _SQ, _BT], [r"//[^\n]*", _BLOCK]),
    "c_hash": _scanner([_DQ, _SQ], [r"//[^\n]*", r"#[^\n]*", _BLOCK]),  # PHP, Thrift
    "python": _scanner([_DQ, _SQ], [r"#[^\n]*"], docstrings=_TRIPLE),  # docstrings count as non-code
    "hash": _scanner([_DQ, _SQ], [r"#[^\n]*"]),
    "lua": _scanner([_DQ, _SQ], [r"--\[(?P<eq>=*)\[[\s\S]*?(?:\](?P=eq)\]|\Z)", r"--[^\n]*"]),
    "sql": _scanner([_DQ, _SQ], [r"--[^\n]*", _BLOCK]),
    "haskell": _scanner([_DQ], [r"\{-[\s\S]*?(?:-\}|\Z)", r"--[^\n]*"]),
    "percent": _scanner([_DQ], [r"%[^\n]*"]),  # Erlang, TeX
    "lisp": _scanner([_DQ], [r";[^\n]*"]),
    "markup": _scanner([], [r"<!--[\s\S]*?(?:-->|\Z)"]),
}
_C = "C C++ C# Java Kotlin Scala Groovy Go Rust Swift Objective-C Objective-C++ D JavaScript TypeScript Dart Haxe SWIG CSS SCSS Zig Verilog F#".split()
_HASH = "Shell Perl Ruby R YAML TOML CMake Makefile Dockerfile Elixir Julia PowerShell Tcl Nim Meson".split()
SYNTAX = {
    **dict.fromkeys(_C, "c"),
    **dict.fromkeys(_HASH, "hash"),
    "PHP": "c_hash", "Thrift": "c_hash", "Protocol Buffer": "c", "Python": "python", "Cython": "python",
    "Lua": "lua", "SQL": "sql", "Haskell": "haskell", "Erlang": "percent", "TeX": "percent",
    "Common Lisp": "lisp", "Emacs Lisp": "lisp", "Scheme": "lisp", "Racket": "lisp", "Clojure": "lisp",
    "HTML": "markup", "XML": "markup", "Markdown": "markup",
}  # fmt: skip
_WS = re.compile(r"\s+")
_ALNUM = re.compile(r"[^\W_]+")


def _solid(s: str) -> int:
    return len(_WS.sub("", s))


def comment_fraction(text: str, lang: str) -> float:
    """Share of non-blank characters in comments/docstrings; 0.0 for a language without a known syntax."""
    syntax = SYNTAX.get(lang)
    total = _solid(text)
    if syntax is None or total == 0:
        return 0.0
    comment = sum(_solid(m.group()) for m in SCANNERS[syntax].finditer(text) if m.lastgroup != "s")
    return comment / total


def line_stats(text: str) -> tuple[float, int, float]:
    """(average line length, longest line, alphanumeric fraction)."""
    lengths = [len(line) for line in text.split("\n")]
    alnum = len(text) - len(_ALNUM.sub("", text))
    return sum(lengths) / len(lengths), max(lengths), (alnum / len(text) if text else 0.0)


@register
class StarCoderCode(Filter):
    """Adds avg_line_length, max_line_length, alnum_fraction, comment_fraction; drops by the thresholds."""

    name = "code_starcoder"
    max_avg_line_length: float = 100.0
    max_line_length: int = 1000
    min_alnum_fraction: float = 0.25
    min_comment_fraction: float = 0.0  # SantaCoder: 0.01
    max_comment_fraction: float = 0.8

    def check(self) -> None:
        for key in ("min_alnum_fraction", "min_comment_fraction", "max_comment_fraction"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ConfigError(
                    f"The {key!r} parameter of code_starcoder must be in [0, 1]. Got {getattr(self, key)} instead."
                )

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        stats = [line_stats(t) for t in docs.texts]
        langs = languages(docs)
        return {
            self.col("avg_line_length"): np.array([s[0] for s in stats], dtype=np.float64),
            self.col("max_line_length"): np.array([s[1] for s in stats], dtype=np.int64),
            self.col("alnum_fraction"): np.array([s[2] for s in stats], dtype=np.float64),
            self.col("comment_fraction"): np.array(
                [comment_fraction(t, lang) for t, (lang, _) in zip(docs.texts, langs, strict=True)], dtype=np.float64
            ),
        }

    def rule(self, scores: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        c = scores[self.col("comment_fraction")]
        return first_reason(
            len(c),
            [
                (self.col("avg_line_length"), scores[self.col("avg_line_length")] > self.max_avg_line_length),
                (self.col("max_line_length"), scores[self.col("max_line_length")] > self.max_line_length),
                (self.col("alnum_fraction"), scores[self.col("alnum_fraction")] < self.min_alnum_fraction),
                (self.col("comment_fraction"), (c < self.min_comment_fraction) | (c > self.max_comment_fraction)),
            ],
        )
