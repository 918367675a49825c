"""Clusters of a duplicate graph as Beam transforms: large-star/small-star rounds, or one union-find.

    edges ─Contract─► stars ─┬─ round 1: ─group by node─► large-star ─group by larger end─► small-star ─┐
                             └───────────── … `max_rounds` rounds, built into the job ───────────────────┘
          ─group by node─► Settle ─► (dropped, kept) from each star's centre, if every node settled
                                   └─► else: union-find over the last round's edges in one process

Beam has no loops, so the rounds are unrolled: the job always has
`max_rounds` rounds; once the graph is a forest of stars a round passes it
through unchanged. `Settle` checks that every node is a star's centre or
leaf; if one is not, the stage falls back to the one-process union-find over
the last round's edges (correct, logged as a warning) instead of failing a
long run at its end. Each grouping holds one node's neighbours at a time
(a star's centre: its cluster), never the whole graph, and each round
shuffles one record per edge and direction.

Every step reports per bundle how many records and pickled bytes it feeds
the next grouping and how many edges it changed; `Summarize` adds them up into
one summary (logged, and the Beam counters `components/<grouping>_records`,
`_bytes`, `_changed`); `rounds_needed` is the number of rounds that changed
something. The pure steps are in tamis.dedup.components.
"""

import json
import logging
import pickle
from collections.abc import Callable, Iterable, Iterator

import apache_beam as beam
from apache_beam.metrics import Metrics

from tamis.dedup.components import UnionFind, both_ways, contract, downward, large_star, settle, small_star
from tamis.pipelines import disk_shuffle

log = logging.getLogger(__name__)

STATS = "stats"
CONTRACT_EDGES = 100_000  # edges a worker contracts at a time (a local union-find of ≤ 2 × this many nodes)
Drops = Callable[[list], Iterable[tuple]]  # a cluster's members → (dropped, kept) pairs


class _Counted(beam.DoFn):
    """A step that feeds the next grouping: counts, per bundle, its records, pickled bytes and changed edges.

    Where the run shuffles through files (tamis.pipelines.disk_shuffle), the
    step writes the next grouping's part files itself and emits only their
    references, and reads its own input parts: each grouping is one Beam
    GroupByKey and one step, which keeps the unrolled rounds cheap to build and run.
    """

    counted = "changed"  # what `changed` counts for this step

    def __init__(self, label: str, feeds: str, folder: str | None, parts: int):
        self.label, self.feeds, self.folder, self.parts = label, feeds, folder, parts

    def start_bundle(self):
        self.records = self.bytes = self.changed = 0
        self.writer = disk_shuffle.PartWriter(self.folder, self.parts, self.feeds) if self.folder else None

    def _groups(self, element) -> Iterable:
        """The grouped input: (part, its files) read back, or Beam's (key, values)."""
        return disk_shuffle.read_groups(element[1]) if self.folder else [element]

    def _emit(self, records: Iterable) -> Iterator:
        for rec in records:
            data = pickle.dumps(rec, protocol=pickle.HIGHEST_PROTOCOL)
            self.records += 1
            self.bytes += len(data)
            if self.writer is None:
                yield rec
            else:
                yield from self.writer.add(rec[0], data)

    def _finish(self) -> Iterator:
        if self.writer is not None:
            yield from (disk_shuffle.windowed(ref) for ref in self.writer.flush())
        stats = [(self.feeds, {"records": self.records, "bytes": self.bytes}), (self.label, {self.counted: self.changed})]
        for label, counts in stats:
            for name, value in counts.items():
                Metrics.counter("components", f"{label}_{name}").inc(value)
            yield beam.pvalue.TaggedOutput(STATS, disk_shuffle.windowed((label, counts)))


class _Contract(_Counted):
    """Verified edges → the same clusters as stars, by a union-find over at most `limit` edges at a time."""

    counted = "edges_in"

    def __init__(self, feeds: str, folder: str | None, parts: int, limit: int):
        super().__init__("contract", feeds, folder, parts)
        self.limit = limit

    def start_bundle(self):
        super().start_bundle()
        self.edges: list = []

    def process(self, edge):
        self.edges.append(edge)
        if len(self.edges) >= self.limit:
            yield from self._flush()

    def _flush(self) -> Iterator:
        self.changed += len(self.edges)
        stars = list(contract(self.edges))
        self.edges = []
        return self._emit(both_ways(stars))

    def finish_bundle(self):
        for out in self._flush():
            yield disk_shuffle.windowed(out)
        yield from self._finish()


class _Star(_Counted):
    """One grouping's step: (node, its grouped neighbours) → the next grouping's keyed edges."""

    def __init__(self, label: str, feeds: str, folder: str | None, parts: int, step, key_next):
        super().__init__(label, feeds, folder, parts)
        self.step, self.key_next = step, key_next

    def process(self, element):
        for u, neighbours in self._groups(element):
            edges, changed = self.step(u, neighbours)
            self.changed += changed
            yield from self._emit(self.key_next(edges))

    def finish_bundle(self):
        yield from self._finish()


class _Settle(beam.DoFn):
    """A node of the last round's graph: a star's centre gives its cluster's drops; others are counted."""

    def __init__(self, folder: str | None, drops: Drops):
        self.folder, self.drops = folder, drops

    def start_bundle(self):
        self.nodes = self.unsettled = 0

    def process(self, element):
        for u, neighbours in disk_shuffle.read_groups(element[1]) if self.folder else [element]:
            kind, leaves = settle(u, neighbours)
            self.nodes += 1
            if kind == "centre":
                yield from self.drops([u, *leaves])
            elif kind == "unsettled":
                self.unsettled += 1

    def finish_bundle(self):
        Metrics.counter("components", "settle_nodes").inc(self.nodes)
        Metrics.counter("components", "settle_unsettled").inc(self.unsettled)
        stats = ("settle", {"nodes": self.nodes, "unsettled": self.unsettled})
        yield beam.pvalue.TaggedOutput(STATS, disk_shuffle.windowed(stats))


class _Summary(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, stat):
        label, counts = stat
        into = acc.setdefault(label, {})
        for name, value in counts.items():
            into[name] = into.get(name, 0) + value
        return acc

    def merge_accumulators(self, accs):
        out: dict = {}
        for acc in accs:
            for stat in acc.items():
                self.add_input(out, stat)
        return out

    def extract_output(self, acc):
        return acc


def rounds_needed(summary: dict, max_rounds: int) -> int:
    """Rounds that changed something: after them the graph was a forest of stars."""
    return sum(
        1
        for r in range(1, max_rounds + 1)
        if summary.get(f"large{r:02d}", {}).get("changed", 0) + summary.get(f"small{r:02d}", {}).get("changed", 0)
    )


def settled(summary: dict) -> bool:
    return not summary.get("settle", {}).get("unsettled", 0)


def _log(summary: dict, max_rounds: int):
    report = {"rounds_needed": rounds_needed(summary, max_rounds), "max_rounds": max_rounds, "groupings": summary}
    if settled(summary):
        log.info("near-dup components settled after %d of %d rounds: %s", report["rounds_needed"], max_rounds, json.dumps(report))
    else:
        log.warning(
            "near-dup components did not settle in %d rounds (%d nodes unsettled): clustering the last round's edges "
            "with a union-find in one process; raise near_dedup.max_rounds. %s",
            max_rounds,
            summary["settle"]["unsettled"],
            json.dumps(report),
        )
    return []


class _UnionFind(beam.CombineFn):
    def create_accumulator(self):
        return UnionFind()

    def add_input(self, uf, edge):
        uf.union(*edge)
        return uf

    def merge_accumulators(self, accs):
        uf = self.create_accumulator()
        for other in accs:
            uf.merge(other)
        return uf

    def extract_output(self, uf):
        return uf


class UnionFindClusters(beam.PTransform):
    """Edges → (dropped, kept) by one union-find, in one process: it holds every node that has an edge."""

    def __init__(self, drops: Drops):
        super().__init__()
        self.drops = drops

    def expand(self, edges):
        return (
            edges
            | "UnionFind" >> beam.CombineGlobally(_UnionFind()).without_defaults()
            | "Drops" >> beam.FlatMap(lambda uf, drops: (p for m in uf.clusters().values() for p in drops(m)), self.drops)
        )


class StarRounds(beam.PTransform):
    """Edges (node, node) → (dropped, kept) pairs by `drops` per cluster, in `max_rounds` large/small-star rounds."""

    def __init__(self, max_rounds: int, drops: Drops, parts: int = 8, contract_edges: int | None = None):
        super().__init__()
        self.max_rounds, self.drops, self.parts = max_rounds, drops, parts
        self.contract_edges = contract_edges or CONTRACT_EDGES  # read when built: a benchmark can set it to 1

    def expand(self, edges):
        folder = disk_shuffle.folder_of(edges.pipeline)
        stats = []

        def step(pcoll, label: str, dofn: beam.DoFn):
            out = pcoll | label >> beam.ParDo(dofn).with_outputs(STATS, main="edges")
            stats.append(out[STATS])
            return out.edges

        first = "large01"
        current = step(edges, "Contract", _Contract(first, folder, self.parts, self.contract_edges))
        for r in range(1, self.max_rounds + 1):
            large, small = f"large{r:02d}", f"small{r:02d}"
            after = "settle" if r == self.max_rounds else f"large{r + 1:02d}"
            grouped = current | f"Group{large}" >> beam.GroupByKey()
            current = step(grouped, large.title(), _Star(large, small, folder, self.parts, large_star, downward))
            grouped = current | f"Group{small}" >> beam.GroupByKey()
            current = step(grouped, small.title(), _Star(small, after, folder, self.parts, small_star, both_ways))
        settled_out = (
            current
            | "GroupSettle" >> beam.GroupByKey()
            | "Settle" >> beam.ParDo(_Settle(folder, self.drops)).with_outputs(STATS, main="drops")
        )
        stats.append(settled_out[STATS])
        summary = stats | "AllStats" >> beam.Flatten() | "Summarize" >> beam.CombineGlobally(_Summary())
        _ = summary | "Log" >> beam.FlatMap(_log, self.max_rounds)
        view = beam.pvalue.AsSingleton(summary)
        drops = settled_out.drops | "IfSettled" >> beam.Filter(lambda _, s: settled(s), view)
        fallback = (
            current
            | "IfUnsettled" >> beam.Filter(lambda _, s: not settled(s), view)
            | "LastEdges" >> beam.FlatMap(_records, folder)
            | "Fallback" >> UnionFindClusters(self.drops)
        )
        return (drops, fallback) | "AllDrops" >> beam.Flatten()


def _records(element, folder: str | None):
    """The last round's keyed edges, read back from a part file reference where the run shuffles through files."""
    if folder is None:
        yield element
        return
    with open(element[1], "rb") as f:
        for record in pickle.load(f):
            yield pickle.loads(record)


def summary_from_metrics(result) -> dict:
    """A finished pipeline's `components/*` counters as the same summary as the logged one ({} without rounds)."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace("components"))["counters"]:
        label, name = counter.key.metric.name.split("_", 1)
        value = counter.committed if counter.committed is not None else counter.attempted
        out.setdefault(label, {})[name] = out.get(label, {}).get(name, 0) + value
    return out
