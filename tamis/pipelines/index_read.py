"""ReadIndexShards: input files -> (shard name, document batch) for the index builds; unreadable records to errors/."""

import apache_beam as beam
import pyarrow as pa

from tamis.indexes import shard_name
from tamis.io import arrays, atomic
from tamis.io.readers import InputConfig, read_file


class _ReadShards(beam.DoFn):
    """One (input index, path) -> its batches of `shard_docs` documents, each named by (input, batch); error
    batches are written under `root`/errors/ and reported on the `errors` output as {path, records}."""

    def __init__(self, root: str, input_cfg: InputConfig, shard_docs: int):
        self.root, self.input_cfg, self.shard_docs = root, input_cfg, shard_docs

    def process(self, item: tuple[int, str]):
        index, path = item
        docs = errors = 0
        for kind, batch in read_file(path, self.input_cfg, self.shard_docs):
            if kind == "errors":
                rel = f"errors/{shard_name(index, errors)}.arrow"
                arrays.write_arrow(atomic.join(self.root, rel), pa.Table.from_batches([batch]))
                yield beam.pvalue.TaggedOutput("errors", {"path": rel, "records": batch.num_rows})
                errors += 1
                continue
            yield shard_name(index, docs), batch
            docs += 1


class ReadIndexShards(beam.PTransform):
    """Input files -> `.docs` (shard name, batch) and `.errors` ({path, records} of each error file written)."""

    def __init__(self, files: list[str], root: str, input_cfg: InputConfig, shard_docs: int):
        super().__init__()
        self.files, self.root, self.input_cfg, self.shard_docs = files, root, input_cfg, shard_docs

    def expand(self, pbegin):
        return (
            pbegin
            | "ListFiles" >> beam.Create(list(enumerate(self.files)))
            | "Read" >> beam.ParDo(_ReadShards(self.root, self.input_cfg, self.shard_docs)).with_outputs(
                "errors", main="docs")
        )
