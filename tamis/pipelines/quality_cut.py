"""TopFractionCut: keep the best fraction of a whole run by a quality score, as two Beam passes.

Pass one sums a fixed histogram of the scores over all batches (histograms
add, so the result does not depend on sharding or worker count); the cutoff
from it reaches every worker as a side input, and pass two applies the
`quality` filter's rule with that cutoff, routing drops like the Score stage.
The batches wait for the cutoff spilled, where the pipeline spills.
"""

import json

import apache_beam as beam
import numpy as np

from tamis.filters.chain import STAGE
from tamis.filters.quality import BINS, Quality, cutoff_for_fraction, histogram
from tamis.pipelines import spill
from tamis.pipelines.read import DROPPED, STAGE_RANK
from tamis.schema import dropped


class _SumHistograms(beam.CombineFn):
    def create_accumulator(self):
        return np.zeros(BINS, dtype=np.int64)

    def add_input(self, acc, hist):
        return acc + hist

    def merge_accumulators(self, accs):
        return sum(accs, np.zeros(BINS, dtype=np.int64))

    def extract_output(self, acc):
        return acc


def _hist(element, column: str) -> np.ndarray:
    _, batch = element
    return histogram(batch.column(column).to_numpy(zero_copy_only=False))


class _Cut(beam.DoFn):
    def __init__(self, column: str, fraction: float, rank: int):
        self.column, self.fraction, self.rank = column, fraction, rank

    def process(self, element, hist):
        key, batch = element
        batch = spill.load(batch)
        cutoff = cutoff_for_fraction(hist, self.fraction)
        p = batch.column(self.column).to_numpy(zero_copy_only=False)
        keep = p >= cutoff
        if not keep.all():
            idx = np.flatnonzero(~keep)
            reason = f"{self.column}<top_{self.fraction:g}"
            detail = [json.dumps({self.column: float(p[i]), "cutoff": cutoff}) for i in idx]
            drop = dropped(batch.take(idx), STAGE, [reason] * len(idx), detail=detail)
            yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], self.rank), drop)))
        yield key, batch.filter(keep)


class TopFractionCut(beam.PTransform):
    """(key, scored batch) -> kept (key, batch) and DROPPED, keeping `filter.top_fraction` of the run.

    `position`: the filter's place in the run's chain, which orders its drops among the chain's.
    """

    def __init__(self, quality: Quality, position: int = 0):
        super().__init__()
        if quality.top_fraction is None:
            raise ValueError("TopFractionCut needs a quality filter with top_fraction")
        self.column, self.fraction = quality.rule_column, quality.top_fraction
        self.rank = STAGE_RANK["filter"] + position

    def expand(self, batches):
        hist = (
            batches
            | "Histogram" >> beam.Map(_hist, self.column)
            | "SumHistograms" >> beam.CombineGlobally(_SumHistograms())
        )
        held = batches | "Hold" >> spill.Spill()
        return held | "Cut" >> beam.ParDo(
            _Cut(self.column, self.fraction, self.rank), beam.pvalue.AsSingleton(hist)
        ).with_outputs(DROPPED, main="kept")
