"""Token counts per document: a real tokenizer from a local tokenizer.json (HF `tokenizers`), or an approximation.

Whichever counted is recorded as the mixture's tokenizer identity: the sha256
of the tokenizer.json, or the approximation and its ratio, so a training run
(and the tokenized export) can check that its tokenizer is the one the budget
was counted with. The tokenizer's own truncation and padding (MiniLM's file
truncates at 128) are switched off: a count is of the whole text, without
special tokens.
"""

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ResourceError
from tamis.mixers.spec import TokenizerSpec

PACKAGED = "all-MiniLM-L6-v2"


def tokenizer_file(path: str) -> str:
    """The tokenizer.json a configured path names: the file, a folder's tokenizer.json, or the packaged MiniLM's."""
    if path == PACKAGED:
        from tamis.embeddings import model_path

        candidate = Path(model_path()) / "tokenizer.json"
    else:
        candidate = Path(path)
        if candidate.is_dir():
            candidate = candidate / "tokenizer.json"
    if not candidate.is_file():
        raise ResourceError(
            f"tokenizer {path!r}: {candidate} is not a file",
            hint="give a local tokenizer.json (tokenizers are never downloaded), or set tokenizer.chars_per_token",
        )
    return str(candidate)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class TokenCounter:
    """Counts tokens of text arrays in batches; `identity` says what counted them."""

    def __init__(self, spec: TokenizerSpec):
        self.spec = spec
        self._tok = None
        if spec.path is not None:
            self.file = tokenizer_file(spec.path)
            self.identity: dict[str, Any] = {
                "kind": "tokenizer.json",
                "path": os.path.abspath(self.file),
                "sha256": _sha256(self.file),
            }
        else:
            self.file = None
            self.identity = {"kind": "approximate", "chars_per_token": spec.chars_per_token}

    def _tokenizer(self):
        if self._tok is None:
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(self.file)
            tok.no_truncation()
            tok.no_padding()
            self._tok = tok
        return self._tok

    def count(self, texts: pa.Array) -> np.ndarray:
        """Tokens (int64) of each text."""
        if self.file is None:
            chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.float64)
            return np.ceil(chars / self.spec.chars_per_token).astype(np.int64)
        tok = self._tokenizer()
        encode = getattr(tok, "encode_batch_fast", tok.encode_batch)  # _fast skips offsets (tokenizers >= 0.21)
        out = np.empty(len(texts), dtype=np.int64)
        step = self.spec.batch_size
        for start in range(0, len(texts), step):
            chunk = texts[start : start + step].to_pylist()
            out[start : start + len(chunk)] = [len(e.ids) for e in encode(chunk, add_special_tokens=False)]
        return out
