"""Augment: curated shards -> (chunk, neighbours) rows for retrieval-augmented training, as Parquet shards + manifest.

    input shards ─► Reshuffle ─► AugmentShard (index loaded once per worker) ─► ToList ─► manifest (last)

The unit of work is one input shard (a curate run's `shards/*.parquet`, as its
verified manifest lists them): a worker reads it `batch_rows` documents at a
time, chunks them, retrieves every chunk's neighbours in batches and writes
`shards/part-NNNNN-MMMM.parquet` (NNNNN: the input shard's number), then the
shard's progress marker `_progress/NNNNN.json` (tamis.io.run_dir) with its
counts and files. A rerun reuses every input shard whose marker and files
verify, removes what a killed attempt left, and redoes the rest; the output
depends only on the inputs, the indexes and the config, so it comes out
byte-identical. The pure work is tamis.retrievers.augment.
"""

import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
import pyarrow.parquet as pq

from tamis.config import RunnerConfig
from tamis.errors import IntegrityError
from tamis.io import atomic, manifest, run_dir
from tamis.io.run_dir import RunShard
from tamis.io.shards import ShardWriter
from tamis.pipelines import options, progress
from tamis.pipelines.progress import StageClock
from tamis.retrievers import augment
from tamis.retrievers.augment import Augmenter, AugmentSpec
from tamis.validation import parse

log = logging.getLogger(__name__)
STAGE = "augment"
_AUGMENTERS: dict[str, Augmenter] = {}  # per worker process: the loaded index and exclusion data, by config


class FaultInjected(RuntimeError):
    """Raised by `fail_after_shards` to simulate a crash mid-run."""


class AugmentConfig(AugmentSpec):
    """`tamis augment CONFIG.yaml`: the augmentation (tamis.retrievers.augment) plus how this run executes."""

    runner: RunnerConfig = RunnerConfig()
    fail_after_shards: int | None = None  # fault injection for resume tests: stop after writing N output shards


def load_config(raw: dict[str, Any]) -> AugmentConfig:
    return parse(AugmentConfig, raw, owner="augment")


@dataclass
class Plan:
    parts: list[RunShard]
    identity: dict[str, Any]
    fingerprint: str
    done: dict[int, dict] = field(default_factory=dict)
    finished: dict | None = None

    @property
    def todo(self) -> list[RunShard]:
        return [p for p in self.parts if p.index not in self.done]


def _config_dict(cfg: AugmentConfig) -> dict[str, Any]:
    return {k: v for k, v in cfg.to_dict().items() if k not in ("runner", "fail_after_shards")}


def plan(cfg: AugmentConfig) -> Plan:
    """Verify the input runs, the duplicate runs and the index manifests; load the benchmarks; list finished work.

    Everything that can fail before work does fail here. Reads only.
    """
    identity = augment.fingerprint_inputs(cfg)
    augment.check_texts(cfg, augment.index_manifests(cfg.retriever))
    if cfg.exclude.decontaminate.enabled:
        augment.decontam.build_index(cfg.exclude.decontaminate)  # a missing file or field fails now
    parts = []
    for run in cfg.inputs:
        found = run_dir.load(run, verify=False)  # verified just above, in fingerprint_inputs
        parts += run_dir.run_shards(run, found, len(parts))
    fp = run_dir.fingerprint({"config": _config_dict(cfg), "identity": identity})
    pl = Plan(parts, identity, fp)
    pl.finished = run_dir.finished(cfg.output, fp)
    if pl.finished is None:
        for part in parts:
            marker = run_dir.read_marker(cfg.output, part.input, fp, verify=True)
            if marker is not None:
                pl.done[part.index] = marker
    return pl


def augmenter_for(cfg: AugmentConfig) -> Augmenter:
    """The worker process's Augmenter for this config, made on first use (loading verifies the index)."""
    key = augment.dumps(_config_dict(cfg))
    if key not in _AUGMENTERS:
        _AUGMENTERS.clear()  # one config per process at a time: indexes are large
        _AUGMENTERS[key] = Augmenter(cfg)
    return _AUGMENTERS[key]


class _AugmentShard(beam.DoFn):
    def __init__(self, cfg: AugmentConfig, fingerprint: str, progress_dir: str | None):
        self.cfg, self.fingerprint, self.progress_dir = cfg, fingerprint, progress_dir

    def setup(self):
        self.augmenter = augmenter_for(self.cfg)
        self.clock = StageClock(STAGE, self.progress_dir)
        self.read_clock = StageClock("read", self.progress_dir)  # input bytes, for the progress bar
        self.written = 0  # output shards this instance wrote (fault injection only)

    def finish_bundle(self):
        self.clock.flush()

    def process(self, part: RunShard):
        started = time.perf_counter()
        counts, files = self._write(part)
        run_dir.write_marker(self.cfg.output, part.input, self.fingerprint, counts, files)
        self.read_clock.add(0.0, 0, part.bytes)
        self.clock.add(time.perf_counter() - started, counts.get("documents", 0))
        log.info("augmented %s: %d chunks", part.file, counts.get("chunks", 0))
        yield part.index

    def _write(self, part: RunShard) -> tuple[dict[str, int], list[dict]]:
        cfg = self.cfg
        total: dict[str, int] = {}
        with ShardWriter(cfg.output, "shards", f"part-{part.index:05d}", cfg.shards.target_bytes,
                         cfg.shards.compression) as w, atomic.open_read(part.file) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=cfg.batch_rows, columns=["id", "text"]):
                rows, counts = self.augmenter.augment(batch)
                w.write(rows)
                for k, v in counts.items():
                    total[k] = total.get(k, 0) + int(v)
                limit = cfg.fail_after_shards
                if limit is not None and self.written + len(w.entries) >= limit:
                    raise FaultInjected(f"fault injection: stopping after {limit} output shards")
        self.written += len(w.entries)
        return total, w.entries


class Augment(beam.PTransform):
    """The parts to do -> their indexes, once each has its shards and marker written."""

    def __init__(self, cfg: AugmentConfig, parts: list[RunShard], fingerprint: str):
        super().__init__()
        self.cfg, self.parts, self.fingerprint = cfg, parts, fingerprint

    def expand(self, pbegin):
        fn = _AugmentShard(self.cfg, self.fingerprint, progress.folder_of(pbegin.pipeline))
        return (
            pbegin
            | "Parts" >> beam.Create(self.parts)
            | "Spread" >> beam.Reshuffle()
            | "AugmentShard" >> beam.ParDo(fn)
        )


def finish(cfg: AugmentConfig, pl: Plan, seconds: float, stages: dict[str, Any]) -> dict[str, Any]:
    """Check every input shard is done, then write the manifest last."""
    markers = []
    for part in pl.parts:
        m = run_dir.read_marker(cfg.output, part.input, pl.fingerprint, verify=False)
        if m is None:
            raise IntegrityError(f"input shard {part.file} has no finished output in {cfg.output}", hint="rerun to resume")
        markers.append(m)
    files = [e for m in markers for e in m["files"]]
    files += [manifest.file_entry(cfg.output, f"_progress/{p.index:05d}.json") for p in pl.parts]
    counts = augment.merge_counts([m["counts"] for m in markers])
    body = {
        "made_by": "tamis augment",
        "config": cfg.to_dict(),
        "config_fingerprint": pl.fingerprint,
        **pl.identity,
        "seconds": round(seconds, 3),
        "counts": counts,
        "chunks_per_s": round(counts["chunks"] / seconds, 1) if seconds > 0 else None,
        "parts": [{"input": p.file, "counts": m["counts"], "shards": [e["path"] for e in m["files"]]}
                  for p, m in zip(pl.parts, markers, strict=True)],
        "stages": stages,
        "shards": [{k: e[k] for k in ("path", "rows", "bytes")} for m in markers for e in m["files"]],
    }
    return manifest.write_manifest(cfg.output, augment.KIND, augment.FORMAT_VERSION, body, files)


def run(cfg: AugmentConfig) -> dict[str, Any]:
    """Run (or resume) the augmentation; return the manifest."""
    started = time.time()
    pl = plan(cfg)
    if pl.finished is not None:
        log.info("%s is a finished augmentation with this config; nothing to do", cfg.output)
        return pl.finished
    atomic.makedirs(cfg.output)
    run_dir.clean(cfg.output, list(pl.done.values()))
    stages: dict[str, Any] = {}
    if pl.todo:
        log.info("%d input shards, %d already finished; running on %s", len(pl.parts), len(pl.done), cfg.runner.name)
        scratch = None if atomic.is_remote(cfg.output) else atomic.join(cfg.output, run_dir.SCRATCH)
        progress_dir = atomic.join(scratch, f"progress-{uuid.uuid4().hex[:8]}") if scratch else None
        runner, opts = options.make(cfg.runner, progress_dir=progress_dir)
        try:
            with progress.Watch(progress_dir, sum(p.bytes for p in pl.todo), [STAGE]):
                with beam.Pipeline(runner=runner, options=opts) as p:
                    _ = p | "Augment" >> Augment(cfg, pl.todo, pl.fingerprint)
            totals = progress.read_totals(progress_dir)
            stages = progress.stages({STAGE: totals[STAGE]} if STAGE in totals else {}, [STAGE])
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    return finish(cfg, pl, time.time() - started, stages)
