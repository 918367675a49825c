"""Blending order: interleave the domains so that every prefix of the mixture tracks the target shares.

This is the greedy largest-shortfall rule of Megatron-LM's blended datasets
(`build_blending_indices` in megatron/core/datasets/helpers.cpp): at output
position s, every domain's shortfall `w_d * max(s, 1) - count_d` is computed,
the domain with the largest one (the first on ties) supplies its next sample,
and its count goes up by one. Nothing is random, so the order is a function of
the weights alone. After every prefix of length n, no domain is more than one
sample ahead of `w_d * n`; with two domains none is more than one behind, and
with up to 32 the shortfall stays below 2 (tests/test_mix_blend.py checks both).

Megatron's samples are fixed-length sequences, so its sample shares are token
shares. A mixture's samples are documents of very different lengths, so by
default the same rule runs on tokens: s counts the tokens emitted so far and
count_d the tokens of domain d, and the chosen domain's next document adds its
length. Every prefix's token shares then stay on target within about one
document per domain (counting samples instead leaves the token shares of
prefixes as noisy as a random order). With every length 1 the two are the same.

Here the weights are what the mixer chose, `w_d` = the domain's share of
samples (or tokens), and a domain whose samples are used up is skipped, so the
order uses every domain's samples exactly, in their given order.
"""

import numba
import numpy as np


@numba.njit(cache=False)
def _greedy(counts: np.ndarray, lengths: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    n_dom = len(counts)
    total = counts.sum()
    starts = np.zeros(n_dom, np.int64)
    mass = np.zeros(n_dom, np.float64)
    for d in range(n_dom):
        starts[d] = counts[:d].sum()
        mass[d] = lengths[starts[d] : starts[d] + counts[d]].sum()
    grand = mass.sum()
    weights = mass / grand if grand > 0 else counts / max(total, 1)
    out = np.empty(total, np.int32)
    taken = np.zeros(n_dom, np.int64)
    got = np.zeros(n_dom, np.float64)
    emitted = 0.0
    for s in range(total):
        best = -1
        best_short = 0.0
        for d in range(n_dom):
            if taken[d] == counts[d]:
                continue
            short = weights[d] * max(emitted, 1.0) - got[d]
            if best < 0 or short > best_short:
                best = d
                best_short = short
        length = lengths[starts[best] + taken[best]] if grand > 0 else 1.0
        out[s] = best
        taken[best] += 1
        got[best] += length
        emitted += length
    return out


def interleave(counts: np.ndarray | list[int], lengths: np.ndarray | None = None) -> np.ndarray:
    """The domain index (int32) of each output position, for `counts[d]` samples of domain d.

    `lengths`: each sample's tokens, grouped by domain in the order the samples
    are used (domain 0's first); None blends by sample count, as Megatron does.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f"sample counts must be >= 0, got {counts.tolist()}")
    total = int(counts.sum())
    if lengths is None:
        lengths = np.ones(total, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if len(lengths) != total:
        raise ValueError(f"{len(lengths)} lengths for {total} samples")
    if total == 0:
        return np.zeros(0, np.int32)
    return _greedy(counts, lengths)


def prefix_deviation(order: np.ndarray, counts: np.ndarray | list[int],
                     lengths: np.ndarray | None = None) -> tuple[float, float]:
    """(most ahead, most behind) any domain gets of its share over all prefixes of `order`.

    In samples, or with `lengths` (as given to `interleave`) in tokens.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if lengths is None:
        lengths = np.ones(int(counts.sum()), dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(counts)])
    mass = np.array([lengths[starts[d] : starts[d + 1]].sum() for d in range(len(counts))], dtype=np.float64)
    if mass.sum() == 0:
        return 0.0, 0.0
    step = np.empty(len(order), dtype=np.float64)
    for d in np.flatnonzero(counts > 0):
        step[order == d] = lengths[starts[d] : starts[d + 1]]
    emitted = np.cumsum(step)
    ahead = behind = 0.0
    for d in np.flatnonzero(counts > 0):
        dev = np.cumsum(np.where(order == d, step, 0.0)) - emitted * (mass[d] / mass.sum())
        ahead, behind = max(ahead, float(dev.max())), max(behind, float(-dev.min()))
    return ahead, behind
