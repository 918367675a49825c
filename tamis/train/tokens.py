"""TokenDataset: fixed-length packed sequences read from a token export (tamis/io/token_shards.py).

The export's documents (each ending with its EOD id) form one token stream in
export order, i.e. the mix's blend order. Sample i is tokens [i·L, (i+1)·L) of
that stream, so every token is read once per epoch and only the last
(total mod L) tokens are left out; a sequence may span documents and shards.
Sequences are read by position from memory-mapped shards, so a worker touches
only the pages of its own samples. For next-token training, ask for L = context + 1
and shift: inputs `ids[:-1]`, labels `ids[1:]`.

With `document_mask`, a sample also says where its documents start, so
attention can be kept inside each document:

    "segments"   segment_ids (int32: 0 for the first document piece in the sample, then 1, 2, ...)
                 and position_ids (int64: position within the document, from 0 at each start),
                 for FlexAttention document masks or varlen kernels (cu_seqlens from the changes)
    "attention"  attention_mask (bool [L, L]: causal and same document) and position_ids
"""

import os
from collections.abc import Iterable
from itertools import chain
from typing import Any, Literal

import numpy as np
import torch

from tamis.errors import ConfigError
from tamis.io import manifest, token_shards
from tamis.train.base import ResumableDataset
from tamis.train.checks import BackgroundChecks

DocumentMask = Literal["none", "segments", "attention"]
BLOCKS_PER_WINDOW = 8  # a shuffle window spans this many blocks of shuffle_buffer / 8 sequences
CHUNK = 256  # sequences copied per step: 2 MiB of int64 at 1,024 tokens


class TokenDataset(ResumableDataset):
    """Packed sequences of `seq_len` tokens from the export at `root`, shuffled, split, resumable.

    `tokenizer`: the training run's tokenizer.json; refused unless it is the export's
    (by sha256). `verify`: check each shard's sha256 the first time a process opens
    it (sizes are always checked). `batch_size`: the DataLoader's, so that the
    order does not depend on the worker count.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        seq_len: int,
        *,
        tokenizer: str | os.PathLike | None = None,
        document_mask: DocumentMask = "none",
        verify: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        shuffle_buffer: int = 1 << 14,
        batch_size: int = 1,
        drop_last: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__(shuffle=shuffle, seed=seed, shuffle_buffer=shuffle_buffer, batch_size=batch_size,
                         drop_last=drop_last, rank=rank, world_size=world_size)
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ConfigError(f"The 'seq_len' parameter of TokenDataset must be an int >= 1. Got {seq_len!r}.")
        if document_mask not in ("none", "segments", "attention"):
            raise ConfigError(f"The 'document_mask' parameter of TokenDataset must be none, segments or attention. "
                              f"Got {document_mask!r}.")
        self.root, self.seq_len, self.document_mask, self.verify = str(root), seq_len, document_mask, verify
        self.export = token_shards.read_export(self.root, verify=False)
        if verify:  # the small files (markers, tokenizer) now; each shard's sha256 when it is first needed
            shards = {e[part]["path"] for e in self.export["shards"] for part in ("idx", "bin")}
            manifest.verify_files(self.root, {"files": [f for f in self.export["files"] if f["path"] not in shards]})
        if tokenizer is not None:
            token_shards.check_tokenizer(self.export, tokenizer, self.root)
        self.eod_id = int(self.export["eod_id"])
        counts = np.array([s["tokens"] for s in self.export["shards"]], dtype=np.int64)
        self.shard_starts = np.concatenate([[0], np.cumsum(counts)])  # global token offset of each shard
        self.num_tokens = int(self.shard_starts[-1])
        self.num_samples = self.num_tokens // seq_len
        block = max(1, -(-shuffle_buffer // BLOCKS_PER_WINDOW))
        self.bounds = np.append(np.arange(0, self.num_samples, block), self.num_samples)
        self._shards: dict[int, token_shards.Shard] = {}
        self._checks = BackgroundChecks()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_shards"] = {}  # each process opens (and verifies) shards itself
        return state

    def _extra_state(self) -> dict[str, Any]:
        return {"seq_len": self.seq_len, "tokens": self.num_tokens}

    def _plan(self, order) -> None:
        if not self.verify:
            return
        first = np.searchsorted(self.shard_starts, self.bounds[order.blocks] * self.seq_len, side="right") - 1
        used = dict.fromkeys([*first.tolist(), *range(len(self.export["shards"]))])
        self._checks.plan([job for k in used for job in self._jobs(k)])

    def _jobs(self, k: int) -> list[tuple[Any, str, str]]:
        entry = self.export["shards"][k]
        return [((k, part), os.path.join(self.root, entry[part]["path"]), entry[part]["sha256"])
                for part in ("idx", "bin")]

    def _shard(self, k: int) -> token_shards.Shard:
        if k not in self._shards:
            shard = token_shards.open_shard(self.root, self.export["shards"][k], verify=False)  # sizes
            if self.verify:
                for job in self._jobs(k):
                    self._checks.wait(*job)
            self._shards[k] = shard
        return self._shards[k]

    def _fetch(self, ids: np.ndarray) -> Iterable[dict[str, Any]]:
        return chain.from_iterable(self._chunk(ids[at:at + CHUNK]) for at in range(0, len(ids), CHUNK))

    def _chunk(self, ids: np.ndarray) -> list[dict[str, Any]]:
        """Copy the sequences of `ids` into one int64 matrix, then yield its rows (views) as samples."""
        L, starts = self.seq_len, self.shard_starts
        out = np.empty((len(ids), L), dtype=np.int64)
        first = np.searchsorted(starts, ids * L, side="right") - 1
        masks = []
        for r, (a, k) in enumerate(zip((ids * L).tolist(), first.tolist(), strict=True)):
            base = int(starts[k])
            if a + L <= starts[k + 1] and self.document_mask == "none":
                out[r] = self._shard(k).tokens[a - base:a - base + L]
            else:
                out[r], ends = self._read(a, a + L, k)
                masks.append(ends)
        rows = torch.from_numpy(out).unbind(0)
        samples = [{"input_ids": row, "sample": i} for row, i in zip(rows, ids.tolist(), strict=True)]
        if self.document_mask != "none":
            for sample, ends in zip(samples, masks, strict=True):
                sample.update(self._mask(ends))
        return samples

    def _read(self, a: int, b: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Tokens [a, b) of the stream from shard k on, and the document ends inside (a, b] relative to a."""
        parts, ends, origin = [], [], a
        while a < b:
            shard, base = self._shard(k), int(self.shard_starts[k])
            stop = min(b, int(self.shard_starts[k + 1]))
            parts.append(shard.tokens[a - base:stop - base])
            if self.document_mask != "none":
                lo, hi = np.searchsorted(shard.ends, [a - base, stop - base], side="right")
                ends.append(shard.ends[lo:hi] + base)
            a, k = stop, k + 1
        tokens = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return tokens, (np.concatenate(ends) - origin if ends else np.zeros(0, np.int64))

    def _mask(self, ends: np.ndarray) -> dict[str, torch.Tensor]:
        L = self.seq_len
        starts = ends[ends < L]  # a document ending at position e means the next starts at e
        segment = np.zeros(L, dtype=np.int32)
        segment[starts] = 1
        segment = np.cumsum(segment, dtype=np.int32)
        position = np.arange(L, dtype=np.int64) - np.concatenate([[0], starts])[segment]
        out = {"position_ids": torch.from_numpy(position)}
        if self.document_mask == "segments":
            out["segment_ids"] = torch.from_numpy(segment)
        else:
            same = segment[:, None] == segment[None, :]
            out["attention_mask"] = torch.from_numpy(np.tril(same))
        return out
