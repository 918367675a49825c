"""IndexDense: input files -> a dense (FAISS) index directory, as a Beam pipeline over document record batches.

    files ─► ReadShards ─► (shard, docs batch) ─► EmbedShard ─► shard entries ─► AllShards ─► BuildIndex (last)
                  └─► errors/

Each input file is cut into shards of `shard_docs` documents. EmbedShard
loads the model once per worker (DoFn.setup; the model is cached per
process), chunks and encodes its shard in length-sorted batches and writes
`shards/<name>/` (float16 vectors, chunk spans, docstore) and then
`entry.json`, which records a fingerprint of the shard's input and of the
embedding settings. Rerun over the same output (`--resume`), a shard whose
entry matches is not embedded again. BuildIndex, on one worker, trains the
FAISS index on the hash-chosen sample, adds every shard in name order
(on a GPU when one is visible to FAISS), writes `index.faiss` and the
manifest last. Everything written is a function of the inputs and the
config, so a killed build rerun gives the same bytes.
"""

import hashlib
import json
import logging
from typing import Any

import apache_beam as beam
import pyarrow as pa

from tamis.indexes import dense
from tamis.io import atomic
from tamis.io.readers import InputConfig
from tamis.pipelines.index_read import ReadIndexShards

log = logging.getLogger(__name__)

ENTRY = "entry.json"


def fingerprint(batch: pa.RecordBatch, config: dense.DenseConfig, model: dict[str, Any], window: int) -> str:
    """sha256 of what a shard's files depend on: its documents and the embedding settings."""
    h = hashlib.sha256()
    settings = {"model": model, "window": window, "overlap": config.overlap, "store_text": config.store_text}
    h.update(json.dumps(settings, sort_keys=True).encode())
    for column in ("id", "text", "source", "offset", "meta"):
        if column in batch.schema.names:
            h.update(column.encode())
            for value in batch.column(column).to_pylist():
                h.update(b"\x00" + str(value).encode())
    return h.hexdigest()


def finished_entry(root: str, name: str, digest: str) -> dict[str, Any] | None:
    """The entry of a shard a previous run finished with the same input and settings, else None."""
    path = atomic.join(root, "shards", name, ENTRY)
    if not atomic.exists(path):
        return None
    with atomic.open_read(path) as f:
        try:
            entry = json.loads(f.read())
        except ValueError:
            return None
    files_there = all(atomic.exists(atomic.join(root, "shards", name, f)) for f in dense.SHARD_FILES)
    return entry if entry.get("fingerprint") == digest and files_there else None


class _EmbedShard(beam.DoFn):
    """Chunk, encode and write one shard (skipped when a previous run finished it with the same input)."""

    def __init__(self, root: str, config: dense.DenseConfig):
        self.root, self.config = root, config

    def setup(self):
        self.embedder = dense.embedder_for(self.config)
        self.model = dense.model_identity(self.embedder)
        self.window = dense.window_of(self.config, self.embedder)

    def process(self, element: tuple[str, pa.RecordBatch]):
        name, batch = element
        digest = fingerprint(batch, self.config, self.model, self.window)
        entry = finished_entry(self.root, name, digest)
        if entry is None:
            shard = dense.embed_shard(name, batch, self.embedder, self.config)
            entry = {**dense.write_shard(self.root, shard), "fingerprint": digest, "model": self.model,
                     "window": self.window}
            atomic.write_bytes(atomic.join(self.root, "shards", name, ENTRY), json.dumps(entry, indent=1).encode())
        else:
            log.info("shard %s was finished by an earlier run: kept", name)
        yield entry


def _build_index(entries, errors, root: str, config: dense.DenseConfig, inputs: list[str]) -> None:
    entries = sorted(entries, key=lambda e: e["name"])
    if not entries:
        return  # nothing to index: no manifest is written and the caller reports it
    models = {json.dumps(e["model"], sort_keys=True) for e in entries}
    if len(models) > 1:
        raise RuntimeError(f"workers embedded with different models: {sorted(models)}")
    error_files = sorted(errors, key=lambda e: e["path"])
    dense.finish(
        root,
        [{k: e[k] for k in ("name", "docs", "chunks")} for e in entries],
        config,
        entries[0]["model"],
        entries[0]["window"],
        inputs=inputs,
        errors={"records": sum(e["records"] for e in error_files), "files": [e["path"] for e in error_files]},
        extra_shard_files=[ENTRY],
    )


class IndexDense(beam.PTransform):
    """Build the dense index of `files` into `root` (a local folder, or gs:// on Dataflow)."""

    def __init__(self, files: list[str], root: str, config: dense.DenseConfig, input_cfg: InputConfig):
        super().__init__()
        self.files, self.root, self.config, self.input_cfg = files, root, config, input_cfg

    def expand(self, pbegin):
        root, config = self.root, self.config
        read = pbegin | "ReadShards" >> ReadIndexShards(self.files, root, self.input_cfg, config.shard_docs)
        entries = (
            read.docs
            | "EmbedShard" >> beam.ParDo(_EmbedShard(root, config))
            | "AllShards" >> beam.combiners.ToList()
        )
        return entries | "BuildIndex" >> beam.Map(
            _build_index, beam.pvalue.AsList(read.errors), root, config, self.files
        )


def run(
    files: list[str],
    root: str,
    config: dense.DenseConfig,
    input_cfg: InputConfig,
    runner_cfg: Any,
    dry_run: bool = False,
) -> dict[str, Any] | None:
    """Run the pipeline; return the manifest (None for a Dataflow dry run), or raise InputError without documents."""
    from tamis.errors import InputError
    from tamis.io import manifest
    from tamis.pipelines.options import make

    atomic.makedirs(root)
    if not dry_run:
        atomic.remove_temporaries(root)  # a resumed build keeps finished shards, never a killed write's debris
    runner, options = make(runner_cfg, dry_run=dry_run)
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = p | "IndexDense" >> IndexDense(files, root, config, input_cfg)
    if dry_run:
        return None
    if not atomic.exists(atomic.join(root, manifest.MANIFEST)):
        raise InputError(f"The inputs hold no document to index: {', '.join(files)}", hint="check the input paths")
    return manifest.read_manifest(root, dense.KIND, dense.FORMAT_VERSION, verify=False)
