"""CodeFim: curated code files -> FIM training samples with cross-file context, as Parquet shards + manifest.

    inputs ─► ReadFiles ─► (repo, file) ─► GroupByKey(repo) ─► RepoSamples ─► ToList ─► WriteManifest (last)
                 └─► errors/

The repository is the unit of work: its files are indexed in memory (tamis.code.index), each file gets
its sample (tamis.code.fim) with the context retrieved from the repository's other files at the
middle's start, and the repository's samples are written as `shards/<repo>-NNNN.parquet`. A finished
repository leaves `_done/<repo>.json` with its shard entries, so a rerun after a crash reuses finished
repositories (their shards verified by checksum) and redoes only the others.
"""

import json
import logging
from collections import Counter
from typing import Any

import apache_beam as beam
import pyarrow as pa

from tamis.code import fim, ingest
from tamis.code.fim import FimConfig
from tamis.code.index import CodeIndexConfig, build
from tamis.code.retriever import ContextRetriever, Cursor, RetrieverConfig, assemble
from tamis.code.store import slug
from tamis.config import RunnerConfig
from tamis.errors import ConfigError
from tamis.io import atomic, manifest
from tamis.io.readers import InputConfig, expand, read_file
from tamis.io.shards import ShardConfig, ShardWriter
from tamis.validation import Params

log = logging.getLogger(__name__)

SAMPLE = pa.schema([
    ("id", pa.string()), ("source_id", pa.string()), ("repo", pa.string()), ("path", pa.string()),
    ("language", pa.string()), ("text", pa.large_string()), ("context", pa.large_string()),
    ("prefix", pa.large_string()), ("middle", pa.large_string()), ("suffix", pa.large_string()),
    ("span", pa.string()), ("node", pa.string()), ("order", pa.string()), ("context_snippets", pa.int32()),
])  # fmt: skip


class FaultInjected(RuntimeError):
    """Raised by `fail_after_repos` to simulate a crash mid-run."""


class CodeFimConfig(Params):
    """`tamis code fim CONFIG.yaml`: inputs (curate run shards or JSONL/Parquet code files), output folder."""

    inputs: list[InputConfig]
    output: str
    fim: FimConfig = FimConfig()
    index: CodeIndexConfig = CodeIndexConfig()
    retriever: RetrieverConfig = RetrieverConfig()
    shards: ShardConfig = ShardConfig()
    runner: RunnerConfig = RunnerConfig()
    fail_after_repos: int | None = None  # fault injection for resume tests

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("code fim needs at least one input.", hint="list files or globs under 'inputs'")


class _ReadFiles(beam.DoFn):
    def __init__(self, cfg: CodeFimConfig):
        self.cfg = cfg

    def process(self, item: tuple[int, str, int]):
        path, index = item[1], item[2]
        for kind, batch in read_file(path, self.cfg.inputs[index], 1000):
            if kind == "errors":
                yield beam.pvalue.TaggedOutput("errors", (path, batch.num_rows))
                continue
            for doc_id, text, source, meta in zip(*(batch.column(c).to_pylist() for c in ("id", "text", "source", "meta")),
                                                  strict=True):  # fmt: skip
                repo, file_path = fim.repo_and_path(meta, source, doc_id)
                yield repo, (file_path, doc_id, text)


class _RepoSamples(beam.DoFn):
    written = 0  # repositories finished by this worker process (fault injection only)

    def __init__(self, cfg: CodeFimConfig):
        self.cfg = cfg

    def process(self, element):
        repo_name, files = element
        done = atomic.join(self.cfg.output, "_done", f"{slug(repo_name)}.json")
        if atomic.exists(done):
            with atomic.open_read(done) as f:
                entry = json.loads(f.read())
            if _verified(self.cfg.output, entry["files"]):
                yield entry
                return
        entry = make_repo_samples(repo_name, sorted(files), self.cfg)
        atomic.write_bytes(done, json.dumps(entry).encode())
        type(self).written += 1
        if self.cfg.fail_after_repos is not None and type(self).written >= self.cfg.fail_after_repos:
            raise FaultInjected(f"fault injection: stopping after {self.cfg.fail_after_repos} repositories")
        yield entry


def _verified(root: str, entries: list[dict]) -> bool:
    for e in entries:
        path = atomic.join(root, e["path"])
        if not atomic.exists(path) or atomic.sha256_file(path) != e["sha256"]:
            return False
    return True


def make_repo_samples(repo_name: str, files: list[tuple[str, str, str]], cfg: CodeFimConfig) -> dict[str, Any]:
    """Index one repository's files, sample each, write its shards; returns its `_done` entry."""
    items = {}
    ids = {}
    for path, doc_id, text in files:  # a path given twice keeps its first record (sorted by path, then id)
        if path not in items:
            items[path] = text.encode("utf-8")
            ids[path] = doc_id
    repo = ingest.from_items(repo_name, list(items.items()), cfg.index.ingest)
    index = build(repo, cfg.index)
    retriever = ContextRetriever(index, cfg.retriever)
    rows, counts = [], Counter()
    for f in repo.files:
        doc_id = ids[f.path]
        sample = fim.make_sample(doc_id, f.text, f.language, cfg.fim)
        context_text, n_snippets = "", 0
        if cfg.fim.context_budget > 0:
            cursor = Cursor(f.path, sample.prefix.count("\n") + 1, sample.prefix)
            context = assemble(retriever.rank(cursor), cfg.fim.context_budget, f.language)
            context_text, n_snippets = context.text, len(context.snippets)
        counts[f"span_{sample.span}"] += 1
        counts[f"order_{sample.order}"] += 1
        rows.append({
            "id": f"{doc_id}#fim", "source_id": doc_id, "repo": repo_name, "path": f.path, "language": f.language,
            "text": sample.format(cfg.fim, context_text), "context": context_text, "prefix": sample.prefix,
            "middle": sample.middle, "suffix": sample.suffix, "span": sample.span, "node": sample.node,
            "order": sample.order, "context_snippets": n_snippets,
        })  # fmt: skip
    with ShardWriter(cfg.output, "shards", slug(repo_name), cfg.shards.target_bytes, cfg.shards.compression) as w:
        for start in range(0, len(rows), 256):
            w.write(pa.RecordBatch.from_pylist(rows[start : start + 256], schema=SAMPLE))
    return {
        "repo": repo_name, "files": w.entries, "samples": len(rows), "counts": dict(sorted(counts.items())),
        "skipped": repo.skipped_by_reason(),
    }  # fmt: skip


def _write_manifest(entries: list[dict], errors: list[tuple[str, int]], cfg: CodeFimConfig) -> None:
    entries = sorted(entries, key=lambda e: e["repo"])
    counts: Counter = Counter()
    for e in entries:
        counts.update(e["counts"])
    body = {
        "config": cfg.to_dict(),
        "repos": [{k: e[k] for k in ("repo", "samples", "counts", "skipped")} for e in entries],
        "counts": {"samples": sum(e["samples"] for e in entries), **dict(sorted(counts.items()))},
        "error_records": sum(n for _, n in errors),
    }
    files = [{"path": f["path"], "bytes": f["bytes"], "sha256": f["sha256"]} for e in entries for f in e["files"]]
    manifest.write_manifest(cfg.output, fim.KIND, fim.FORMAT_VERSION, body, files)


class CodeFim(beam.PTransform):
    def __init__(self, cfg: CodeFimConfig, files: list[tuple[int, str, int]]):
        super().__init__()
        self.cfg, self.files = cfg, files

    def expand(self, pbegin):
        cfg = self.cfg
        read = (
            pbegin
            | "Inputs" >> beam.Create(self.files)
            | "Spread" >> beam.Reshuffle()
            | "ReadFiles" >> beam.ParDo(_ReadFiles(cfg)).with_outputs("errors", main="files")
        )
        entries = (
            read.files
            | "ByRepo" >> beam.GroupByKey()
            | "RepoSamples" >> beam.ParDo(_RepoSamples(cfg))
            | "AllRepos" >> beam.combiners.ToList()
        )
        return entries | "WriteManifest" >> beam.Map(_write_manifest, beam.pvalue.AsList(read.errors), cfg)


def input_files(cfg: CodeFimConfig) -> list[tuple[int, str, int]]:
    found = [(path, i) for i, inp in enumerate(cfg.inputs) for path in expand(inp)]
    return [(n, path, i) for n, (path, i) in enumerate(found)]


def run(cfg: CodeFimConfig) -> dict[str, Any]:
    """Run (or resume) the pipeline; return the manifest."""
    from tamis.pipelines.options import make

    files = input_files(cfg)
    atomic.makedirs(cfg.output)
    runner, options = make(cfg.runner)
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = p | "CodeFim" >> CodeFim(cfg, files)
    return manifest.read_manifest(cfg.output, fim.KIND, fim.FORMAT_VERSION, verify=True)
