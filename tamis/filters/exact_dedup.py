"""Exact deduplication on a hash of the normalized text: the smallest id of each text is kept.

The pipeline hashes every document, partitions the (hash, id, batch key)
triples into hash buckets and resolves each bucket independently, so only
hashes and ids are shuffled, never texts; a bucket holds about
corpus_docs / n_buckets rows of 24 bytes plus the id strings.
"""

import hashlib

import numpy as np


def text_hashes(texts: list[str]) -> np.ndarray:
    """64-bit content hashes (first 8 bytes of blake2b, fixed, unseeded: stable across runs and machines)."""
    out = np.empty(len(texts), dtype=np.uint64)
    for i, t in enumerate(texts):
        out[i] = int.from_bytes(hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
    return out


def first_occurrences(hashes: np.ndarray, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """For rows that repeat an earlier text, return (row indices of duplicates, row index of the kept row).

    "Earlier" means a smaller id, so the decision is independent of input order
    and of how the corpus was split into batches or workers.
    """
    if len(ids) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    id_arr = np.asarray(ids, dtype=object)
    order = np.lexsort((id_arr.astype(str), hashes))
    sorted_hashes = hashes[order]
    starts = np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]
    group_first = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
    dup = ~starts
    return order[dup], group_first[dup]
