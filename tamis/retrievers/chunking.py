"""Cut documents into the chunks that retrieval augmentation queries with: fixed token windows or paragraphs.

`tokens` is RETRO's chunking (Borgeaud et al. 2022): consecutive windows of
`size` tokens of a tokenizer.json (HF `tokenizers`; by default the one the
packaged MiniLM ships), without overlap. `paragraphs` splits at line breaks
and merges neighbouring paragraphs until a chunk has `min_chars`; a paragraph
longer than `max_chars` is cut at the last whitespace before the limit.

Either way the chunks of a document tile its text: chunk i is
text[start_i:end_i], the first starts at 0, each ends where the next starts,
the last ends at len(text), so the chunks joined give the document back.
A token chunk starts at its first token (the whitespace before it belongs to
the previous chunk); a document without tokens (empty, only spaces) has no chunk.
"""

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np

from tamis.errors import ConfigError
from tamis.validation import Params

PACKAGED = "all-MiniLM-L6-v2"
_BREAKS = re.compile(r"\n+")
_SPACE = re.compile(r"\s")


class ChunkConfig(Params):
    """How documents become query chunks."""

    by: Literal["tokens", "paragraphs"] = "tokens"
    size: int = 64  # tokens per chunk (RETRO's 64)
    tokenizer: str = PACKAGED  # a tokenizer.json, a folder holding one, or the packaged MiniLM's
    min_chars: int = 200  # paragraphs: merge until a chunk has at least this many characters
    max_chars: int = 2000  # paragraphs: cut longer ones
    max_chunks: int | None = None  # per document: the first N chunks only (None: all)

    def check(self) -> None:
        for name, least in (("size", 1), ("min_chars", 1), ("max_chars", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"The {name!r} parameter of chunking must be >= {least}. Got {getattr(self, name)} instead.")
        if self.min_chars > self.max_chars:
            raise ConfigError(f"The 'min_chars' parameter of chunking must be <= max_chars ({self.max_chars}). "
                              f"Got {self.min_chars} instead.")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ConfigError(f"The 'max_chunks' parameter of chunking must be >= 1 or null. Got {self.max_chunks} instead.")


@dataclass
class Chunks:
    """The chunks of a batch of documents, in document then position order."""

    doc: np.ndarray  # int64: the document (index into the batch) of each chunk
    number: np.ndarray  # int32: the chunk's position in its document, from 0
    start: np.ndarray  # int64: character span [start, end) in the document's text
    end: np.ndarray

    def __len__(self) -> int:
        return len(self.doc)


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(path)
    tok.no_truncation()  # MiniLM's file truncates at 128 tokens and pads
    tok.no_padding()
    return tok


def tokenizer_identity(cfg: ChunkConfig) -> dict[str, str] | None:
    """The tokenizer file and its sha256, recorded in the manifest (None when chunking by paragraphs)."""
    if cfg.by != "tokens":
        return None
    from tamis.mixers.tokens import tokenizer_file

    path = tokenizer_file(cfg.tokenizer)
    with open(path, "rb") as f:
        return {"path": path, "sha256": hashlib.sha256(f.read()).hexdigest()}


class Chunker:
    def __init__(self, cfg: ChunkConfig):
        self.cfg = cfg
        self._file = None
        if cfg.by == "tokens":
            from tamis.mixers.tokens import tokenizer_file

            self._file = tokenizer_file(cfg.tokenizer)

    def chunk(self, texts: list[str]) -> Chunks:
        spans = self._token_spans(texts) if self.cfg.by == "tokens" else [paragraph_spans(t, self.cfg) for t in texts]
        cap = self.cfg.max_chunks
        doc, number, start, end = [], [], [], []
        for i, s in enumerate(spans):
            s = s[:cap] if cap else s
            doc.append(np.full(len(s), i, np.int64))
            number.append(np.arange(len(s), dtype=np.int32))
            start.append(np.asarray([a for a, _ in s], np.int64))
            end.append(np.asarray([b for _, b in s], np.int64))
        if not doc:
            empty = np.zeros(0, np.int64)
            return Chunks(empty, np.zeros(0, np.int32), empty, empty)
        return Chunks(np.concatenate(doc), np.concatenate(number), np.concatenate(start), np.concatenate(end))

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        tok = _tokenizer(self._file)
        size = self.cfg.size
        out = []
        for text, enc in zip(texts, tok.encode_batch(texts, add_special_tokens=False), strict=True):
            offsets = enc.offsets
            if not offsets:
                out.append([])
                continue
            starts = [0] + [offsets[j][0] for j in range(size, len(offsets), size)]
            out.append(list(zip(starts, starts[1:] + [len(text)], strict=True)))
        return out


def paragraph_spans(text: str, cfg: ChunkConfig) -> list[tuple[int, int]]:
    """Spans of merged paragraphs that tile `text`; none for a text of only whitespace."""
    if not text.strip():
        return []
    cuts = [m.end() for m in _BREAKS.finditer(text) if m.end() < len(text)]  # a paragraph keeps its line break
    pieces = []
    for a, b in zip([0] + cuts, cuts + [len(text)], strict=True):
        pieces += _split_long(text, a, b, cfg.max_chars)
    spans: list[tuple[int, int]] = []
    for a, b in pieces:  # greedy: grow the current chunk while it is short and the merge fits
        if spans and spans[-1][1] - spans[-1][0] < cfg.min_chars and b - spans[-1][0] <= cfg.max_chars:
            spans[-1] = (spans[-1][0], b)
        else:
            spans.append((a, b))
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < cfg.min_chars and spans[-1][1] - spans[-2][0] <= cfg.max_chars:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]  # a short tail joins the chunk before it
    return spans


def _split_long(text: str, a: int, b: int, limit: int) -> list[tuple[int, int]]:
    """[a, b) in pieces of at most `limit` characters, cut after the last whitespace before the limit when any."""
    out = []
    while b - a > limit:
        window = text[a : a + limit]
        spaces = [m.end() for m in _SPACE.finditer(window)]
        cut = a + (spaces[-1] if spaces and spaces[-1] > limit // 2 else limit)
        out.append((a, cut))
        a = cut
    out.append((a, b))
    return out
