"""GroupByKey and CoGroupByKey that shuffle through local files where the pipeline spills.

Beam's local runner keeps a whole shuffle in memory, and groups it by
decoding a second copy, so a local dedup stage's peak memory grew with the
number of documents (band keys and signature nodes: a few KB each). Here,
where the pipeline spills (`--tamis_spill_dir`, see tamis.pipelines.spill),
each worker appends its (key, value) pairs to `parts` files by a stable hash
of the key, a chunk of at most `BUFFER_BYTES` at a time, and only
(part, file) references go through Beam's shuffle. One part is then read and
grouped at a time, so a worker holds one part (1/`parts` of the shuffle), not
all of it. Without a spill folder (Dataflow, whose shuffle is on disk) these
are Beam's own transforms. Value order within a key is unspecified, as in Beam.

Each shuffle counts its records and pickled bytes (Beam counters
`shuffle/<label>_records`, `shuffle/<label>_bytes`): what the same step would
move through Dataflow's shuffle, the basis of docs/scale.md's extrapolation.
"""

import hashlib
import os
import pickle
import uuid
from collections import defaultdict

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from tamis.pipelines.spill import SpillOptions

BUFFER_BYTES = 32 * 1024 * 1024  # pickled pairs a worker buffers before writing them out


def part_of(key, parts: int) -> int:
    """A hash of the key that every process agrees on (Python's str hash is salted per process)."""
    if isinstance(key, int):
        return key % parts
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "little") % parts


class _WriteParts(beam.DoFn):
    def __init__(self, folder: str, parts: int, label: str):
        self.folder, self.parts, self.label = folder, parts, label

    def setup(self):
        os.makedirs(self.folder, exist_ok=True)
        self.records = Metrics.counter("shuffle", f"{self.label}_records")
        self.bytes = Metrics.counter("shuffle", f"{self.label}_bytes")

    def start_bundle(self):
        self.buffers: dict[int, list[bytes]] = defaultdict(list)
        self.size = 0

    def process(self, element):
        record = pickle.dumps(element, protocol=pickle.HIGHEST_PROTOCOL)
        self.buffers[part_of(element[0], self.parts)].append(record)
        self.size += len(record)
        self.records.inc()
        self.bytes.inc(len(record))
        if self.size >= BUFFER_BYTES:
            yield from self._flush()

    def finish_bundle(self):
        for part_file in self._flush():
            yield WindowedValue(part_file, MIN_TIMESTAMP, (GlobalWindow(),))

    def _flush(self):
        for part, records in sorted(self.buffers.items()):
            path = os.path.join(self.folder, f"shuffle-{uuid.uuid4().hex}.pkl")
            with open(path, "wb") as f:
                pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
            yield part, path
        self.buffers.clear()
        self.size = 0


def _read_part(element):
    """All pairs of one part, grouped by key."""
    _, paths = element
    groups: dict = defaultdict(list)
    for path in sorted(paths):
        with open(path, "rb") as f:
            for record in pickle.load(f):
                key, value = pickle.loads(record)
                groups[key].append(value)
    yield from groups.items()


def _folder(pipeline) -> str | None:
    return pipeline.options.view_as(SpillOptions).tamis_spill_dir


def _group_parts(part_files):
    return part_files | "GroupParts" >> beam.GroupByKey() | "ReadParts" >> beam.FlatMap(_read_part)


class GroupByKey(beam.PTransform):
    def __init__(self, parts: int = 64):
        super().__init__()
        self.parts = parts

    def expand(self, pcoll):
        folder = _folder(pcoll.pipeline)
        if not folder:
            return pcoll | "GroupByKey" >> beam.GroupByKey()
        return _group_parts(pcoll | "WriteParts" >> beam.ParDo(_WriteParts(folder, self.parts, self.label)))


def _tag(element, tag: str):
    key, value = element
    return key, (tag, value)


def _untag(element, tags: list[str]):
    key, tagged = element
    out: dict[str, list] = {t: [] for t in tags}
    for tag, value in tagged:
        out[tag].append(value)
    return key, out


class CoGroupByKey(beam.PTransform):
    """{tag: (k, v)} → (k, {tag: [v, ...]}), like Beam's CoGroupByKey on a dict.

    Each input writes its part files where it is produced (a Flatten first
    would make the local runner buffer the inputs that are ready early).
    """

    def __init__(self, parts: int = 64):
        super().__init__()
        self.parts = parts

    def expand(self, tagged):
        folder = _folder(next(iter(tagged.values())).pipeline)
        if not folder:
            return tagged | "CoGroupByKey" >> beam.CoGroupByKey()
        part_files = [
            pcoll
            | f"Tag{tag.title()}" >> beam.Map(_tag, tag)
            | f"WriteParts{tag.title()}" >> beam.ParDo(_WriteParts(folder, self.parts, self.label))
            for tag, pcoll in tagged.items()
        ]
        grouped = _group_parts(part_files | "Flatten" >> beam.Flatten())
        return grouped | "Untag" >> beam.Map(_untag, list(tagged))
