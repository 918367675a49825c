"""Decontaminate: drop or cut documents sharing an n-gram with a benchmark (steps in tamis.dedup.decontam).

The benchmark index is built once on the launching machine (so a missing file
or field fails before any work) and reaches workers as a side input of
12 bytes per distinct (n-gram, item) pair: 1.7 MB for GSM8K test + HumanEval.
Each batch is then decided on its own; per-input counts go to the `stats`
output as {"decontam": {benchmark: counts}}, which the writer puts in the input's marker.
"""

import apache_beam as beam

from tamis.dedup.decontam import STAGE, build_index, decontaminate
from tamis.pipelines import progress
from tamis.pipelines.drops import stage_rank
from tamis.pipelines.progress import StageClock
from tamis.pipelines.read import DROPPED, STATS


class _Decontaminate(beam.DoFn):
    def __init__(self, mode: str, min_kept_fraction: float, progress_dir: str | None = None):
        self.mode, self.min_kept_fraction, self.progress_dir = mode, min_kept_fraction, progress_dir

    def setup(self):
        self.clock = StageClock(STAGE, self.progress_dir)

    def finish_bundle(self):
        self.clock.flush()

    def process(self, element, index):
        key, batch = element
        with self.clock.timed(batch.num_rows):
            r = decontaminate(batch, index, self.mode, self.min_kept_fraction)
        if r.dropped is not None:
            yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], stage_rank(STAGE)), r.dropped)))
        yield beam.pvalue.TaggedOutput(STATS, (key[0], {"decontam": r.stats}))
        yield key, r.kept


class Decontaminate(beam.PTransform):
    """(key, batch) → `kept` (key, batch), `dropped` and `stats` (input, {"decontam": ...})."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.index = build_index(cfg)

    def expand(self, batches):
        index = batches.pipeline | "BenchmarkIndex" >> beam.Create([self.index])
        fn = _Decontaminate(self.cfg.mode, self.cfg.min_kept_fraction, progress.folder_of(batches.pipeline))
        return batches | "Decide" >> beam.ParDo(fn, beam.pvalue.AsSingleton(index)).with_outputs(
            DROPPED, STATS, main="kept"
        )
