"""DSIRSelect: the global Gumbel top-k of DSIR-scored batches, as one Beam combine.

Each document's key is its log weight plus Gumbel noise hashed from
(seed, id), so the k chosen ids do not depend on runner, sharding or order;
`Top.Of` keeps only k (key, id) pairs per bundle, so memory is O(k).
The result equals `tamis.mixers.dsir.resample(..., noise="hashed")`.
"""

import apache_beam as beam
import numpy as np

from tamis.mixers.dsir import gumbel_hashed


def _keys(element, seed: int, min_length: int, weight_col: str, length_col: str):
    batch = element[1] if isinstance(element, tuple) else element  # (key, batch) pairs or bare batches
    ids = batch.column("id").to_pylist()
    weights = batch.column(weight_col).to_numpy(zero_copy_only=False)
    lengths = batch.column(length_col).to_numpy(zero_copy_only=False)
    keys = weights + gumbel_hashed(ids, seed)
    for i in np.flatnonzero(lengths >= min_length):
        yield float(keys[i]), ids[i]


class DSIRSelect(beam.PTransform):
    """PCollection of scored batches -> one element: the sorted list of the k selected document ids."""

    def __init__(self, k: int, seed: int = 0, min_length: int = 100, weight_col: str = "dsir.log_weight"):
        super().__init__()
        self.k, self.seed, self.min_length, self.weight_col = k, seed, min_length, weight_col

    def expand(self, batches):
        return (
            batches
            | "GumbelKeys" >> beam.FlatMap(_keys, self.seed, self.min_length, self.weight_col, "dsir.length")
            | "TopK" >> beam.combiners.Top.Of(self.k)
            | "Ids" >> beam.Map(lambda top: sorted(doc_id for _, doc_id in top))
        )
