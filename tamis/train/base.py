"""What both training datasets share: the rank/worker split, the epoch, and the resume state.

The state is a small dict in the shape of mosaicml streaming's: epoch,
sample_in_epoch (global stream position reached, i.e. samples consumed by all
ranks together) and the shuffle settings. It does not record the world size or
the worker count, because the order depends on neither (see tamis.train.order).
"""

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from tamis.errors import ConfigError
from tamis.train.order import EpochOrder, Split, epoch_end, my_positions

STATE_VERSION = 1


def world() -> tuple[int, int]:
    """(rank, world size): torch.distributed when initialized, else torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


class ResumableDataset(IterableDataset):
    """Iterates `self.num_samples` samples in an EpochOrder, split over ranks and workers, resumable.

    Subclasses set `num_samples` and `bounds` (block bounds in natural sample ids)
    and implement `_fetch(ids)`, which yields the samples `ids` (all from one
    window, in that order), and may implement `_plan(order)`. Use the same
    `batch_size` as the DataLoader.
    """

    num_samples: int
    bounds: np.ndarray

    def __init__(self, *, shuffle: bool, seed: int, shuffle_buffer: int, batch_size: int, drop_last: bool,
                 rank: int | None, world_size: int | None):
        super().__init__()
        for name, value, least in (("shuffle_buffer", shuffle_buffer, 1), ("batch_size", batch_size, 1)):
            if not isinstance(value, int) or value < least:
                raise ConfigError(f"The '{name}' parameter of the dataset must be an int >= {least}. Got {value!r}.")
        found_rank, found_world = world()
        self.rank = found_rank if rank is None else rank
        self.world_size = found_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is not in [0, world_size {self.world_size})")
        self.shuffle, self.seed, self.shuffle_buffer = shuffle, seed, shuffle_buffer
        self.batch_size, self.drop_last = batch_size, drop_last
        self.epoch = 0
        self._start = 0  # stream position this epoch's iteration begins at (a resume point)
        self._yielded = 0  # samples this object yielded in this process since the iteration began

    # ------------------------------------------------------------ epochs and state

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch to iterate; the same epoch again keeps a loaded resume point."""
        if epoch != self.epoch:
            self.epoch, self._start, self._yielded = epoch, 0, 0

    def _extra_state(self) -> dict[str, Any]:
        """Settings a subclass's sample numbering depends on (checked on load)."""
        return {}

    def _settings(self) -> dict[str, Any]:
        return {**self._extra_state(), "num_samples": self.num_samples, "shuffle": self.shuffle,
                "shuffle_seed": self.seed, "shuffle_buffer": self.shuffle_buffer}

    def state_dict(self, num_samples: int | None = None) -> dict[str, Any]:
        """Where to resume: `num_samples` this rank consumed since this epoch's iteration began.

        Without it, the count of samples this object yielded in this process,
        which is right for num_workers=0; with DataLoader workers use
        tamis.train.DataLoader, whose state_dict passes the count it delivered.
        Ranks are assumed to consume in step (as in DDP), so rank 0's state serves all.
        """
        consumed = self._yielded if num_samples is None else num_samples
        end = self._end()
        position = min(end, self._start + consumed * self.world_size)
        epoch = self.epoch
        if position >= end:
            epoch, position = epoch + 1, 0
        return {"version": STATE_VERSION, "epoch": epoch, "sample_in_epoch": position, **self._settings()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at the next sample of a saved state; refuse one saved over other data or shuffle settings."""
        if state.get("version") != STATE_VERSION:
            raise ConfigError(f"loader state version {state.get('version')!r} is not {STATE_VERSION}")
        for key, value in self._settings().items():
            if state.get(key) != value:
                raise ConfigError(
                    f"the saved loader state has {key}={state.get(key)!r}, this dataset {value!r}: "
                    "it cannot resume exactly", hint="resume with the same export and shuffle settings")
        self.epoch, self._start, self._yielded = int(state["epoch"]), int(state["sample_in_epoch"]), 0

    # ------------------------------------------------------------ iteration

    def _end(self) -> int:
        return epoch_end(self.num_samples, Split(self.rank, self.world_size, 0, 1, self.batch_size), self.drop_last)

    def split(self) -> Split:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        return Split(self.rank, self.world_size, worker, workers, self.batch_size)

    def order(self) -> EpochOrder:
        return EpochOrder(self.bounds, self.seed, self.epoch, self.shuffle_buffer, self.shuffle)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        order, split = self.order(), self.split()
        self._yielded = 0
        self._plan(order)
        for w, positions in my_positions(order, self._start, self._end(), split):
            ids = order.window_samples(w)[positions - order.starts[w]]
            for sample in self._fetch(ids):
                self._yielded += 1
                yield sample
        # A finished pass: the next is the next epoch, here and in a persistent worker's copy alike
        # (the main process's copy is moved on by tamis.train.DataLoader).
        self.epoch, self._start, self._yielded = self.epoch + 1, 0, 0

    def _fetch(self, ids: np.ndarray) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    def _plan(self, order: EpochOrder) -> None:
        """Start work ahead of the epoch (checksums of the files in the order it will open them)."""

    def __len__(self) -> int:
        """Samples this rank reads in a full epoch."""
        end = self._end()
        return max(0, -(-(end - self.rank) // self.world_size))

