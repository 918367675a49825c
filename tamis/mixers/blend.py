"""Blending order: interleave the domains so that every prefix of the mixture tracks the target shares.

This is the greedy largest-shortfall rule of Megatron-LM's blended datasets
(`build_blending_indices` in megatron/core/datasets/helpers.cpp): at output
position s, every domain's shortfall `w_d * max(s, 1) - count_d` is computed,
the domain with the largest one (the first on ties) supplies its next sample,
and its count goes up by one. Nothing is random, so the order is a function of
the weights alone. After every prefix of length n, no domain is more than one
sample ahead of `w_d * n`; with two domains none is more than one behind, and
with up to 32 the shortfall stays below 2 (tests/test_mix_blend.py checks both).

Here the weights are the sample counts the mixer chose, `w_d = n_d / N`, and
the shortfall is kept in integers scaled by N, so the order uses every domain
exactly `n_d` times: a domain that has used its `n_d` samples has a negative
shortfall while some other domain's is at least zero.
"""

import numba
import numpy as np


@numba.njit(cache=False)
def _greedy(counts: np.ndarray, total: int) -> np.ndarray:  # pragma: no cover - compiled
    out = np.empty(total, np.int32)
    taken = np.zeros(len(counts), np.int64)
    for s in range(total):
        pos = max(s, 1)
        best = 0
        best_short = counts[0] * pos - taken[0] * total
        for d in range(1, len(counts)):
            short = counts[d] * pos - taken[d] * total
            if short > best_short:
                best = d
                best_short = short
        out[s] = best
        taken[best] += 1
    return out


def interleave(counts: np.ndarray | list[int]) -> np.ndarray:
    """The domain index (int32) of each output position, for `counts[d]` samples of domain d.

    Domains with no samples never appear (the rule would otherwise pick one on a tie at zero).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f"sample counts must be >= 0, got {counts.tolist()}")
    used = np.flatnonzero(counts > 0)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int32)
    return used.astype(np.int32)[_greedy(counts[used], total)]


def prefix_deviation(order: np.ndarray, counts: np.ndarray | list[int]) -> tuple[float, float]:
    """(most ahead, most behind) any domain gets of `w_d * n` over all prefixes n of `order`, in samples."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    n = np.arange(1, len(order) + 1, dtype=np.float64)
    ahead = behind = 0.0
    for d in np.flatnonzero(counts > 0):
        dev = np.cumsum(order == d) - n * (counts[d] / total)
        ahead, behind = max(ahead, float(dev.max())), max(behind, float(-dev.min()))
    return ahead, behind
