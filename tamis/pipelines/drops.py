"""ApplyDrops: remove decided rows from their batches; the rows go to the `dropped` output with reasons.

Decisions are keyed by the batch key, (input file, batch index), and name a
row of that batch: (row, reason, dup_of, detail). They reach the batches as a
side input looked up by batch key, so the corpus is not shuffled a second
time: only the decisions (one small record per dropped document) move, and a
worker holds one batch and its decisions at a time. Where the pipeline spills,
the batches wait for the decisions on disk (see tamis.pipelines.spill).
"""

from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa

from tamis.pipelines import spill
from tamis.pipelines.read import DROPPED, STAGE_RANK
from tamis.schema import dropped

# Where these stages' drops sort among a batch's dropped output: after exact dedup (1, and 2 for its cut units),
# before filters (9 on). Each rank is one stage's, or a batch's drops of two stages would come in arrival order.
RANKS = {"near_dedup": 3, "semantic_dedup": 4, "decontaminate": 5}


def stage_rank(stage: str) -> int:
    return STAGE_RANK[stage] if stage in STAGE_RANK else RANKS[stage]


class Staged(NamedTuple):
    """What a stage made of several steps returns: the same `.kept` and `.dropped` as a one-ParDo stage's outputs,
    and the dedup signatures it keeps for the run directory, if any (tamis.dedup.signatures)."""

    kept: beam.PCollection
    dropped: beam.PCollection
    signatures: beam.PCollection | None = None


Decision = tuple[int, str, str | None, str | None]  # (row, reason, dup_of, detail)


def remove_rows(key: tuple, batch: pa.RecordBatch, stage: str, decisions: list[Decision], rank: int | None = None):
    """Yield the `dropped` output for the decided rows of one batch, then (key, the batch without them).

    A row decided twice keeps one decision. `rank` orders this drop among the
    batch's other drops in dropped/ (default: the stage's rank).
    """
    decided = {d[0]: d for d in decisions}
    if decided:
        rows = sorted(decided)
        gone = dropped(
            batch.take(pa.array(rows)),
            stage,
            [decided[r][1] for r in rows],
            [decided[r][2] for r in rows],
            [decided[r][3] for r in rows],
        )
        yield beam.pvalue.TaggedOutput(DROPPED, (key[0], ((key[1], stage_rank(stage) if rank is None else rank), gone)))
        mask = np.ones(batch.num_rows, dtype=bool)
        mask[rows] = False
        batch = batch.filter(pa.array(mask))
    yield key, batch


class _Apply(beam.DoFn):
    def __init__(self, stage: str):
        self.stage = stage

    def process(self, element, decisions):
        key, batch = element
        yield from remove_rows(key, spill.load(batch), self.stage, decisions[key])


class ApplyDrops(beam.PTransform):
    """(key, batch) → main `kept` (key, batch) and `dropped`; `drops` holds (key, (row, reason, dup_of, detail))."""

    def __init__(self, stage: str, drops: beam.PCollection):
        super().__init__()
        self.stage, self.drops = stage, drops

    def expand(self, batches):
        decisions = beam.pvalue.AsMultiMap(self.drops)
        held = batches | "Hold" >> spill.Spill()
        return held | "Apply" >> beam.ParDo(_Apply(self.stage), decisions).with_outputs(DROPPED, main="kept")
