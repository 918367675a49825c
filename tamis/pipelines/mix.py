"""The mix pipeline: verify the curate runs, count tokens per document, plan the mixture, write it in blend order.

    count (Beam, per input shard) → plan (one process, numpy) → write (Beam, grouped by output shard)

Counting tokenizes each assigned document once and keeps a compact table
(domain, tokens, text bytes, hash key) per input shard under `_work/`; the
plan (tamis.mixers.plan) turns the whole table into every sample's blend
position and output shard; writing reads each input shard again, routes its
samples to their output shards and writes each shard sorted by position. The
output depends only on the documents and the config, not on the runner, the
worker count or how the inputs are sharded. A rerun skips input shards already
counted and output shards already written (by their markers); the manifest is
written last, then `_work/` is removed.
"""

import io
import logging
import shutil
import time
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis import validation
from tamis.config import RunnerConfig
from tamis.errors import ConfigError, IntegrityError
from tamis.io import atomic, manifest, run_dir
from tamis.io.run_dir import RunShard
from tamis.io.shards import ShardWriter
from tamis.io.side_files import read_yaml
from tamis.io.token_shards import export_tokens
from tamis.mixers import mix_run
from tamis.mixers.domains import assign, check_columns, score_columns
from tamis.mixers.plan import Docs, Samples, build
from tamis.mixers.sampling import doc_keys
from tamis.mixers.spec import MixSpec
from tamis.mixers.tokens import TokenCounter
from tamis.pipelines import options, spill

log = logging.getLogger(__name__)
SPILL = "_spill"
_EXECUTION_ONLY = ("output", "runner", "fail_after_shards", "export")  # export: made from the shards after
_READ = ["id", "text", "source", "meta"]
_ONE_FILE = 1 << 62  # an output shard is one file: the plan already cut the blend into shards


class FaultInjected(RuntimeError):
    """Raised by the `fail_after_shards` setting to simulate a crash mid-run."""


class MixConfig(MixSpec):
    """The mixture (tamis.mixers.spec) plus how this run executes."""

    runner: RunnerConfig = RunnerConfig()
    fail_after_shards: int | None = None  # fault injection for resume tests: stop after writing N shards


def load_config(path: str, overrides: dict[str, Any] | None = None) -> MixConfig:
    raw = dict(read_yaml(path))
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return validation.parse(MixConfig, raw, owner="mix config")


@dataclass
class Plan:
    parts: list[RunShard]
    inputs: list[dict[str, Any]]
    counter: TokenCounter
    count_fp: str
    fingerprint: str

    def counts_path(self, output: str, part: RunShard) -> str:
        return atomic.join(output, mix_run.WORK, f"counts-{self.count_fp}", f"{part.sha256[:24]}.parquet")

    def samples_path(self, output: str, part: RunShard) -> str:
        return atomic.join(output, mix_run.WORK, f"plan-{self.fingerprint}", f"{part.index:05d}.npy")


def plan(cfg: MixConfig) -> Plan:
    """Verify every input run against its manifest, check the domains can be decided on it, fingerprint the run."""
    parts: list[RunShard] = []
    inputs = []
    for run in cfg.inputs:
        m = run_dir.load(run, verify=True)
        parts += run_dir.run_shards(run, m, len(parts))
        if m["shards"]:
            with atomic.open_read(atomic.join(run, m["shards"][0]["path"])) as f:
                check_columns(cfg.domains, pq.read_schema(f), f"input run {run}")
        inputs.append({"run": run, "manifest_sha256": m[manifest.SELF_SHA], "shards": len(m["shards"]),
                       "documents": m["counts"]["kept"]})
    counter = TokenCounter(cfg.tokenizer)
    spec = {k: v for k, v in cfg.to_dict().items() if k not in _EXECUTION_ONLY}
    count_fp = mix_run.fingerprint({"domains": spec["domains"], "tokenizer": counter.identity, "seed": cfg.seed})
    extra = {}
    if cfg.weights.regmix is not None:
        extra["regmix_sha256"] = atomic.sha256_file(cfg.weights.regmix)
    fp = mix_run.fingerprint({"spec": spec, "tokenizer": counter.identity, "inputs": inputs, **extra})
    return Plan(parts, inputs, counter, count_fp, fp)


# --- pass 1: count ------------------------------------------------------------------------------------------------


def count_part(cfg: MixSpec, counter: TokenCounter, part: RunShard, batch_rows: int) -> pa.Table:
    """Domain, tokens, text bytes and hash key of every row of one input shard (tokens only where assigned)."""
    columns = _READ + score_columns(cfg.domains)
    out = []
    with atomic.open_read(part.file) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=columns):
            domain = assign(batch, cfg.domains)
            member = domain >= 0
            tokens = np.zeros(batch.num_rows, dtype=np.int64)
            if member.any():
                tokens[member] = counter.count(batch.column("text").filter(pa.array(member)))
            nbytes = pc.binary_length(batch.column("text").cast(pa.binary())).to_numpy(zero_copy_only=False)
            keys = doc_keys(batch.column("id").to_pylist(), cfg.seed)
            out.append(pa.table({"domain": domain, "tokens": tokens, "nbytes": nbytes.astype(np.int64), "key": keys}))
    table = pa.concat_tables(out) if out else pa.table({"domain": pa.array([], pa.int16())})
    if table.num_rows != part.rows:
        raise IntegrityError(f"{part.file} has {table.num_rows} rows; its run manifest says {part.rows}")
    return table


def _write_table(path: str, table: pa.Table) -> None:
    with atomic.atomic_write(path) as f:
        pq.write_table(table, f, compression="zstd")


class _Count(beam.DoFn):
    def __init__(self, cfg: MixConfig, pl: Plan):
        self.cfg, self.pl = cfg, pl

    def process(self, part: RunShard):
        table = count_part(self.cfg, self.pl.counter, part, self.cfg.runner.batch_size)
        _write_table(self.pl.counts_path(self.cfg.output, part), table)
        log.info("counted %s: %d rows", part.file, table.num_rows)
        yield part.index


def _counted(cfg: MixConfig, pl: Plan, part: RunShard) -> bool:
    path = pl.counts_path(cfg.output, part)
    return atomic.exists(path) and pq.read_metadata(path).num_rows == part.rows


def gather(cfg: MixConfig, pl: Plan) -> Docs:
    tables = []
    for part in pl.parts:
        t = pq.read_table(pl.counts_path(cfg.output, part))
        n = t.num_rows
        tables.append(Docs(np.full(n, part.index, np.int32), np.arange(n), *(t[c].to_numpy() for c in
                                                                             ("domain", "tokens", "nbytes", "key"))))
    return Docs.concat(tables)


# --- pass 2: write ------------------------------------------------------------------------------------------------


def save_samples(cfg: MixConfig, pl: Plan, docs: Docs, samples: Samples) -> None:
    """Per input shard: (row, epoch, position, shard, tokens, domain) of each of its samples, sorted by row."""
    part_of = docs.part[samples.doc]
    table = np.stack([docs.row[samples.doc], samples.epoch, samples.position, samples.shard,
                      docs.tokens[samples.doc], docs.domain[samples.doc]], axis=1).astype(np.int64)
    order = np.lexsort((samples.epoch, docs.row[samples.doc], part_of))
    table, part_of = table[order], part_of[order]
    bounds = np.searchsorted(part_of, np.arange(len(pl.parts) + 1))
    for part in pl.parts:
        buf = io.BytesIO()
        np.save(buf, table[bounds[part.index] : bounds[part.index + 1]], allow_pickle=False)
        atomic.write_bytes(pl.samples_path(cfg.output, part), buf.getvalue())


class _Route(beam.DoFn):
    """An input shard's samples, as one batch per output shard they go to: (shard, (part, batch))."""

    def __init__(self, cfg: MixConfig, pl: Plan, done: frozenset[int]):
        self.cfg, self.pl, self.done = cfg, pl, done

    def process(self, part: RunShard):
        with atomic.open_read(self.pl.samples_path(self.cfg.output, part)) as f:
            s = np.load(io.BytesIO(f.read()), allow_pickle=False)
        s = s[~np.isin(s[:, 3], list(self.done))]
        if not len(s):
            return
        with atomic.open_read(part.file) as f:
            docs = pq.read_table(f, columns=_READ).take(pa.array(s[:, 0]))
        names = np.array([d.name for d in self.cfg.domains], dtype=object)
        ids = docs.column("id").to_pylist()
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(s[:, 2], pa.int64()),
                pa.array([f"{i}#{e}" for i, e in zip(ids, s[:, 1].tolist(), strict=True)], pa.string()),
                docs.column("id").combine_chunks(),
                pa.array(names[s[:, 5]], pa.string()),
                pa.array(s[:, 1], pa.int32()),
                pa.array(s[:, 4], pa.int32()),
                docs.column("text").combine_chunks(),
                docs.column("source").combine_chunks(),
                docs.column("meta").combine_chunks(),
            ],
            schema=mix_run.SCHEMA,
        )
        shards = s[:, 3]
        for j in np.unique(shards):
            yield int(j), (part.index, batch.filter(pa.array(shards == j)))


class _WriteShard(beam.DoFn):
    def __init__(self, cfg: MixConfig, fingerprint: str, first_positions: dict[int, int]):
        self.cfg, self.fingerprint, self.first = cfg, fingerprint, first_positions

    def setup(self):
        self.written = 0  # shards this worker wrote; only used by fault injection

    def process(self, element):
        j, items = element
        table = pa.Table.from_batches([spill.load(b) for _, b in sorted(items, key=lambda kv: kv[0])])
        table = table.take(pc.sort_indices(table, [("position", "ascending")]))
        positions = table.column("position").to_numpy()
        first = self.first[j]
        if not np.array_equal(positions, np.arange(first, first + len(positions))):
            raise IntegrityError(f"output shard {j} does not hold the contiguous positions from {first}")
        limit = self.cfg.fail_after_shards
        if limit is not None and self.written >= limit:
            raise FaultInjected(f"fault injection: stopping after {limit} shards")
        with ShardWriter(self.cfg.output, mix_run.SHARDS, f"part-{j:05d}", _ONE_FILE, self.cfg.shards.compression) as w:
            for batch in table.to_batches(max_chunksize=self.cfg.runner.batch_size):
                w.write(batch)
        (entry,) = w.entries
        tokens = table.column("tokens").to_numpy().astype(np.int64)
        domains = table.column("domain").to_numpy(zero_copy_only=False)
        by_domain = {str(d): int(tokens[domains == d].sum()) for d in np.unique(domains)}
        mix_run.write_marker(self.cfg.output, j, self.fingerprint, {
            "shard": j, "file": entry, "first_position": first, "rows": table.num_rows,
            "tokens": int(tokens.sum()), "tokens_by_domain": by_domain,
        })
        self.written += 1
        yield j


# --- the run ------------------------------------------------------------------------------------------------------


def _pipeline(cfg: MixConfig) -> beam.Pipeline:
    spill_dir = None if atomic.is_remote(cfg.output) else atomic.join(cfg.output, SPILL)
    runner, opts = options.make(cfg.runner, spill_dir=spill_dir)
    try:
        return beam.Pipeline(runner=runner, options=opts)
    except ValueError as e:  # Beam validates options here
        raise ConfigError(" ".join(str(e).split()), hint="check runner.options") from e


def _finished(cfg: MixConfig, fp: str) -> dict[str, Any] | None:
    if not atomic.exists(atomic.join(cfg.output, manifest.MANIFEST)):
        return None
    done = mix_run.load(cfg.output, verify=True)
    if done.get("config_fingerprint") != fp:
        raise IntegrityError(
            f"{cfg.output} holds a finished mix made with another config or other inputs.",
            hint="choose a new output directory, or delete the old run",
        )
    return done


def run(cfg: MixConfig) -> dict[str, Any]:
    """Run the mix (or resume it) and return its manifest."""
    started = time.time()
    pl = plan(cfg)
    finished = _finished(cfg, pl.fingerprint)
    if finished is not None:
        log.info("%s is already finished", cfg.output)
        export(cfg)
        return finished
    todo = [p for p in pl.parts if not _counted(cfg, pl, p)]
    try:
        if todo:
            log.info("counting tokens in %d of %d input shards on %s", len(todo), len(pl.parts), cfg.runner.name)
            with _pipeline(cfg) as p:
                _ = p | "Parts" >> beam.Create(todo) | "Spread" >> beam.Reshuffle() | "Count" >> beam.ParDo(_Count(cfg, pl))
        docs = gather(cfg, pl)
        samples, report = build(docs, cfg)
        n_shards = int(samples.shard.max()) + 1 if len(samples.shard) else 0
        first = {j: int(samples.position[samples.shard == j].min()) for j in range(n_shards)}
        done = frozenset(j for j in range(n_shards) if mix_run.read_marker(cfg.output, j, pl.fingerprint))
        if len(done) < n_shards:
            save_samples(cfg, pl, docs, samples)
            log.info("writing %d of %d output shards", n_shards - len(done), n_shards)
            with _pipeline(cfg) as p:
                _ = (
                    p
                    | "Inputs" >> beam.Create(pl.parts)
                    | "SpreadInputs" >> beam.Reshuffle()
                    | "Route" >> beam.ParDo(_Route(cfg, pl, done))
                    | "Hold" >> spill.Spill()
                    | "ByShard" >> beam.GroupByKey()
                    | "Write" >> beam.ParDo(_WriteShard(cfg, pl.fingerprint, first))
                )
    finally:
        if not atomic.is_remote(cfg.output):
            shutil.rmtree(atomic.join(cfg.output, SPILL), ignore_errors=True)
    out = _finish(cfg, pl, report, n_shards, time.time() - started)
    if not atomic.is_remote(cfg.output):
        shutil.rmtree(atomic.join(cfg.output, mix_run.WORK), ignore_errors=True)
    export(cfg)
    return out


def export_dir(cfg: MixConfig) -> str:
    return cfg.export.output or atomic.join(cfg.output, "tokens")


def export(cfg: MixConfig) -> dict[str, Any] | None:
    """The configured tokenized export of the finished mix (resumable; a finished one is returned as is)."""
    if not cfg.export.tokens:
        return None
    paths, tokenizer_json, _ = mix_run.export_inputs(cfg.output)
    return export_tokens(paths, export_dir(cfg), tokenizer_json, cfg.export.shard_tokens)


def _finish(cfg: MixConfig, pl: Plan, report: dict[str, Any], n_shards: int, seconds: float) -> dict[str, Any]:
    markers = []
    for j in range(n_shards):
        m = mix_run.read_marker(cfg.output, j, pl.fingerprint)
        if m is None:
            raise IntegrityError(f"output shard {j} has no finished file in {cfg.output}", hint="rerun to resume")
        markers.append(m)
    rows = sum(m["rows"] for m in markers)
    if rows != report["samples"]:
        raise IntegrityError(f"the shards hold {rows} samples; the plan has {report['samples']}")
    shards = [{"path": m["file"]["path"], "rows": m["rows"], "bytes": m["file"]["bytes"], "first_position": m["first_position"],
               "tokens": m["tokens"], "tokens_by_domain": m["tokens_by_domain"]} for m in markers]
    files = [m["file"] for m in markers]
    files += [manifest.file_entry(cfg.output, f"{mix_run.PROGRESS}/{j:05d}.json") for j in range(n_shards)]
    body = {
        "config": cfg.to_dict(),
        "config_fingerprint": pl.fingerprint,
        "seconds": round(seconds, 3),
        "inputs": pl.inputs,
        "tokenizer": pl.counter.identity,
        **report,
        "shards": shards,
    }
    log.info("writing the mix manifest: %d samples in %d shards", rows, n_shards)
    return manifest.write_manifest(cfg.output, mix_run.KIND, mix_run.FORMAT_VERSION, body, files)
