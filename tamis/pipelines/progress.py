"""Progress and time per stage, from inside the workers to the launching process and the manifest.

Each instrumented DoFn times its own `process` calls and counts the documents
(and, for reading, the input bytes) it handled, per stage. The counts go to
Beam metrics counters in the `tamis` namespace, which Dataflow shows on its job
page, and on a local run into one small JSON file per worker process under the
folder of the `--tamis_progress_dir` option (rewritten at most twice a second,
and when a bundle finishes). The launching process reads those files to draw a
progress bar with an ETA while the pipeline runs (`Watch`), and once it ends
sums them into the manifest's `stages` section: the seconds each stage spent in
its DoFns, summed over workers, documents, and documents per second.
"""

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

_FLUSH_EVERY = 0.5
# this worker process's totals, per progress folder (one per pipeline run: a process may run several) and stage
_TOTALS: dict[str | None, dict[str, dict[str, float]]] = {}
_last_flush = [0.0]


class ProgressOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--tamis_progress_dir", default=None, help="local folder for per-worker progress files")


def forget_totals() -> None:
    """Start this process's totals from zero: a forked worker process reports only its own work."""
    _TOTALS.clear()


def folder_of(pipeline: beam.Pipeline) -> str | None:
    return pipeline.options.view_as(ProgressOptions).tamis_progress_dir


class StageClock:
    """Held by a DoFn: `with clock.timed(docs=n, nbytes=b): ...` adds to the stage's time and counts."""

    def __init__(self, stage: str, folder: str | None):
        self.stage, self.folder = stage, folder
        self._docs = Metrics.counter("tamis", f"{stage}_docs")
        self._ms = Metrics.counter("tamis", f"{stage}_ms")

    @contextmanager
    def timed(self, docs: int = 0, nbytes: int = 0) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(time.perf_counter() - start, docs, nbytes)

    def add(self, seconds: float, docs: int = 0, nbytes: int = 0) -> None:
        self._docs.inc(docs)
        self._ms.inc(int(seconds * 1000))
        t = _TOTALS.setdefault(self.folder, {}).setdefault(self.stage, {"seconds": 0.0, "docs": 0, "bytes": 0})
        t["seconds"] += seconds
        t["docs"] += docs
        t["bytes"] += nbytes
        if self.folder and time.monotonic() - _last_flush[0] > _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        if not self.folder:
            return
        _last_flush[0] = time.monotonic()
        os.makedirs(self.folder, exist_ok=True)
        path = os.path.join(self.folder, f"{os.getpid()}.json")
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(_TOTALS.get(self.folder, {}), f)
        os.replace(tmp, path)


def read_totals(folder: str) -> dict[str, dict[str, float]]:
    """Every worker's totals, summed per stage."""
    out: dict[str, dict[str, float]] = {}
    if not folder or not os.path.isdir(folder):
        return out
    for name in os.listdir(folder):
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                part = json.load(f)
        except (OSError, ValueError):
            continue  # being replaced right now; the next poll reads it
        for stage, t in part.items():
            acc = out.setdefault(stage, {"seconds": 0.0, "docs": 0, "bytes": 0})
            for k in acc:
                acc[k] += t.get(k, 0)
    return out


def stages(totals: dict[str, dict[str, float]], order: list[str]) -> dict[str, dict[str, Any]]:
    """The manifest's `stages` section, in pipeline order."""
    out = {}
    for stage in sorted(totals, key=lambda s: order.index(s) if s in order else len(order)):
        t = totals[stage]
        out[stage] = {"seconds": round(t["seconds"], 3), "docs": int(t["docs"]),
                      "docs_per_s": round(t["docs"] / t["seconds"], 1) if t["seconds"] > 0 else None}
    return out


class Watch:
    """While a local pipeline runs, draw its progress (input bytes read, documents per stage, ETA) on a terminal.

    Off when stderr is not a terminal. The pipeline runs in the calling thread; this polls the progress files.
    """

    def __init__(self, folder: str | None, total_bytes: int, order: list[str]):
        self.folder, self.total_bytes, self.order = folder, total_bytes, order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Watch":
        import sys

        if self.folder and sys.stderr.isatty():
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                   TextColumn("{task.fields[detail]}"))
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("read", total=self.total_bytes or None, detail="")
            while not self._stop.wait(0.5):
                totals = read_totals(self.folder)
                read = totals.get("read", {})
                detail = "  ".join(f"{s} {int(totals[s]['docs']):,}" for s in self.order if s in totals and s != "read")
                bar.update(task, completed=read.get("bytes", 0), detail=detail)
