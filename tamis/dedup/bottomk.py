"""Bottom-k sketches: a fixed-size summary of a shingle set that estimates Jaccard similarity closely.

A text's sketch is the k smallest distinct 32-bit values of its shingle
hashes (salted by a seed and mixed), so it never exceeds 4k bytes whatever
the text's length. Two sketches estimate J(A, B) from the k smallest values
of their union: the share of them present in both sketches (a uniform sample
of A ∪ B, so the error shrinks like 1/sqrt(k) and does not depend on how many
shingles the texts have). When both texts have fewer than k distinct values
the sketches are the whole sets and the similarity is exact.

Per value it is as informative as a MinHash signature entry (the standard
deviation at J = 0.6 is ~0.043 for k = 128 either way), but it costs one sort
instead of k hash passes, so k = 1024 (~0.015, 4 KB) is affordable, and it is
exact for short texts.
"""

import numpy as np

from tamis.dedup.shingles import mix64

_LOW32 = np.uint64(0xFFFFFFFF)


def bottom_k(hashes: np.ndarray, offsets: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Sketches of the n shingle sets hashes[offsets[i]:offsets[i+1]]: (uint32 values, int64 offsets of len n + 1).

    Text i's sketch is values[out[i]:out[i+1]], ascending: its min(k, distinct) smallest distinct
    32-bit values. One sort of (text, value) keys for the whole batch; no loop per text.
    """
    n = len(offsets) - 1
    owner = np.repeat(np.arange(n, dtype=np.uint64), np.diff(offsets))
    salt = mix64(np.array([seed + 1], np.uint64))
    values = mix64(hashes ^ salt) >> np.uint64(32)
    keys = np.sort((owner << np.uint64(32)) | values)  # by text, then value
    if len(keys):  # distinct values (a sort and a mask: faster here than np.unique's hash table)
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
    first = np.searchsorted(keys >> np.uint64(32), np.arange(n + 1, dtype=np.uint64))
    rank = np.arange(len(keys)) - np.repeat(first[:-1], np.diff(first))
    kept = keys[rank < k]
    out = np.zeros(n + 1, np.int64)
    np.cumsum(np.minimum(np.diff(first), k), out=out[1:])
    return (kept & _LOW32).astype(np.uint32), out


def similarity(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Jaccard estimate from two bottom-k sketches (ascending uint32); exact when both hold fewer than k values."""
    if len(a) < k and len(b) < k:
        shared = len(np.intersect1d(a, b, assume_unique=True))
        union = len(a) + len(b) - shared
        return shared / union if union else 0.0
    union = np.union1d(a, b)[:k]
    both = np.intersect1d(a, b, assume_unique=True)
    return float(np.isin(union, both, assume_unique=True).sum()) / len(union)
