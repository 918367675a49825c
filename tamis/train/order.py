"""The sample order of an epoch and its split over ranks and DataLoader workers (numpy only).

Samples are numbered 0..S-1 in their natural order (packed sequences in export
order, or Parquet rows in shard order) and grouped into blocks of consecutive
samples (fixed-size blocks of packed sequences; a Parquet row group each). An
epoch's order is a pure function of (block sizes, seed, epoch, buffer):

1. the blocks are permuted with a generator seeded by (seed, epoch);
2. consecutive permuted blocks are grouped into windows of at least `buffer`
   samples, and the samples of each window are permuted with (seed, epoch, window).

So a sample moves anywhere in the epoch at block granularity and anywhere within
its window, and a reader needs only one window's blocks at a time: a bounded
shuffle buffer that, unlike a streaming one, can be replayed from any position.

The global order does not depend on the number of ranks or workers. Position p
(from the resume point `start` on) goes to rank (p - start) % world; a rank's j-th
sample goes to worker (j // batch_size) % num_workers, which is the order in which
a DataLoader collects batches from its workers. Each rank therefore receives its
samples in global order whatever the worker count, and a resume from `start`
continues the same global sequence, even with another world size.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


def _rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(key))))


@dataclass(frozen=True)
class Split:
    """Who reads what: this rank and worker, and the batch size the DataLoader collects."""

    rank: int = 0
    world_size: int = 1
    worker: int = 0
    num_workers: int = 1
    batch_size: int = 1


class EpochOrder:
    """The order of one epoch over blocks with natural sample bounds `bounds` (len = blocks + 1)."""

    def __init__(self, bounds: np.ndarray, seed: int, epoch: int, buffer: int, shuffle: bool = True):
        self.bounds = np.asarray(bounds, dtype=np.int64)
        self.seed, self.epoch, self.shuffle = seed, epoch, shuffle
        sizes = np.diff(self.bounds)
        n_blocks = len(sizes)
        self.blocks = _rng(seed, epoch).permutation(n_blocks) if shuffle else np.arange(n_blocks)
        stream = np.concatenate([[0], np.cumsum(sizes[self.blocks])])
        # Window w is permuted blocks [first[w], first[w + 1]) and stream positions [starts[w], starts[w + 1]).
        first = [0]
        while first[-1] < n_blocks:
            target = stream[first[-1]] + max(1, buffer)
            first.append(min(n_blocks, max(first[-1] + 1, int(np.searchsorted(stream, target)))))
        self.first = np.asarray(first, dtype=np.int64)
        self.starts = stream[self.first]
        self.num_samples = int(stream[-1])

    @property
    def num_windows(self) -> int:
        return len(self.first) - 1

    def window_samples(self, w: int) -> np.ndarray:
        """Natural sample ids of window w, in epoch order."""
        blocks = self.blocks[self.first[w]:self.first[w + 1]]
        ids = np.concatenate([np.arange(self.bounds[b], self.bounds[b + 1]) for b in blocks] or [np.zeros(0, int)])
        if self.shuffle:
            ids = ids[_rng(self.seed, self.epoch, w + 1).permutation(len(ids))]
        return ids

    def window_blocks(self, w: int) -> np.ndarray:
        return self.blocks[self.first[w]:self.first[w + 1]]


def epoch_end(num_samples: int, split: Split, drop_last: bool) -> int:
    """Where the epoch stops: all samples, or (drop_last) a whole number of global batches."""
    if not drop_last:
        return num_samples
    step = split.world_size * split.batch_size
    return num_samples // step * step


def my_positions(order: EpochOrder, start: int, end: int, split: Split) -> Iterator[tuple[int, np.ndarray]]:
    """(window, ascending stream positions in it that this rank and worker read) for positions [start, end)."""
    world, per_batch, workers = split.world_size, split.batch_size, split.num_workers
    first_window = max(0, int(np.searchsorted(order.starts, start, side="right")) - 1)
    for w in range(first_window, order.num_windows):
        a, b = max(start, int(order.starts[w])), min(end, int(order.starts[w + 1]))
        if a >= end:
            break
        if a >= b:
            continue
        # this rank's local indices j with start + rank + world * j in [a, b)
        j = np.arange(-(-(a - start - split.rank) // world), -(-(b - start - split.rank) // world), dtype=np.int64)
        j = j[(j // per_batch) % workers == split.worker]
        if len(j):
            yield w, start + split.rank + world * j
