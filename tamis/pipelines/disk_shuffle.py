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
from collections.abc import Iterator

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


class PartWriter:
    """A DoFn's keyed records, pickled into `parts` files by key; `add` and `flush` yield (part, path) references.

    For a DoFn that writes the next shuffle's parts itself (tamis.pipelines.components),
    and for `GroupByKey` below. Records and bytes go to the counters of `label`.
    """

    def __init__(self, folder: str, parts: int, label: str):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.parts = folder, parts
        self.counters = Metrics.counter("shuffle", f"{label}_records"), Metrics.counter("shuffle", f"{label}_bytes")
        self.part_cache: dict = {}  # keys repeat (a batch key per repeated line): hash each once
        self.buffers: dict[int, list[bytes]] = defaultdict(list)
        self.size = self.records = 0

    def add(self, key, record: bytes) -> list[tuple[int, str]]:
        """Buffer one pickled (key, value) record; the references of the files written if the buffer filled up."""
        part = self.part_cache.get(key)
        if part is None:
            if len(self.part_cache) > 100_000:
                self.part_cache.clear()
            part = self.part_cache[key] = part_of(key, self.parts)
        self.buffers[part].append(record)
        self.size += len(record)
        self.records += 1
        return self.flush() if self.size >= BUFFER_BYTES else []

    def flush(self) -> list[tuple[int, str]]:
        """Write the buffer out and forget its keys: Beam keeps a DoFn (and so its writer) for a while after its
        bundle, and cached keys (node ids in the star rounds, one per linked document) would stay with it."""
        out = []
        for part, records in sorted(self.buffers.items()):
            path = os.path.join(self.folder, f"shuffle-{uuid.uuid4().hex}.pkl")
            with open(path, "wb") as f:
                pickle.dump(records, f, protocol=pickle.HIGHEST_PROTOCOL)
            out.append((part, path))
        self.counters[0].inc(self.records)
        self.counters[1].inc(self.size)
        self.buffers.clear()
        self.part_cache.clear()
        self.size = self.records = 0
        return out


def windowed(value) -> WindowedValue:
    """A value as finish_bundle must yield it (global window)."""
    return WindowedValue(value, MIN_TIMESTAMP, (GlobalWindow(),))


class _WriteParts(beam.DoFn):
    def __init__(self, folder: str, parts: int, label: str):
        self.folder, self.parts, self.label = folder, parts, label

    def start_bundle(self):
        self.writer = PartWriter(self.folder, self.parts, self.label)

    def process(self, element):
        yield from self.writer.add(element[0], pickle.dumps(element, protocol=pickle.HIGHEST_PROTOCOL))

    def finish_bundle(self):
        for part_file in self.writer.flush():
            yield windowed(part_file)


def read_groups(paths) -> Iterator[tuple]:
    """All (key, [values]) of one part, from its files."""
    groups: dict = defaultdict(list)
    for path in sorted(paths):
        with open(path, "rb") as f:
            for record in pickle.load(f):
                key, value = pickle.loads(record)
                groups[key].append(value)
    yield from groups.items()


def _read_part(element):
    _, paths = element
    yield from read_groups(paths)


def folder_of(pipeline) -> str | None:
    """Where a local run shuffles through files; None on Dataflow (Beam's own shuffle)."""
    return pipeline.options.view_as(SpillOptions).tamis_spill_dir


def _group_parts(part_files):
    return part_files | "GroupParts" >> beam.GroupByKey() | "ReadParts" >> beam.FlatMap(_read_part)


def _inputs(pcolls) -> tuple:
    """One PCollection, or a tuple of them that the shuffle takes together (a resume's kept signatures)."""
    return pcolls if isinstance(pcolls, tuple) else (pcolls,)


def _nth(label: str, i: int) -> str:
    """A step's label for the i-th input of a tuple: the first keeps the plain label (the graph of one input)."""
    return label if i == 0 else f"{label}{i}"


def _flattened(pcolls, label: str):
    ins = _inputs(pcolls)
    return ins[0] if len(ins) == 1 else ins | label >> beam.Flatten()


class GroupByKey(beam.PTransform):
    """Beam's GroupByKey over a PCollection or a tuple of them.

    Each input of a tuple writes its part files where it is produced: a
    Flatten first would make the local runner hold the inputs that are ready
    early in memory (as in CoGroupByKey).
    """

    def __init__(self, parts: int = 64):
        super().__init__()
        self.parts = parts

    def expand(self, pcolls):
        ins = _inputs(pcolls)
        folder = folder_of(ins[0].pipeline)
        if not folder:
            return _flattened(pcolls, "Flatten") | "GroupByKey" >> beam.GroupByKey()
        writes = [pcoll | _nth("WriteParts", i) >> beam.ParDo(_WriteParts(folder, self.parts, self.label))
                  for i, pcoll in enumerate(ins)]
        return _group_parts(_flattened(tuple(writes), "FlattenParts"))


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
    """{tag: (k, v)} → (k, {tag: [v, ...]}), like Beam's CoGroupByKey on a dict (a tag may name a tuple of inputs).

    Each input writes its part files where it is produced (a Flatten first
    would make the local runner buffer the inputs that are ready early).
    """

    def __init__(self, parts: int = 64):
        super().__init__()
        self.parts = parts

    def expand(self, tagged):
        folder = folder_of(_inputs(next(iter(tagged.values())))[0].pipeline)
        if not folder:
            flat = {tag: _flattened(pcolls, f"Flatten{tag.title()}") for tag, pcolls in tagged.items()}
            return flat | "CoGroupByKey" >> beam.CoGroupByKey()
        part_files = [
            pcoll
            | _nth(f"Tag{tag.title()}", i) >> beam.Map(_tag, tag)
            | _nth(f"WriteParts{tag.title()}", i) >> beam.ParDo(_WriteParts(folder, self.parts, self.label))
            for tag, pcolls in tagged.items()
            for i, pcoll in enumerate(_inputs(pcolls))
        ]
        grouped = _group_parts(part_files | "Flatten" >> beam.Flatten())
        return grouped | "Untag" >> beam.Map(_untag, list(tagged))
