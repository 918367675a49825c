"""Exact deduplication on hashes of normalized text: whole documents, and C4-style lines or paragraphs.

A repeated text is kept where its id is smallest, so decisions do not depend
on input order, batching or workers. The pipeline shuffles only (hash, id,
batch key, row) tuples, partitioned into hash buckets resolved independently
with numpy, never the texts; a bucket holds about items / buckets rows.
"""

import hashlib
from typing import Literal

import numpy as np

from tamis.validation import Params

SEPARATORS = {"line": "\n", "paragraph": "\n\n"}


class ExactDedupConfig(Params):
    enabled: bool = True
    buckets: int = 64  # hash partitions resolved independently; raise with corpus size (~1M docs each)
    # C4-style dedup of text units across documents: every repeated line (or paragraph) is kept only in the
    # document with the smallest id and cut from the others; units shorter than min_unit_chars are left alone.
    units: Literal["off", "line", "paragraph"] = "off"
    min_unit_chars: int = 0


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def text_hashes(texts: list[str]) -> np.ndarray:
    """64-bit content hashes (blake2b, unseeded: stable across runs and machines)."""
    return np.fromiter((_hash(t) for t in texts), dtype=np.uint64, count=len(texts))


def unit_hashes(texts: list[str], unit: str, min_chars: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, row, position) of every line or paragraph at least `min_chars` long (blank ones skipped)."""
    hashes, rows, positions = [], [], []
    sep = SEPARATORS[unit]
    for row, text in enumerate(texts):
        for pos, part in enumerate(text.split(sep)):
            part = part.strip()
            if part and len(part) >= min_chars:
                hashes.append(_hash(part))
                rows.append(row)
                positions.append(pos)
    return np.array(hashes, dtype=np.uint64), np.array(rows, dtype=np.int64), np.array(positions, dtype=np.int64)


def first_occurrences(
    hashes: np.ndarray, ids: list[str], positions: np.ndarray | None = None, locations: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """For items repeating an earlier one, return (their indices, index of the kept item).

    "Earlier" is the smaller (id, location, position), so the first occurrence
    inside the document with the smallest id is kept. `locations` (where a
    document was read) only separates documents that share an id, so the
    choice between them never depends on the order items arrive in.
    """
    if len(ids) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    positions = np.zeros(len(ids), np.int64) if positions is None else positions
    locations = np.zeros(len(ids), np.int64) if locations is None else locations
    order = np.lexsort((positions, locations, np.asarray(ids, dtype=str), hashes))
    sorted_hashes = hashes[order]
    starts = np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]
    group_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    return order[~starts], group_first[~starts]


def remove_units(text: str, unit: str, positions: set[int]) -> str:
    sep = SEPARATORS[unit]
    return sep.join(p for i, p in enumerate(text.split(sep)) if i not in positions).strip()
