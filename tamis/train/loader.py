"""DataLoader: torch's, plus the resume state its dataset cannot see from inside worker processes.

With num_workers > 0 the dataset iterates in copies in other processes, so the
main process's dataset does not know how far training got. This loader counts
the samples it delivered and hands that count to the dataset's state_dict, as
mosaicml streaming's StreamingDataLoader does. After a full pass it moves the
dataset to the next epoch.
"""

from collections.abc import Iterator
from typing import Any

import torch
import torch.utils.data

from tamis.errors import ConfigError
from tamis.train.base import ResumableDataset


class DataLoader(torch.utils.data.DataLoader):
    """A torch DataLoader over a tamis training dataset with `state_dict()` / `load_state_dict()`."""

    def __init__(self, dataset: ResumableDataset, batch_size: int | None = None, **kwargs: Any):
        batch_size = dataset.batch_size if batch_size is None else batch_size
        if batch_size != dataset.batch_size:
            raise ConfigError(f"DataLoader batch_size {batch_size} is not the dataset's {dataset.batch_size}",
                              hint="give both the same batch_size: it makes the order independent of num_workers")
        super().__init__(dataset, batch_size=batch_size, **kwargs)
        self._delivered = 0

    def __iter__(self) -> Iterator[Any]:
        dataset: ResumableDataset = self.dataset
        epoch = dataset.epoch
        self._delivered = 0
        for batch in super().__iter__():
            self._delivered += _batch_len(batch)
            yield batch
        if dataset.epoch == epoch:  # iterated in workers: the main-process dataset did not see the pass end
            dataset.set_epoch(epoch + 1)
        self._delivered = 0

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict(num_samples=self._delivered)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)
        self._delivered = 0


def _batch_len(batch: Any) -> int:
    if isinstance(batch, dict):
        batch = next(iter(batch.values()))
    if isinstance(batch, torch.Tensor):
        return batch.shape[0]
    return len(batch)
