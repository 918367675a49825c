"""The curate pipeline (`Curate`): the flow of DESIGN.md as one Beam transform, and `run`, which plans and runs it."""

import logging
import shutil
import time
import uuid
from dataclasses import dataclass, field

import apache_beam as beam

from tamis.config import CurateConfig
from tamis.dedup import signatures
from tamis.dedup.decontam import load_items, merge_stats, report
from tamis.errors import ConfigError
from tamis.filters.registry import build
from tamis.io import atomic, run_dir
from tamis.io.readers import expand, reader_format
from tamis.io.run_dir import InputFile
from tamis.pipelines import options, pool, progress, spill
from tamis.pipelines.decontam import Decontaminate
from tamis.pipelines.exact_dedup import ExactDedup
from tamis.pipelines.neardup import NearDup
from tamis.pipelines.quality_cut import TopFractionCut
from tamis.pipelines.read import ReadInputs
from tamis.pipelines.score import ScoreFilter
from tamis.pipelines.semdedup import SemanticDedup
from tamis.pipelines.write import WriteRun, keyed_files

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What a run will do: every input file, those a previous attempt already finished (verified markers),
    or the manifest of a run that is already complete."""

    inputs: list[InputFile]
    done: dict[int, dict] = field(default_factory=dict)  # input index -> its verified progress marker
    fingerprint: str = ""
    finished: dict | None = None

    @property
    def todo(self) -> list[InputFile]:
        return [f for f in self.inputs if f.index not in self.done]

    def joinable(self, kinds: tuple[str, ...]) -> dict[int, dict[str, str]]:
        """Finished inputs whose markers list kept signatures of every kind: input index → {kind: path}.

        A marker without them (an older tamis, or a config that kept none) leaves its input to be reread.
        """
        if not kinds:
            return {}
        return {i: {k: m["signatures"][k] for k in kinds} for i, m in sorted(self.done.items())
                if set(kinds) <= set(m.get("signatures", {}))}


def plan(cfg: CurateConfig, offline: bool = False) -> Plan:
    """Check everything that can be checked before any work, and list the inputs and the finished work.

    Every input file must exist and have a known format; the output must be a
    writable folder; benchmarks must load. `offline` (a Dataflow dry run)
    touches no remote path: a remote glob stands for itself and the output is
    assumed empty. Reads only: nothing is written or removed here.
    """
    files: list[InputFile] = []
    for i, cfg_in in enumerate(cfg.inputs):
        if offline and atomic.is_remote(cfg_in.path):
            files.append(InputFile(len(files), cfg_in.path, i, 0))
            continue
        for path in expand(cfg_in):
            reader_format(path, cfg_in)  # an unknown format fails now, not mid-pipeline
            files.append(InputFile(len(files), path, i, atomic.size(path)))
    if cfg.decontaminate.enabled:  # a missing or malformed benchmark fails here, before any work
        for bench in cfg.decontaminate.benchmarks:
            if not (offline and atomic.is_remote(bench.path)):
                load_items(bench)
    fp = run_dir.fingerprint(cfg.to_dict())
    if atomic.is_remote(cfg.output):
        if offline:
            return Plan(files, {}, fp)
    else:
        atomic.check_writable_dir(cfg.output)
    complete = run_dir.finished(cfg.output, fp)
    if complete is not None:
        return Plan(files, {f.index: {} for f in files}, fp, complete)
    markers = {f.index: m for f in files if (m := run_dir.read_marker(cfg.output, f, fp)) is not None}
    return Plan(files, markers, fp)


def components(cfg: CurateConfig) -> list[str]:
    return [build(s.name, s.params).key() for s in cfg.filters]


def stage_order(cfg: CurateConfig) -> list[str]:
    """The names stages report their time under (tamis.pipelines.progress), in pipeline order."""
    return ["read", "exact_dedup", "near_dedup", "semantic_dedup", "decontaminate"] + [
        f"filter:{c}" for c in components(cfg)] + ["write"]


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


def run_wide(cfg: CurateConfig) -> bool:
    return any(seg[2] is not None for seg in chain_segments(cfg))


def signature_kinds(cfg: CurateConfig) -> tuple[str, ...]:
    """The dedup signatures each finished input keeps, so a resumed run joins them instead of rereading it.

    None with semantic dedup or a run-wide cut: those need every document's
    embedding or score, which are not kept, so a resume rereads finished inputs.
    """
    if cfg.semantic_dedup.enabled or run_wide(cfg):
        return ()
    ex = cfg.exact_dedup
    return signatures.needed(ex.enabled, ex.units != "off", cfg.near_dedup.enabled)


def score_stages(cfg: CurateConfig) -> list[tuple[str, beam.PTransform]]:
    """The filter chain as stages: a ScoreFilter per segment, a whole-run cut after each run-wide filter."""
    out: list[tuple[str, beam.PTransform]] = []
    for offset, specs, cut in chain_segments(cfg):
        if specs:
            out.append((f"Score{offset}", ScoreFilter(specs, offset)))
        if cut is not None:
            position = offset + len(specs) - 1
            out.append((f"TopFraction{position}", TopFractionCut(cut, position)))
    return out


class Curate(beam.PTransform):
    """read → normalize → exact dedup → near-dup → semantic dedup → decontaminate → score/filter → write.

    Every stage takes keyed batches and returns `.kept` and `.dropped` (each
    drop with its stage and reason); the drops of all stages meet the kept
    batches, errors and read counts per input file in WriteRun. With dedup
    across documents or a run-wide cut, finished inputs still decide what later
    inputs drop. With exact and near dedup, each input keeps its dedup
    signatures next to its marker, and a resume joins a finished input's kept
    signatures instead of reading it (`signature_kinds`). Otherwise (semantic
    dedup, a run-wide cut, or a marker without signatures) finished inputs are
    read again; either way only unfinished ones are written.
    """

    def __init__(self, cfg: CurateConfig, pl: Plan):
        super().__init__()
        self.cfg, self.plan = cfg, pl

    def expand(self, pbegin):
        cfg, pl = self.cfg, self.plan
        wide = run_wide(cfg)
        whole_run = cfg.exact_dedup.enabled or cfg.near_dedup.enabled or cfg.semantic_dedup.enabled or wide
        kinds = signature_kinds(cfg)
        joined = pl.joinable(kinds) if whole_run else {}
        reading = [f for f in pl.inputs if f.index not in joined] if whole_run else pl.todo
        if whole_run and len(reading) > len(pl.todo):
            log.info("%d finished inputs are read again: %s", len(reading) - len(pl.todo),
                     "their markers keep no dedup signatures" if kinds else
                     "semantic dedup and run-wide cuts keep no signatures to resume from")
        if joined:
            log.info("%d finished inputs join dedup by their kept signatures, not read", len(joined))
        finished = pbegin | "KeptSignatures" >> beam.Create(
            [(i, {k: atomic.join(cfg.output, p) for k, p in paths.items()}) for i, paths in joined.items()]
        ) if joined else None
        read = pbegin | "Read" >> ReadInputs(cfg, reading)  # and normalize
        dropped, stats, signed = [read["dropped"]], [read["stats"]], []

        def stage(docs, label: str, transform: beam.PTransform, signs: bool = False):
            out = docs | label >> transform
            dropped.append(out.dropped)
            if signs and kinds:
                signed.append(out.signatures)
            return out.kept

        docs = read["kept"]
        if cfg.exact_dedup.enabled:
            docs = stage(docs, "ExactDedup", ExactDedup(cfg.exact_dedup, bool(kinds), finished), True)
        if cfg.near_dedup.enabled:
            method = options.clustering(cfg.runner, cfg.near_dedup.clustering, sum(f.size for f in pl.inputs))
            if cfg.near_dedup.clustering == "auto":
                log.info("near-dup clusters by %s (clustering: auto)", method.replace("_", " "))
            near = cfg.near_dedup.model_copy(update={"clustering": method})
            docs = stage(docs, "NearDedup", NearDup(near, bool(kinds), finished), True)
        if cfg.semantic_dedup.enabled:
            docs = stage(docs, "SemanticDedup", SemanticDedup(cfg.semantic_dedup))
        if not wide:  # per-document stages from here on: finished inputs need not be redone
            docs = docs | "SkipFinished" >> beam.Filter(_todo_batch, frozenset(pl.done))
        if cfg.decontaminate.enabled:
            decon = docs | "Decontaminate" >> Decontaminate(cfg.decontaminate)
            dropped.append(decon.dropped)
            stats.append(decon.stats)
            docs = decon.kept
        for label, transform in score_stages(cfg):
            docs = stage(docs, label, transform)
        if wide:
            docs = docs | "SkipFinished" >> beam.Filter(_todo_batch, frozenset(pl.done))
        done = frozenset(pl.done)
        tagged = {
            "file": pbegin | "FileKeys" >> beam.Create(keyed_files(pl.todo)),
            "stats": stats | "AllStats" >> beam.Flatten() | "SkipFinishedStats" >> beam.Filter(_todo, done),
            "kept": docs | "ByInput" >> beam.Map(lambda kv: (kv[0][0], (kv[0][1], kv[1]))),
            "dropped": [d | f"HoldDropped{i}" >> spill.Spill() for i, d in enumerate(dropped)]  # before Flatten waits
            | "AllDropped" >> beam.Flatten()
            | "SkipFinishedDrops" >> beam.Filter(_todo, done),
            "errors": read["errors"] | "SkipFinishedErrors" >> beam.Filter(_todo, done),
        }
        if signed:
            tagged["signatures"] = (
                [s | f"HoldSignatures{i}" >> spill.Spill() for i, s in enumerate(signed)]
                | "AllSignatures" >> beam.Flatten()
                | "SkipFinishedSignatures" >> beam.Filter(_todo, done)
            )
        return tagged | "Write" >> WriteRun(cfg, pl.fingerprint, kinds)


def _todo_batch(kv, done: frozenset) -> bool:  # key (input, batch)
    return kv[0][0] not in done


def _todo(kv, done: frozenset) -> bool:  # key input
    return kv[0] not in done


def _decontamination(markers: list[dict]) -> dict:
    """The manifest's decontamination section: leaks per benchmark, merged over the inputs."""
    stats: dict = {}
    for m in markers:
        stats = merge_stats(stats, m["counts"].get("decontam", {}))
    return {"decontamination": report(stats)} if stats else {}


def run(cfg: CurateConfig, dry_run: bool = False, made_by: str = "tamis curate") -> dict | None:
    """Run (or with dry_run on Dataflow, only build and check) the pipeline; return the manifest.

    `made_by` is recorded in the manifest: `tamis demo` marks its runs so it only ever replaces its own.
    """
    started = time.time()
    pl = plan(cfg, offline=dry_run)
    if pl.finished is not None and not dry_run:
        log.info("%s is a finished run with this config; nothing to do", cfg.output)
        return pl.finished
    names = components(cfg)
    if not dry_run:
        run_dir.clean(cfg.output, list(pl.done.values()))
    stage_times: dict = {}
    if pl.todo:
        log.info("%d inputs, %d already finished; running on %s", len(pl.inputs), len(pl.done), cfg.runner.name)
        spill_dir = None if atomic.is_remote(cfg.output) else atomic.join(cfg.output, run_dir.SCRATCH)
        progress_dir = atomic.join(spill_dir, f"progress-{uuid.uuid4().hex[:8]}") if spill_dir and not dry_run else None
        todo_bytes = sum(f.size for f in pl.todo)
        pooled = options.uses_pool(cfg.runner, todo_bytes)
        if cfg.runner.workers > 1 and cfg.runner.name == "local":
            log.info("%d local workers: %s", cfg.runner.workers,
                     "a fork pool for the per-batch steps" if pooled else "Beam's multi-processing mode")
        runner, opts = options.make(cfg.runner, dry_run=dry_run, spill_dir=spill_dir, progress_dir=progress_dir,
                                    pooled=pooled)
        try:
            p = beam.Pipeline(runner=runner, options=opts)
        except ValueError as e:  # Beam validates options here (project id, regions, ...)
            raise ConfigError(" ".join(str(e).split()), hint="check runner.options") from e
        order = stage_order(cfg)
        try:
            with progress.Watch(progress_dir, todo_bytes, order), p:
                _ = p | "Curate" >> Curate(cfg, pl)
            stage_times = progress.stages(progress.read_totals(progress_dir), order)
        finally:
            pool.shutdown()
            if spill_dir:
                shutil.rmtree(spill_dir, ignore_errors=True)
        if dry_run:
            return None
    return run_dir.finish(
        cfg.output, cfg.to_dict(), pl.inputs, time.time() - started, names,
        lambda markers: {**_decontamination(markers), "stages": stage_times}, made_by,
    )
