"""Text normalization applied before hashing and scoring, so every later stage sees one canonical text."""

import re
import unicodedata
from typing import Literal

import pyarrow as pa

from tamis.validation import Params


class NormalizeConfig(Params):
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    whitespace: bool = True  # collapse runs of spaces/tabs, trim lines, at most one blank line
    fix_control: bool = True  # drop control characters other than newline and tab

# Control characters except tab and newline; also lone surrogates that cannot be encoded.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# Unicode spaces other than the ASCII space (NBSP, thin space, ideographic space, ...).
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
# A run of 2+ spaces/tabs after a non-space. It starts on a [ \t] (the lookbehind comes second) so
# that re scans for that character set instead of trying the lookbehind at every position.
_INNER_RUN = re.compile(r"[ \t](?<=\S[ \t])[ \t]+")
_BLANK_RUN = re.compile(r"\n{3,}")


def _strip_line_ends(text: str) -> str:
    """`text` without spaces and tabs before each newline and at its end (re's `[ \t]+$`, MULTILINE)."""
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        return "\n".join(line.rstrip(" \t") for line in text.split("\n"))
    return text


def normalize_text(text: str, cfg: NormalizeConfig) -> str:
    """Canonical form: Unicode form, line endings, control characters and whitespace.

    Leading indentation is kept (code depends on it); runs of spaces inside a
    line become one space, trailing spaces go, and at most one blank line
    separates paragraphs.
    """
    if cfg.unicode_form != "none":
        text = unicodedata.normalize(cfg.unicode_form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if cfg.fix_control:
        text = _CONTROL.sub("", text)
    if cfg.whitespace:
        text = _SPACES.sub(" ", text)
        # Substring checks first: most texts need none of these rewrites, and `in` is far cheaper than a regex scan.
        if "  " in text or "\t" in text:
            text = _INNER_RUN.sub(" ", text)
        text = _strip_line_ends(text)
        if "\n\n\n" in text:
            text = _BLANK_RUN.sub("\n\n", text)
        text = text.strip()
    return text


def normalize_batch(batch: pa.RecordBatch, cfg: NormalizeConfig) -> pa.RecordBatch:
    texts = [normalize_text(t, cfg) for t in batch.column("text").to_pylist()]
    return batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(texts, pa.string()))
