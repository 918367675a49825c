"""The curate pipeline: read → normalize → exact dedup → score/filter → write shards, dropped, errors."""

import logging
import shutil
import time
from dataclasses import dataclass, field

import apache_beam as beam

from tamis.config import CurateConfig
from tamis.dedup.decontam import load_items, merge_stats, report
from tamis.errors import ConfigError
from tamis.filters.registry import build
from tamis.io import atomic, run_dir
from tamis.io.readers import expand
from tamis.io.run_dir import InputFile
from tamis.pipelines import options, spill
from tamis.pipelines.decontam import Decontaminate
from tamis.pipelines.exact_dedup import ExactDedup
from tamis.pipelines.neardup import NearDup
from tamis.pipelines.quality_cut import TopFractionCut
from tamis.pipelines.read import DROPPED, ERRORS, STATS, ReadInputs
from tamis.pipelines.score import ScoreFilter
from tamis.pipelines.semdedup import SemanticDedup
from tamis.pipelines.write import WriteRun, keyed_files

log = logging.getLogger(__name__)
SPILL = "_spill"  # scratch folder of a local run: batches waiting at a barrier (tamis.pipelines.spill)


@dataclass
class Plan:
    """What a run will do: every input file, and those a previous attempt already finished."""

    inputs: list[InputFile]
    done: set[int] = field(default_factory=set)
    fingerprint: str = ""

    @property
    def todo(self) -> list[InputFile]:
        return [f for f in self.inputs if f.index not in self.done]


def plan(cfg: CurateConfig, offline: bool = False) -> Plan:
    """List inputs and finished work. `offline` (a Dataflow dry run) touches no remote path:
    a remote glob stands for itself and the output is assumed empty."""
    files: list[InputFile] = []
    for i, cfg_in in enumerate(cfg.inputs):
        if offline and atomic.is_remote(cfg_in.path):
            files.append(InputFile(len(files), cfg_in.path, i, 0))
            continue
        for path in expand(cfg_in):
            files.append(InputFile(len(files), path, i, atomic.size(path)))
    if cfg.decontaminate.enabled:  # a missing or malformed benchmark fails here, before any work
        for bench in cfg.decontaminate.benchmarks:
            if not (offline and atomic.is_remote(bench.path)):
                load_items(bench)
    fp = run_dir.fingerprint(cfg.to_dict())
    if offline and atomic.is_remote(cfg.output):
        return Plan(files, set(), fp)
    run_dir.check_reusable(cfg.output, fp)
    done = {f.index for f in files if run_dir.read_marker(cfg.output, f, fp) is not None}
    return Plan(files, done, fp)


def components(cfg: CurateConfig) -> list[str]:
    return [build(s.name, s.params).key() for s in cfg.filters]


def stages(cfg: CurateConfig) -> list[str]:
    out = ["read", "normalize"]
    if cfg.exact_dedup.enabled:
        out.append("exact_dedup")
    if cfg.near_dedup.enabled:
        out.append("near_dedup")
    if cfg.semantic_dedup.enabled:
        out.append("semantic_dedup")
    if cfg.decontaminate.enabled:
        out.append("decontaminate")
    out += [f"filter:{c}" for c in components(cfg)]
    return out + ["write"]


def chain_segments(cfg: CurateConfig) -> list[tuple[int, list, object | None]]:
    """Split the filter chain after each run-wide filter: (offset, specs, the run-wide filter or None)."""
    out, start = [], 0
    for i, spec in enumerate(cfg.filters):
        comp = build(spec.name, spec.params)
        if getattr(comp, "run_wide", False):
            out.append((start, cfg.filters[start : i + 1], comp))
            start = i + 1
    if start < len(cfg.filters) or not out:
        out.append((start, cfg.filters[start:], None))
    return out


def _score(docs, dropped: list, cfg: CurateConfig):
    """The filter chain, with a whole-run cut after each run-wide filter."""
    for offset, specs, run_wide in chain_segments(cfg):
        if specs:
            scored = docs | f"Score{offset}" >> ScoreFilter(specs, offset)
            docs = scored.kept
            dropped.append(scored[DROPPED])
        if run_wide is not None:
            position = offset + len(specs) - 1
            cut = docs | f"TopFraction{position}" >> TopFractionCut(run_wide, position)
            docs = cut.kept
            dropped.append(cut[DROPPED])
    return docs


def build_pipeline(p: beam.Pipeline, cfg: CurateConfig, pl: Plan) -> None:
    # With dedup across documents or a run-wide cut, finished inputs are still read: their texts
    # decide what later inputs drop.
    run_wide = any(seg[2] is not None for seg in chain_segments(cfg))
    whole_run = cfg.exact_dedup.enabled or cfg.near_dedup.enabled or cfg.semantic_dedup.enabled or run_wide
    to_read = pl.inputs if whole_run else pl.todo
    read = p | "Read" >> ReadInputs(cfg, to_read)
    docs = read.docs
    dropped = [read[DROPPED]]
    if cfg.exact_dedup.enabled:
        dedup = docs | "ExactDedup" >> ExactDedup(cfg.exact_dedup)
        docs = dedup["kept"]
        dropped.append(dedup[DROPPED])
    if cfg.near_dedup.enabled:
        near = docs | "NearDedup" >> NearDup(cfg.near_dedup)
        docs = near.kept
        dropped.append(near[DROPPED])
    if cfg.semantic_dedup.enabled:
        sem = docs | "SemanticDedup" >> SemanticDedup(cfg.semantic_dedup)
        docs = sem.kept
        dropped.append(sem[DROPPED])
    done = frozenset(pl.done)

    def todo_batch(kv) -> bool:  # key (input, batch)
        return kv[0][0] not in done

    def todo(kv) -> bool:  # key input
        return kv[0] not in done

    if not run_wide:  # per-document steps from here on: finished inputs need not be redone
        docs = docs | "SkipFinished" >> beam.Filter(todo_batch)
    stats = [read[STATS]]
    if cfg.decontaminate.enabled:
        decon = docs | "Decontaminate" >> Decontaminate(cfg.decontaminate)
        docs = decon.kept
        dropped.append(decon[DROPPED])
        stats.append(decon[STATS])
    docs = _score(docs, dropped, cfg)
    if run_wide:
        docs = docs | "SkipFinished" >> beam.Filter(todo_batch)
    tagged = {
        "file": p | "FileKeys" >> beam.Create(keyed_files(pl.todo)),
        "stats": stats | "AllStats" >> beam.Flatten() | "SkipFinishedStats" >> beam.Filter(todo),
        "kept": docs | "ByInput" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1]))),
        "dropped": [d | f"HoldDropped{i}" >> spill.Spill() for i, d in enumerate(dropped)]  # before the Flatten waits
        | "AllDropped" >> beam.Flatten()
        | "SkipFinishedDrops" >> beam.Filter(todo),
        "errors": read[ERRORS] | "SkipFinishedErrors" >> beam.Filter(todo),
    }
    _ = tagged | "Write" >> WriteRun(cfg, pl.fingerprint)


def _decontamination(markers: list[dict]) -> dict:
    """The manifest's decontamination section: leaks per benchmark, merged over the inputs."""
    stats: dict = {}
    for m in markers:
        stats = merge_stats(stats, m["counts"].get("decontam", {}))
    return {"decontamination": report(stats)} if stats else {}


def run(cfg: CurateConfig, dry_run: bool = False) -> dict | None:
    """Run (or with dry_run on Dataflow, only build and check) the pipeline; return the manifest."""
    started = time.time()
    pl = plan(cfg, offline=dry_run)
    names = components(cfg)
    if pl.todo:
        log.info("%d inputs, %d already finished; running on %s", len(pl.inputs), len(pl.done), cfg.runner.name)
        spill_dir = None if atomic.is_remote(cfg.output) else atomic.join(cfg.output, SPILL)
        runner, opts = options.make(cfg.runner, dry_run=dry_run, spill_dir=spill_dir)
        try:
            p = beam.Pipeline(runner=runner, options=opts)
        except ValueError as e:  # Beam validates options here (project id, regions, ...)
            raise ConfigError(" ".join(str(e).split()), hint="check runner.options") from e
        try:
            with p:
                build_pipeline(p, cfg, pl)
        finally:
            if spill_dir:
                shutil.rmtree(spill_dir, ignore_errors=True)
        if dry_run:
            return None
    return run_dir.finish(cfg.output, cfg.to_dict(), pl.inputs, time.time() - started, names, _decontamination)
