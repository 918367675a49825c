"""WriteRun: per input file, write its kept shards, dropped and error files, then its progress marker.

Batches are grouped by input file and written in batch order, so a file's
outputs are byte-identical whatever the runner, worker count or bundle order.
Where the pipeline spills, only references to the batches are grouped, and a
writer reads one batch at a time. With dedup signatures kept (`signature_kinds`),
a file's signature rows are written next to its marker before the marker, which
lists them (tamis.dedup.signatures). In a pooled local run each input's
files are written by one of the pool's workers (tamis.pipelines.pool).
"""

import logging
import time
from collections import Counter

import apache_beam as beam

from tamis.config import CurateConfig
from tamis.dedup import signatures
from tamis.dedup.decontam import merge_stats
from tamis.io import atomic, manifest, run_dir
from tamis.io.run_dir import InputFile
from tamis.io.shards import ShardWriter
from tamis.pipelines import pool, progress, spill
from tamis.pipelines.progress import StageClock

log = logging.getLogger(__name__)


class FaultInjected(RuntimeError):
    """Raised by the `fail_after_shards` setting to simulate a crash mid-run."""


class _WriteInput(beam.DoFn):
    def __init__(self, cfg: CurateConfig, fingerprint: str, progress_dir: str | None = None,
                 signature_kinds: tuple[str, ...] = ()):
        self.cfg, self.fingerprint, self.progress_dir = cfg, fingerprint, progress_dir
        self.signature_kinds = signature_kinds

    def setup(self):
        self.clock = StageClock("write", self.progress_dir)
        self.shards_written = 0  # by this worker (or pool process) in this run; only fault injection reads it

    def finish_bundle(self):
        self.clock.flush()

    def _write(self, folder: str, index: int, items, on_batch=None) -> list[dict]:
        target = self.cfg.shards.target_bytes
        with ShardWriter(self.cfg.output, folder, f"part-{index:05d}", target, self.cfg.shards.compression) as w:
            for _, item in sorted(items, key=lambda kv: kv[0]):
                batch = spill.load(item)
                w.write(batch)
                if on_batch:
                    on_batch(batch)
                if folder == "shards":
                    self._maybe_fail(len(w.entries))
        return w.entries

    def _signatures(self, index: int, items) -> tuple[list[dict], dict[str, str]]:
        """Write the file's signatures of each kind (empty ones too): (their file entries, kind → path).

        One kind is in memory at a time (near-dup evidence is ~0.5 bytes per input byte), its batches in order.
        """
        by_kind: dict[str, list] = {k: [] for k in self.signature_kinds}
        for (kind, _), item in sorted(items, key=lambda kv: kv[0]):
            by_kind[kind].append(item)
        paths = {kind: f"_progress/{signatures.file_name(index, kind)}" for kind in by_kind}
        return [self._write_signatures(kind, paths[kind], refs) for kind, refs in by_kind.items()], paths

    def _write_signatures(self, kind: str, rel: str, refs: list) -> dict:
        table = signatures.table(kind, [spill.load(item) for item in refs])
        signatures.write(atomic.join(self.cfg.output, rel), table)
        return {**manifest.file_entry(self.cfg.output, rel), "rows": table.num_rows}

    def _maybe_fail(self, written_in_file: int) -> None:
        limit = self.cfg.fail_after_shards
        if limit is not None and self.shards_written + written_in_file > limit:
            raise FaultInjected(f"fault injection: stopping after {limit} shards")

    def process(self, element):
        started = time.perf_counter()
        index, rows = self._write_input(element)
        self.clock.add(time.perf_counter() - started, rows)
        yield index

    def _write_input(self, element) -> tuple[int, int]:
        """Write one input's files and marker; (its index, the rows written: kept, dropped and errors)."""
        index, groups = element
        (f,) = groups["file"]
        stats = list(groups["stats"])
        read = sum(s.get("read", 0) for s in stats)
        skipped = sum(s.get("skipped", 0) for s in stats)
        unread = [s["unread_bytes"] for s in stats if s.get("truncated")]
        kept_items = list(groups["kept"])
        error_items = list(groups["errors"])
        by_reason: Counter = Counter()
        by_stage: Counter = Counter()

        def count_drops(batch):
            by_reason.update(batch.column("reason").to_pylist())
            by_stage.update(batch.column("stage").to_pylist())

        files = self._write("shards", index, kept_items)
        self.shards_written += len(files)
        files += self._write("dropped", index, groups["dropped"], count_drops)
        files += self._write("errors", index, error_items)
        kept_signatures, signature_paths = self._signatures(index, groups.get("signatures", []))
        files += kept_signatures
        counts = {
            "read": read,
            "skipped": skipped,
            "kept": sum(spill.rows(b) for _, b in kept_items),
            "errors": sum(spill.rows(b) for _, b in error_items),
            "dropped_by_reason": dict(by_reason),
            "dropped_by_stage": dict(by_stage),
        }
        if unread:
            counts.update(truncated=True, unread_bytes=sum(unread))
        if any(s.get("empty") for s in stats):
            counts["empty"] = True
        decontam: dict = {}
        for s in stats:
            decontam = merge_stats(decontam, s.get("decontam", {}))
        if decontam:
            counts["decontam"] = decontam
        run_dir.write_marker(self.cfg.output, f, self.fingerprint, counts, files, signature_paths)
        log.info("finished %s: %d kept, %d dropped, %d errors", f.path, counts["kept"], sum(by_reason.values()), counts["errors"])
        return index, counts["kept"] + sum(by_reason.values()) + counts["errors"]


class WriteRun(beam.PTransform):
    """Input: a dict of keyed PCollections `file`, `stats`, `kept`, `dropped`, `errors` and, with
    `signature_kinds`, `signatures` (key = file index)."""

    def __init__(self, cfg: CurateConfig, fingerprint: str, signature_kinds: tuple[str, ...] = ()):
        super().__init__()
        self.cfg, self.fingerprint, self.signature_kinds = cfg, fingerprint, signature_kinds

    def expand(self, tagged):
        held = {
            name: pcoll | f"Hold{name.title()}" >> spill.Spill() if name in ("kept", "dropped", "errors", "signatures")
            else pcoll
            for name, pcoll in tagged.items()
        }
        pipeline = tagged["file"].pipeline
        write = _WriteInput(self.cfg, self.fingerprint, progress.folder_of(pipeline), self.signature_kinds)
        return (
            held
            | "GroupByInput" >> beam.CoGroupByKey()
            | "Listed" >> beam.MapTuple(_listed)  # a pool worker gets plain lists of (spilled) batches
            | "WriteFiles" >> beam.ParDo(pool.pooled(pipeline, write))
        )


def _listed(index: int, groups: dict) -> tuple[int, dict]:
    return index, {name: list(values) for name, values in groups.items()}


def keyed_files(files: list[InputFile]) -> list[tuple[int, InputFile]]:
    return [(f.index, f) for f in files]
