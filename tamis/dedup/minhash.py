"""MinHash signatures, LSH band keys and the bands × rows choice, vectorized over a batch.

Permutation k maps a 64-bit shingle hash h to ``a_k * h + b_k`` mod 2**64
(a_k odd: a bijection), with (a_k, b_k) drawn from a fixed seed; a signature
entry is the minimum over a text's shingles. All texts of a batch are done at
once: one pass over the batch's shingle hashes per permutation, reduced per
text with ``np.minimum.reduceat``. A text without shingles gets the all-max
signature and no band keys, so it never matches anything.
"""

from dataclasses import dataclass

import numpy as np

from tamis.dedup.shingles import Shingling, mix64, shingles
from tamis.errors import ConfigError

EMPTY = np.iinfo(np.uint64).max
_PERM_CHUNK = 8  # permutations evaluated together
_TEXT_GROUP = 1 << 20  # characters shingled together
_BLOCK = 16384  # shingles per block: the temporary is 8 × 16384 × 8 bytes = 1 MiB


@dataclass(frozen=True)
class LSHParams:
    num_perm: int = 128
    bands: int = 9
    rows: int = 13

    def validate(self) -> None:
        if self.bands < 1 or self.rows < 1 or self.bands * self.rows > self.num_perm:
            raise ConfigError(
                f"LSH needs bands × rows <= num_perm with both >= 1. Got {self.bands} × {self.rows} for {self.num_perm}."
            )


class MinHasher:
    """Signatures of shingle sets; two texts' equal entries estimate their Jaccard similarity."""

    def __init__(self, num_perm: int = 128, seed: int = 0):
        if num_perm < 1:
            raise ConfigError(f"The 'num_perm' parameter must be >= 1. Got {num_perm} instead.")
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        self.a = rng.integers(0, EMPTY, num_perm, dtype=np.uint64, endpoint=True) | np.uint64(1)
        self.b = rng.integers(0, EMPTY, num_perm, dtype=np.uint64, endpoint=True)

    def signatures(self, hashes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """(n, num_perm) uint64 signatures of the n shingle sets hashes[offsets[i]:offsets[i+1]].

        Works block by block of shingles so temporaries stay in cache (a block
        holds whole texts and pieces of long ones; a text's minimum is taken over its pieces).
        """
        n = len(offsets) - 1
        sig = np.full((n, self.num_perm), EMPTY, np.uint64)
        total = int(offsets[-1])
        for lo in range(0, total, _BLOCK):
            hi = min(lo + _BLOCK, total)
            first = int(np.searchsorted(offsets, lo, side="right")) - 1  # text holding shingle lo
            last = int(np.searchsorted(offsets, hi, side="left"))  # texts [first, last) meet the block
            docs = np.arange(first, last)
            starts = np.maximum(offsets[first:last], lo)
            has = starts < np.minimum(offsets[first + 1 : last + 1], hi)
            docs, starts = docs[has], starts[has] - lo
            block = hashes[lo:hi]
            for k in range(0, self.num_perm, _PERM_CHUNK):
                v = block[None, :] * self.a[k : k + _PERM_CHUNK, None]
                v += self.b[k : k + _PERM_CHUNK, None]
                part = np.minimum.reduceat(v, starts, axis=1).T
                sig[docs, k : k + _PERM_CHUNK] = np.minimum(sig[docs, k : k + _PERM_CHUNK], part)
        return sig

    def of_texts(self, texts: list[str], shingling: Shingling) -> np.ndarray:
        """Signatures of texts, shingled in groups of about 1M characters to bound the temporaries."""
        if not texts:
            return np.empty((0, self.num_perm), np.uint64)
        return np.concatenate([self.signatures(*shingles(group, shingling)) for group in text_groups(texts)])


def text_groups(texts: list[str], chars: int = _TEXT_GROUP) -> list[list[str]]:
    """Consecutive runs of texts of about `chars` characters each (a longer text is a group alone)."""
    if not texts:
        return []
    ends = np.cumsum([len(t) + 1 for t in texts])
    cuts = np.unique(np.searchsorted(ends, np.arange(chars, ends[-1], chars), side="right"))
    return [[texts[i] for i in g] for g in np.split(np.arange(len(texts)), cuts[cuts < len(texts)]) if len(g)]


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 bucket keys: a hash of each band's rows, salted by the band's index."""
    n = sig.shape[0]
    parts = sig[:, : bands * rows].reshape(n, bands, rows)
    acc = np.broadcast_to(mix64(np.arange(bands, dtype=np.uint64) + np.uint64(1)), (n, bands)).copy()
    for j in range(rows):
        acc = mix64(acc ^ parts[:, :, j])
    return acc


def has_shingles(sig: np.ndarray) -> np.ndarray:
    return sig[:, 0] != EMPTY


def estimate(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity: the fraction of equal signature entries (row-wise for 2-D input)."""
    return np.mean(sig_a == sig_b, axis=-1)


def collision_probability(s: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Chance that two texts of Jaccard s share at least one band: 1 - (1 - s**r)**b."""
    return 1.0 - (1.0 - s**rows) ** bands


def choose_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands × rows <= num_perm minimizing the weighted false positive + false negative mass.

    False positive mass: the collision probability integrated over Jaccard [0, t);
    false negative mass: the miss probability integrated over (t, 1] — the rule
    datasketch uses, on a fixed grid instead of adaptive quadrature.
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"The LSH threshold must be in (0, 1). Got {threshold} instead.")
    s = np.linspace(0.0, 1.0, 2001)
    below, above = s <= threshold, s >= threshold
    b, r = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]).T
    p = collision_probability(s[None, :], b[:, None], r[:, None])  # every (bands, rows) pair at once
    fp = np.trapezoid(p[:, below], s[below], axis=1)
    fn = np.trapezoid(1.0 - p[:, above], s[above], axis=1)
    best = int(np.argmin(fp_weight * fp + fn_weight * fn))  # the first minimum: fewest bands on ties
    return int(b[best]), int(r[best])
