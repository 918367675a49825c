"""ScoreFilter: run the configured scorer/filter chain on every batch; drops go to a tagged output."""

import apache_beam as beam

from tamis.filters.chain import apply_chain
from tamis.filters.registry import FilterSpec, build
from tamis.pipelines import pool, progress
from tamis.pipelines.progress import StageClock
from tamis.pipelines.read import DROPPED, STAGE_RANK


class _ScoreFilter(beam.DoFn):
    def __init__(self, specs: list[FilterSpec], first_rank: int, progress_dir: str | None = None):
        self.specs, self.first_rank, self.progress_dir = specs, first_rank, progress_dir

    def setup(self):
        self.components = [build(s.name, s.params) for s in self.specs]  # models load once per worker
        self.clocks = {c.key(): StageClock(f"filter:{c.key()}", self.progress_dir) for c in self.components}

    def finish_bundle(self):
        for clock in self.clocks.values():
            clock.flush()

    def process(self, element):
        key, batch = element
        timings: dict[str, tuple[float, int]] = {}
        kept, drops = apply_chain(self.components, batch, timings)
        for name, (seconds, rows) in timings.items():
            self.clocks[name].add(seconds, rows)
        for i, d in enumerate(drops):
            yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], self.first_rank + i), d)))
        yield key, kept


class ScoreFilter(beam.PTransform):
    """`offset`: how many filters of the run's chain come before `specs` (their drops sort first)."""

    def __init__(self, specs: list[FilterSpec], offset: int = 0):
        super().__init__()
        self.specs, self.offset = specs, offset

    def expand(self, batches):
        first_rank = STAGE_RANK["filter"] + self.offset
        fn = _ScoreFilter(self.specs, first_rank, progress.folder_of(batches.pipeline))
        return batches | "Chain" >> beam.ParDo(pool.pooled(batches.pipeline, fn)).with_outputs(DROPPED, main="kept")
