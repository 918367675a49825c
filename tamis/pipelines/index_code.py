"""IndexCode: repositories -> a code index directory, as a Beam pipeline with one repository per element.

    sources ─► Reshuffle ─► IndexRepo (ingest, parse, graph, windows; write repos/<name>/) ─► ToList ─► WriteManifest

A source is a directory, a git repository (`PATH` or `PATH@COMMIT`, bare or a working tree), a tar/zip
archive, or a JSONL(.gz) of {"repo", "path", "content"} rows that may hold several repositories. A
repository is the unit of work (its import graph needs all of its files), so a worker's memory is one
repository; repositories spread over workers. The manifest is written last, after every repository.
"""

import logging
import os
from typing import Any

import apache_beam as beam

from tamis.code import ingest, store
from tamis.code.index import CodeIndexConfig, build

log = logging.getLogger(__name__)


def split_source(source: str) -> tuple[str, str]:
    """`PATH@COMMIT` -> (PATH, COMMIT); a plain path reads HEAD."""
    if "@" in source and not os.path.exists(source):
        path, _, commit = source.rpartition("@")
        return path, commit or "HEAD"
    return source, "HEAD"


def repositories(source: str, config: CodeIndexConfig):
    """The Repository objects one source holds."""
    from tamis.io.side_files import jsonl_rows

    path, commit = split_source(source)
    if path.endswith((".jsonl", ".jsonl.gz")):
        yield from ingest.from_rows((row for _, row in jsonl_rows(path)), config.ingest)
        return
    yield ingest.open_repository(path, config.ingest, commit)


class _IndexRepos(beam.DoFn):
    def __init__(self, root: str, config: CodeIndexConfig):
        self.root, self.config = root, config

    def process(self, source: str):
        for repo in repositories(source, self.config):
            index = build(repo, self.config)
            entry = store.write_repo(self.root, index)
            entry["skipped"] = repo.skipped_by_reason()
            entry["source"] = source
            log.info("indexed %s: %d files, %d windows", repo.name, entry["files"], entry["windows"])
            yield entry


class IndexCode(beam.PTransform):
    def __init__(self, sources: list[str], root: str, config: CodeIndexConfig):
        super().__init__()
        self.sources, self.root, self.config = sources, root, config

    def expand(self, pbegin):
        return (
            pbegin
            | "Sources" >> beam.Create(self.sources)
            | "Spread" >> beam.Reshuffle()
            | "IndexRepo" >> beam.ParDo(_IndexRepos(self.root, self.config))
            | "AllRepos" >> beam.combiners.ToList()
            | "WriteManifest" >> beam.Map(lambda entries: store.write_manifest(self.root, self.config, entries))
        )


def run(sources: list[str], root: str, config: CodeIndexConfig, runner_cfg: Any) -> dict[str, Any]:
    """Run the pipeline and return the manifest."""
    from tamis.errors import InputError
    from tamis.io import atomic, manifest
    from tamis.pipelines.options import make

    config.check()
    atomic.makedirs(root)
    runner, options = make(runner_cfg)
    with beam.Pipeline(runner=runner, options=options) as p:
        _ = p | "IndexCode" >> IndexCode(sources, root, config)
    if not atomic.exists(atomic.join(root, manifest.MANIFEST)):
        raise InputError(f"No code index was written from {', '.join(sources)}.")
    return manifest.read_manifest(root, store.KIND, store.FORMAT_VERSION, verify=False)
