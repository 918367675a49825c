"""Dedup decisions and dropped/ rows do not depend on the order in which a worker receives its inputs."""

import numpy as np
import pyarrow as pa

from tamis.pipelines.drops import RANKS
from tamis.pipelines.exact_dedup import _CutUnits
from tamis.pipelines.read import DROPPED, STAGE_RANK
from tamis.schema import documents


def test_each_dedup_stage_sorts_its_drops_at_its_own_rank():
    """A batch's dropped rows are written in (batch, stage rank) order: two stages at one rank would come in arrival
    order, so dropped/ files would differ between runs with 1 and 2 workers."""
    ranks = [STAGE_RANK["normalize"], STAGE_RANK["exact_dedup"], STAGE_RANK["exact_dedup"] + 1, *RANKS.values()]
    assert len(set(ranks)) == len(ranks) and max(ranks) < STAGE_RANK["filter"]


def test_a_document_cut_to_nothing_names_the_same_kept_copy_in_any_order():
    """Its repeated lines were kept in different documents; dup_of is the kept copy of its first line."""
    batch = documents([{"id": "d9", "text": "line one is here\nline two is here"}, {"id": "d8", "text": "own text"}])
    repeats = [(np.array([0]), np.array([1]), ["d5"]), (np.array([0]), np.array([0]), ["d3"])]  # two buckets' repeats
    drops = []
    for order in (repeats, repeats[::-1]):
        out = list(_CutUnits("line").process(((0, 0), {"batch": [batch], "repeats": order})))
        (gone,) = [o.value for o in out if getattr(o, "tag", None) == DROPPED]
        drops.append(pa.Table.from_batches([gone[1][1]]).select(["id", "dup_of"]).to_pylist())
    assert drops[0] == drops[1] == [{"id": "d9", "dup_of": "d3"}]
