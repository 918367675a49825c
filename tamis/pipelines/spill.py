"""Spill: keep record batches on local disk, not in the runner's memory, while they wait.

A batch that is consumed twice across a barrier (a stage's decisions come
back as a side input or a join after a shuffle; the write stage groups a
file's batches; a Flatten waits for all its inputs) must be held until the
barrier opens. Dataflow holds it in
its disk-backed shuffle; Beam's local runner holds every waiting element in
memory, so a local run's memory would grow with the corpus. Spilling writes
each waiting batch to an LZ4-compressed Arrow IPC file and passes a small
`Spilled` reference through the barrier instead; `load` turns either back
into the batch. The folder comes from the pipeline option `--tamis_spill_dir`
(set for local runs by tamis.pipelines.options; unset, nothing spills); it is
the run's scratch space and is removed when the run ends.

Counters per hold, `spill/<label>_batches`, `_arrow_bytes` (the batches' Arrow
buffers: what Dataflow would shuffle where a held batch meets a join) and
`_file_bytes` (compressed, on local disk).
"""

import os
import uuid
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class SpillOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--tamis_spill_dir", default=None, help="local folder for batches waiting at a barrier")


@dataclass(frozen=True)
class Spilled:
    """A batch written to `path`; `rows` lets writers count without reading it back."""

    path: str
    rows: int


def save(folder: str, batch: pa.RecordBatch) -> Spilled:
    """Write a batch under a fresh name (a retried bundle writes a new file, never half of an old one)."""
    path = os.path.join(folder, f"{uuid.uuid4().hex}.arrow")
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, batch.schema, options=_OPTIONS) as writer:
        writer.write_batch(batch)
    return Spilled(path, batch.num_rows)


def load(item: pa.RecordBatch | Spilled) -> pa.RecordBatch:
    if isinstance(item, Spilled):
        with pa.OSFile(item.path, "rb") as source:
            return pa.ipc.open_file(source).get_batch(0)
    return item


def rows(item: pa.RecordBatch | Spilled) -> int:
    return item.rows if isinstance(item, Spilled) else item.num_rows


class _Save(beam.DoFn):
    def __init__(self, folder: str, label: str):
        self.folder, self.label = folder, label

    def setup(self):
        os.makedirs(self.folder, exist_ok=True)
        self.batches = Metrics.counter("spill", f"{self.label}_batches")
        self.arrow_bytes = Metrics.counter("spill", f"{self.label}_arrow_bytes")
        self.file_bytes = Metrics.counter("spill", f"{self.label}_file_bytes")

    def _save(self, batch):
        if isinstance(batch, Spilled):
            return batch
        spilled = save(self.folder, batch)
        self.batches.inc()
        self.arrow_bytes.inc(batch.nbytes)
        self.file_bytes.inc(os.path.getsize(spilled.path))
        return spilled

    def process(self, element):
        key, value = element
        if isinstance(value, tuple):  # (sub key, batch), as the write stage's inputs are keyed
            sub, batch = value
            yield key, (sub, self._save(batch))
        else:
            yield key, self._save(value)


class Spill(beam.PTransform):
    """(key, batch) or (key, (sub key, batch)) → the same with the batch spilled; unchanged when not spilling.

    A batch spilled already passes through, so a branch can be spilled before a Flatten and again after.
    """

    def expand(self, pcoll):
        folder = pcoll.pipeline.options.view_as(SpillOptions).tamis_spill_dir
        if not folder:
            return pcoll
        return pcoll | "Save" >> beam.ParDo(_Save(folder, self.label))


def _spread(element):
    key, items = element
    for item in items:
        yield key, item


class Rebalance(beam.PTransform):
    """(key, batch) → (key, spilled batch), dealt evenly to a local run's workers; unchanged when not spilling.

    Beam's local runner splits a stage's input between workers by the chunks
    its producers sent, so a stage inherits the split of the one before it:
    after a join on batch keys (exact dedup), one worker could get 60% of the
    batches, and the expensive stages after it (near-dup signing, scoring)
    kept that share. A grouping by batch key is dealt to workers key by key
    in turn; only the spilled references (~100 bytes each) go through it.
    Each batch is written once: later holds pass a spilled batch through.
    """

    def expand(self, pcoll):
        if not pcoll.pipeline.options.view_as(SpillOptions).tamis_spill_dir:
            return pcoll
        return pcoll | "Rebalance" >> Spill() | "ByBatch" >> beam.GroupByKey() | "Spread" >> beam.FlatMap(_spread)
