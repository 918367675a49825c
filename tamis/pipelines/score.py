"""ScoreFilter: run the configured scorer/filter chain on every batch; drops go to a tagged output."""

import apache_beam as beam

from tamis.config import FilterSpec
from tamis.filters.chain import apply_chain
from tamis.filters.registry import build
from tamis.pipelines.read import DROPPED, STAGE_RANK


class _ScoreFilter(beam.DoFn):
    def __init__(self, specs: list[FilterSpec]):
        self.specs = specs

    def setup(self):
        self.components = [build(s.name, s.params) for s in self.specs]  # models load once per worker

    def process(self, element):
        key, batch = element
        kept, drops = apply_chain(self.components, batch)
        for i, d in enumerate(drops):
            yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], STAGE_RANK["filter"] + i), d)))
        yield key, kept


class ScoreFilter(beam.PTransform):
    def __init__(self, specs: list[FilterSpec]):
        super().__init__()
        self.specs = specs

    def expand(self, batches):
        return batches | "Chain" >> beam.ParDo(_ScoreFilter(self.specs)).with_outputs(DROPPED, main="kept")
