"""IndexBM25: input files -> a BM25 index directory, as a Beam pipeline over document record batches.

    files ─► ReadShards ─► (shard, docs batch) ─► CountShard ─┬─► stats: per-shard df ─► MergeStats ─► Vocabulary
                                  │                          └─► shard names ─► ScoreShard(vocab) ─► shard entries
                                  └─► errors/                                                         │
                                                                                          WriteManifest (last)

Each input file is cut into shards of `shard_docs` documents (the elements).
CountShard writes a shard's docstore and its term counts to `_tmp/`, and emits
the shard's name and, on a second output, its document-frequency table;
MergeStats sums those into global statistics; ScoreShard reads the counts
back and writes the shard's finished contributions with the global idf and
avgdl. A worker's memory is therefore one shard (its text, one chunk of
tokens, its postings at about 50 bytes each while scored) plus the global
vocabulary, never the whole corpus (figures in docs/bm25.md). The manifest is
written last, after every shard is done.
"""

import contextlib
import json
import logging
import shutil
from typing import Any

import apache_beam as beam
import pyarrow as pa

from tamis.indexes import bm25
from tamis.indexes.analysis import Analyzer
from tamis.io import arrays, atomic
from tamis.io.readers import InputConfig
from tamis.pipelines.index_read import ReadIndexShards

log = logging.getLogger(__name__)

TMP = "_tmp"
BUILDING = "_building.json"  # written first, removed before the manifest: names what an unfinished folder was building
_COUNT_ARRAYS = ("doc", "term", "tf", "doc_len")


def write_counts(root: str, name: str, counts: bm25.ShardCounts) -> None:
    for attr in _COUNT_ARRAYS:
        arrays.write_npy(atomic.join(root, TMP, name, f"{attr}.npy"), getattr(counts, attr))
    terms = pa.table({"term": pa.array(counts.terms, pa.string())})
    arrays.write_arrow(atomic.join(root, TMP, name, "terms.arrow"), terms)


def read_counts(root: str, name: str) -> bm25.ShardCounts:
    counts = {a: arrays.read_npy(atomic.join(root, TMP, name, f"{a}.npy")) for a in _COUNT_ARRAYS}
    terms = arrays.read_arrow(atomic.join(root, TMP, name, "terms.arrow"))
    return bm25.ShardCounts(terms=terms["term"].to_pylist(), **counts)


def _remove_tree(path: str) -> None:
    """Delete a scratch folder, local or remote (an object store deletes every object under the prefix)."""
    if atomic.is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        with contextlib.suppress(Exception):  # already gone, e.g. on a retried bundle
            FileSystems.delete([path.rstrip("/") + "/"])
    else:
        shutil.rmtree(path, ignore_errors=True)


class _CountShard(beam.DoFn):
    """Analyze a shard, write its docstore and counts; emit its name, and its statistics on `stats`.

    Two outputs, so the names that wait for the vocabulary hold no df tables.
    """

    def __init__(self, root: str, config: bm25.BM25Config):
        self.root, self.config = root, config

    def setup(self):
        self.analyzer = Analyzer(self.config.analysis)

    def process(self, element: tuple[str, pa.RecordBatch]):
        name, batch = element
        counts = bm25.count(self.analyzer, batch.column("text"))
        bm25.write_docs_file(self.root, name, bm25.docstore(batch, self.config.store_text))
        write_counts(self.root, name, counts)
        yield name
        yield beam.pvalue.TaggedOutput("stats", bm25.shard_stats(counts))


class _MergeStats(beam.CombineFn):
    """Sums shard statistics; accumulators are compacted in one group-by every few inputs."""

    def create_accumulator(self) -> list[bm25.Stats]:
        return []

    def add_input(self, acc: list[bm25.Stats], stats: bm25.Stats) -> list[bm25.Stats]:
        acc.append(stats)
        return [bm25.merge_stats(acc)] if len(acc) >= 8 else acc

    def merge_accumulators(self, accs) -> list[bm25.Stats]:
        return [bm25.merge_stats([s for acc in accs for s in acc])]

    def extract_output(self, acc: list[bm25.Stats]) -> bm25.Stats:
        return bm25.merge_stats(acc)


def _vocabulary(stats: bm25.Stats, root: str, config: bm25.BM25Config) -> bm25.Vocabulary | None:
    if stats.docs == 0:
        return None  # nothing to index: no manifest is written and the caller reports it
    vocab = bm25.Vocabulary.from_stats(stats, config)
    bm25.write_vocab(root, vocab)
    return vocab


class _ScoreShard(beam.DoFn):
    def __init__(self, root: str, config: bm25.BM25Config):
        self.root, self.config = root, config

    def process(self, name: str, vocab: bm25.Vocabulary | None):
        counts = read_counts(self.root, name)
        shard = bm25.score_shard(name, counts, pa.table({}), vocab, self.config)
        bm25.write_shard(self.root, shard, write_docs=False)
        _remove_tree(atomic.join(self.root, TMP, name))
        yield {"name": name, "docs": counts.n_docs, "postings": len(shard.data)}


def _write_manifest(entries, vocab, errors, root: str, config: bm25.BM25Config, inputs: list[str]) -> None:
    if vocab is None:
        return
    error_files = sorted(errors, key=lambda e: e["path"])
    _remove_tree(atomic.join(root, TMP))
    atomic.delete(atomic.join(root, BUILDING))
    bm25.write_manifest(
        root,
        config,
        vocab,
        list(entries),
        inputs=inputs,
        errors={"records": sum(e["records"] for e in error_files), "files": [e["path"] for e in error_files]},
        extra_files=[e["path"] for e in error_files],
    )


class IndexBM25(beam.PTransform):
    """Build the index of `files` into `root` (a local folder, or gs:// on Dataflow)."""

    def __init__(self, files: list[str], root: str, config: bm25.BM25Config, input_cfg: InputConfig):
        super().__init__()
        self.files, self.root, self.config, self.input_cfg = files, root, config, input_cfg

    def expand(self, pbegin):
        root, config = self.root, self.config
        read = pbegin | "ReadShards" >> ReadIndexShards(self.files, root, self.input_cfg, config.shard_docs)
        counted = read.docs | "CountShard" >> beam.ParDo(_CountShard(root, config)).with_outputs("stats", main="names")
        vocab = (
            counted.stats
            | "MergeStats" >> beam.CombineGlobally(_MergeStats())
            | "WriteVocab" >> beam.Map(_vocabulary, root, config)
        )
        entries = (
            counted.names
            | "ScoreShard" >> beam.ParDo(_ScoreShard(root, config), beam.pvalue.AsSingleton(vocab))
            | "AllShards" >> beam.combiners.ToList()
        )
        return entries | "WriteManifest" >> beam.Map(
            _write_manifest,
            beam.pvalue.AsSingleton(vocab),
            beam.pvalue.AsList(read.errors),
            root,
            config,
            self.files,
        )


def build_fingerprint(files: list[str], config: bm25.BM25Config, input_cfg: InputConfig) -> str:
    """What an index's files depend on: the inputs (path and size), the index config and how inputs are read."""
    from tamis.io import run_dir

    return run_dir.fingerprint({
        "inputs": [[f, atomic.size(f)] for f in files],
        "config": config.to_dict(),
        "read": {"format": input_cfg.format, "text_field": input_cfg.text_field, "id_field": input_cfg.id_field},
    })


def unfinished_build(root: str, fingerprint: str) -> bool:
    """Whether `root` holds a build of these inputs and config that was stopped before its manifest.

    Such a folder is the build's own debris: a rerun clears it and builds again, which gives the same bytes
    (the build is deterministic), so a killed `tamis index bm25` is finished by running it again.
    """
    from tamis.io import manifest

    marker = atomic.join(root, BUILDING)
    if atomic.exists(atomic.join(root, manifest.MANIFEST)) or not atomic.exists(marker):
        return False
    try:
        with atomic.open_read(marker) as f:
            return json.loads(f.read()).get("fingerprint") == fingerprint
    except ValueError:  # a damaged marker: not evidence of our own build
        return False


def run(
    files: list[str], root: str, config: bm25.BM25Config, input_cfg: InputConfig, runner_cfg: Any, dry_run: bool = False
) -> dict[str, Any] | None:
    """Run the pipeline; return the manifest, or raise InputError when the inputs hold no document.

    `dry_run` on Dataflow builds and checks the job graph offline (Beam's dry_run) and returns None.
    """
    from tamis.errors import InputError
    from tamis.io import manifest
    from tamis.pipelines.options import make

    config.check()
    if not dry_run:
        atomic.makedirs(root)
        marker = {"fingerprint": build_fingerprint(files, config, input_cfg)}
        atomic.write_bytes(atomic.join(root, BUILDING), json.dumps(marker).encode())
    runner, options = make(runner_cfg, dry_run=dry_run)
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = p | "IndexBM25" >> IndexBM25(files, root, config, input_cfg)
    if dry_run:
        return None
    if not atomic.exists(atomic.join(root, manifest.MANIFEST)):
        raise InputError(f"The inputs hold no document to index: {', '.join(files)}", hint="check the input paths")
    return manifest.read_manifest(root, bm25.KIND, bm25.FORMAT_VERSION, verify=False)
