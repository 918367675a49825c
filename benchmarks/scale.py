"""Scale: the default web curate chain at growing sizes with 1 and 2 local workers, beside datatrove.

Corpora are grown from ../shared/data/curation/web_pool by benchmarks/neardup.py's
generator (random draws of pool lines, 10% planted near copies) with one word
of every drawn line replaced by a random pool word (`line_edit`), and split into
`--files` JSONL files of about equal size, as a corpus arrives in shards.
Without the edit, the chain's exact line dedup would drop a share that grows
with the corpus (4% of documents at 100 MB, 74% at 1 GB: the same pool lines
drawn again and again), so throughput across sizes would compare different work.

1. **tamis**: `tamis curate` with the default web chain of configs/web.yaml
   without the parts datatrove lacks (decontamination, PII): exact dedup
   (documents, then repeated lines), near dedup, langid, Gopher repetition and
   quality, C4, FineWeb; shards written. Each run in a fresh process with
   `runner.workers` 1 and 2 (`--parallelism` sets `runner.local_parallelism`:
   `auto`, the default, as a user gets it; with `pool`, Beam runs in process
   and the per-batch steps go to a fork pool of that many processes,
   tamis.pipelines.pool; with `beam`, Beam's multi-processing mode with that
   many SDK workers). Near dedup clusters as configured by default
   (`clustering: auto`: one union-find on these local runs). Measured: wall
   seconds, MB/s (input text), peak RSS of every process (the runner's own
   VmHWM, and each worker's: the pool's forked processes or Beam's `python
   -m apache_beam.runners.worker.sdk_worker_main` subprocesses, sampled from
   /proc/PID/status every 0.2 s while they live, and cross-checked with
   getrusage(RUSAGE_CHILDREN).ru_maxrss, the largest reaped child), CPU
   seconds per process, the run directory's size and the peak of its
   `_spill/` scratch folder, the near-dup component rounds (Beam counters),
   and per fused Beam stage its wall time and each process's CPU time.
   `est_seconds` adds, per stage, the largest of (any one process's CPU
   seconds, all processes' CPU seconds / cores): the wall time the run
   would take on an otherwise idle machine with this many cores, an
   estimate that load from other programs barely moves (wall time does).
2. **datatrove** (`--datatrove-size`, 100 MB by default), the same corpus
   files, its documented local MinHash pipeline with LocalPipelineExecutor,
   tasks = files, workers 1 and 2: stage 1 JsonlReader → LanguageFilter
   (ft176, given tamis's copy of the same lid.176 model, quantized `.ftz`,
   since nothing may be downloaded) → GopherRepetition → GopherQuality → C4Quality
   → FineWebQuality → JsonlWriter → MinhashDedupSignature (its defaults:
   14 buckets × 8 hashes of word 5-grams; xxhash64 of the UTF-8 bytes: the
   installed xxhash 4 refuses str, which its default hash passes); stage 2
   MinhashDedupBuckets (14 tasks); stage 3 MinhashDedupCluster; stage 4
   JsonlReader → MinhashDedupFilter → JsonlWriter. No exact/line dedup step
   (datatrove's chain has none); its filters run before dedup, as in FineWeb.
3. **components** (unless `--skip-components`): tamis's NearDup stage alone
   (one worker) on the web pool and on each grown corpus, with `clustering:
   union_find`, with the default `star_rounds`, and with star rounds that
   get no local contraction first (`CONTRACT_EDGES` = 1, as when every edge
   arrives in its own bundle: the rounds do all the linking): the dropped ids
   and their kept ids must be identical; reported with clusters, drops,
   rounds needed and the records and bytes shuffled per grouping.

    python benchmarks/scale.py --json --sizes 10MB,100MB
    python benchmarks/scale.py --json --sizes 10MB,100MB,1GB --out benchmarks/results/scale.json
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from neardup import DATA, grow_corpus  # noqa: E402  (the sibling benchmark; this folder is on sys.path)

REPO = Path(__file__).resolve().parents[1]
LID = REPO / "tamis" / "models" / "lid.176.ftz"
FILTERS = ["langid", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality"]
CLK = os.sysconf("SC_CLK_TCK")


def parse_size(text: str) -> float:
    """'10MB' / '1GB' / '100' (MB) → MB."""
    t = text.strip().upper()
    if t.endswith("GB"):
        return float(t[:-2]) * 1000
    return float(t[:-2] if t.endswith("MB") else t)


def label(mb: float) -> str:
    return f"{mb / 1000:g}GB" if mb >= 1000 else f"{mb:g}MB"


def grow(folder: Path, mb: float, files: int) -> dict:
    """benchmarks/neardup.py's corpus of `mb` MB of text (lines edited), split into `files` JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    whole = folder / "whole.jsonl"
    truth = grow_corpus(whole, mb, line_edit=True)
    target = whole.stat().st_size / files
    outs = [open(folder / f"part-{i:03d}.jsonl", "wb") for i in range(files)]
    written = 0
    with open(whole, "rb") as f:
        for line in f:
            outs[min(int(written // target), files - 1)].write(line)
            written += len(line)
    for o in outs:
        o.close()
    whole.unlink()
    return {**truth, "files": files, "file_mb": round(written / 1e6, 2)}


# ---------------------------------------------------------------- measuring processes


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            if stat:
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def _cpu(pid: int) -> float | None:
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def _hwm_mb(pid: int) -> float | None:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def _kind(pid: int) -> str:
    cmd = _read(f"/proc/{pid}/cmdline").replace("\0", " ")
    if "sdk_worker_main" in cmd:
        return "beam_worker"
    if "python" in cmd:
        return "python"
    return cmd.split(" ", 1)[0].rsplit("/", 1)[-1] or "?"


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


class Monitor:
    """From outside, samples a process tree (every process's peak RSS and CPU) and a scratch folder's size.

    The sampling thread runs in the benchmark's own process, never in the measured one,
    so that no thread of ours is running when the measured program forks its workers.
    """

    def __init__(self, root: int, spill: Path | None = None, every: float = 0.2):
        self.root, self.spill, self.every = root, spill, every
        self.procs: dict[int, dict] = {}
        self.spill_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last_spill = 0.0

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        while not self._stop.wait(self.every):
            for pid in [self.root, *_descendants(self.root)]:
                c, hwm = _cpu(pid), _hwm_mb(pid)
                if c is not None and hwm is not None:
                    info = self.procs.setdefault(pid, {"kind": _kind(pid)})
                    info["cpu_s"], info["hwm_mb"] = c, hwm
            now = time.perf_counter()
            if self.spill is not None and now - self._last_spill > 0.5:
                self._last_spill = now
                self.spill_peak = max(self.spill_peak, _tree_size(self.spill))

    def report(self) -> dict:
        """Peak RSS and CPU of the measured process's children, largest first (its own figures it reports itself)."""
        kids = sorted(
            (p for pid, p in self.procs.items() if pid != self.root and p["kind"] in ("beam_worker", "python")),
            key=lambda p: -p["hwm_mb"],
        )
        return {
            "workers_rss_mb": [round(p["hwm_mb"], 1) for p in kids],
            "workers_cpu_s": [round(p["cpu_s"], 2) for p in kids],
            "scratch_peak_mb": round(self.spill_peak / 1e6, 1),
        }


def _self_report() -> dict:
    """This process's exact peak RSS and CPU, and its reaped children's (the largest one's peak RSS)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "parent_rss_mb": round(_hwm_mb(os.getpid()), 1),
        "parent_cpu_s": round(sum(os.times()[:2]), 2),
        "largest_child_rss_mb": round(children.ru_maxrss / 1024, 1),
        "children_cpu_s": round(children.ru_utime + children.ru_stime, 2),
    }


class StageClock:
    """Per fused Beam stage: wall time and each process's CPU time, from snapshots at each stage start."""

    def __init__(self):
        self.marks: list[tuple[float, str, dict[int, float]]] = []

    @staticmethod
    def snapshot() -> dict[int, float]:
        cpu = {os.getpid(): sum(os.times()[:2])}
        for pid in _descendants(os.getpid()):
            c = _cpu(pid)
            if c is not None:
                cpu[pid] = c
        return cpu

    def mark(self, name: str) -> None:
        self.marks.append((time.perf_counter(), name, self.snapshot()))

    def report(self, cores: int) -> tuple[float, list[dict]]:
        """(estimated idle-machine seconds, per-stage rows)."""
        final = (time.perf_counter(), "", self.snapshot())
        rows = []
        for (t0, name, cpu0), (t1, _, cpu1) in zip(self.marks, self.marks[1:] + [final], strict=True):
            deltas = {pid: cpu1.get(pid, c) - c for pid, c in cpu0.items()}
            deltas.update({pid: c for pid, c in cpu1.items() if pid not in cpu0})
            rows.append({
                "stage": name,
                "wall_s": round(t1 - t0, 3),
                "cpu_s": sorted((round(d, 2) for d in deltas.values() if d > 0.005), reverse=True),
                "est_s": round(max(max(deltas.values(), default=0.0), sum(deltas.values()) / cores), 3),
            })
        return round(sum(r["est_s"] for r in rows), 2), rows


def _short_stage(name: str) -> str:
    """A fused stage's name → its transforms' readable names, first and last."""
    parts = [p.strip("()+ ") for p in name.replace(")+(", "|").split("|")]
    parts = [p.replace("ref_AppliedPTransform_", "").replace("ref_PCollection_", "") for p in parts if p]
    return parts[0] if len(parts) == 1 else f"{parts[0]} … {parts[-1]} ({len(parts)} steps)"


class _StageLog(logging.Handler):
    def __init__(self, clock: StageClock):
        super().__init__()
        self.clock = clock

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("Running bundle for stage "):
            self.clock.mark(_short_stage(msg.split("\n")[0][len("Running bundle for stage ") :]))


def _capture_pipeline_results() -> list:
    """Keep every Beam PipelineResult this process makes, to read its counters after `tamis curate` returns."""
    import apache_beam as beam

    results: list = []
    run = beam.Pipeline.run

    def keeping(self, *args, **kwargs):
        result = run(self, *args, **kwargs)
        results.append(result)
        return result

    beam.Pipeline.run = keeping
    return results


def _counters(result, namespace: str) -> dict[str, int]:
    """A finished pipeline's Beam counters of one namespace (tamis.pipelines.disk_shuffle's, spill's)."""
    from apache_beam.metrics.metric import MetricsFilter

    out: dict[str, int] = {}
    for c in result.metrics().query(MetricsFilter().with_namespace(namespace))["counters"]:
        out[c.key.metric.name] = out.get(c.key.metric.name, 0) + (c.committed or 0)
    return dict(sorted(out.items()))


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


# ---------------------------------------------------------------- runs (each in a fresh process)


PARALLELISM = "TAMIS_SCALE_PARALLELISM"  # set by --parallelism for the child processes


def chain_config(inputs: str, out: str, workers: int) -> dict:
    return {
        "inputs": [{"path": inputs}],
        "output": out,
        "exact_dedup": {"enabled": True, "units": "line", "min_unit_chars": 40},
        "near_dedup": {"enabled": True},
        "filters": [{"name": f, "params": {"languages": ["en"], "min_confidence": 0.65}} if f == "langid" else {"name": f}
                    for f in FILTERS],
        "shards": {"target_bytes": 64 * 1024 * 1024},
        "runner": {"workers": workers, "local_parallelism": os.environ.get(PARALLELISM, "auto")},
    }


def curate_run(inputs: str, out: str, workers: int) -> dict:
    from tamis import config
    from tamis.pipelines import curate
    from tamis.pipelines.components import rounds_needed, summary_from_metrics

    results = _capture_pipeline_results()
    cfg = config.parse(chain_config(inputs, out, workers))
    clock = StageClock()
    stage_logger = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle")
    stage_logger.setLevel(logging.DEBUG)
    stage_logger.propagate = False
    stage_logger.addHandler(_StageLog(clock))
    started = time.perf_counter()
    manifest = curate.run(cfg)
    seconds = time.perf_counter() - started
    est, stages = clock.report(os.cpu_count() or 1)
    summary = summary_from_metrics(results[-1]) if results else {}
    shuffle = _counters(results[-1], "shuffle") if results else {}
    c = manifest["counts"]
    return {
        "seconds": round(seconds, 2),
        "est_seconds": est,
        **_self_report(),
        "run_dir_mb": round(_tree_size(Path(out)) / 1e6, 1),
        "read": c["read"],
        "kept": c["kept"],
        "dropped_by_reason": c["dropped_by_reason"],
        "output_sha256": _digest(Path(out) / "shards")[:16] + "/" + _digest(Path(out) / "dropped")[:16],
        "near_dup_rounds": {"rounds_needed": rounds_needed(summary, cfg.near_dedup.max_rounds), "groupings": summary}
        if summary else "union-find (no rounds)",
        "shuffle": {
            "records": sum(v for k, v in shuffle.items() if k.endswith("_records")),
            "bytes": sum(v for k, v in shuffle.items() if k.endswith("_bytes")),
            "by_step": shuffle,
        },
        "spill": _counters(results[-1], "spill") if results else {},
        "stages": sorted(stages, key=lambda r: -r["est_s"])[: int(os.environ.get("TAMIS_SCALE_STAGES", "12"))],
    }


DATATROVE_RUN = "TAMIS_SCALE_DATATROVE_RUN"


def _accept_fasttext_numpy2() -> None:
    """datatrove's LanguageFilter asks for the `fasttext-numpy2-wheel` distribution; the venv's `fasttext-numpy2`
    is the same `fasttext` module. Done at import in datatrove runs: its forkserver imports this module before
    the workers unpickle the pipeline (and check the dependencies again)."""
    from datatrove.pipeline.filters import LanguageFilter

    LanguageFilter._requires_dependencies = ["fasteners"]


if os.environ.get(DATATROVE_RUN):
    _accept_fasttext_numpy2()


def _datatrove_lid():
    """datatrove's LanguageFilter with its ft176 backend reading tamis's copy of lid.176 (nothing is downloaded)."""
    from datatrove.pipeline.filters import LanguageFilter
    from datatrove.utils.lid import FT176LID

    class LocalFT176(FT176LID):
        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(str(LID))
            return self._model

    lf = LanguageFilter(languages=["en"], language_threshold=0.65)
    lf.model = LocalFT176(["en"])
    return lf


def _xxhash64(text: str) -> int:
    import xxhash

    return xxhash.xxh64_intdigest(text.encode())


def datatrove_run(folder: str, work: str, workers: int) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    os.environ[DATATROVE_RUN] = "1"  # for its forkserver and workers, which import this module
    _accept_fasttext_numpy2()
    files = len(list(Path(folder).glob("*.jsonl")))
    mh = MinhashConfig()
    signature = MinhashDedupSignature(f"{work}/signatures", config=mh)
    signature._hash_func = _xxhash64
    w = Path(work)
    stage1 = LocalPipelineExecutor(
        [
            JsonlReader(folder),
            _datatrove_lid(),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(),
            FineWebQualityFilter(),
            JsonlWriter(f"{work}/filtered"),
            signature,
        ],
        tasks=files, workers=workers, logging_dir=str(w / "logs1"),
    )
    stage2 = LocalPipelineExecutor(
        [MinhashDedupBuckets(f"{work}/signatures", f"{work}/buckets", config=mh)],
        tasks=mh.num_buckets, workers=workers, logging_dir=str(w / "logs2"), depends=stage1,
    )
    stage3 = LocalPipelineExecutor(
        [MinhashDedupCluster(f"{work}/buckets", f"{work}/remove_ids", config=mh)],
        tasks=1, logging_dir=str(w / "logs3"), depends=stage2,
    )
    stage4 = LocalPipelineExecutor(
        [JsonlReader(f"{work}/filtered"), MinhashDedupFilter(f"{work}/remove_ids"), JsonlWriter(f"{work}/deduped")],
        tasks=files, workers=workers, logging_dir=str(w / "logs4"), depends=stage3,
    )
    started = time.perf_counter()
    stage4.run()
    seconds = time.perf_counter() - started
    stats = json.loads((w / "logs1" / "stats.json").read_text())
    kept = json.loads((w / "logs4" / "stats.json").read_text())
    return {
        "seconds": round(seconds, 2),
        **_self_report(),
        "read": _stat(stats, "READER", "documents"),
        "after_filters": _stat(stats, "WRITER", "total"),
        "kept": _stat(kept, "WRITER", "total"),
    }


def _stat(stats: list[dict], step: str, key: str) -> int | None:
    for s in stats:
        if step in s.get("name", ""):
            value = s.get("stats", {}).get(key)
            return value.get("total") if isinstance(value, dict) else value
    return None


def components_run(paths: list[str], clustering: str, out: str) -> dict:
    """The NearDup stage alone on `paths`; writes {dropped id: kept id} to `out`; returns counts and the rounds."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from tamis.dedup.neardup import NearDupConfig
    from tamis.io.readers import InputConfig, read_file
    from tamis.pipelines.components import rounds_needed, summary_from_metrics
    from tamis.pipelines.neardup import NearDup

    def read(p):
        i, path = p
        for b, (kind, batch) in enumerate(read_file(path, InputConfig(path=path), 1000)):
            if kind == "docs":
                yield (i, b), batch

    def pairs(kv):
        table = kv[1][1]
        return list(zip(table.column("id").to_pylist(), table.column("dup_of").to_pylist(), strict=True))

    if clustering == "star_rounds_uncontracted":  # no local union-find first: the rounds do all the linking
        from tamis.pipelines import components

        components.CONTRACT_EDGES = 1
        clustering = "star_rounds"
    cfg = NearDupConfig(enabled=True, clustering=clustering)
    spill = tempfile.mkdtemp(prefix="spill-", dir=Path(out).parent)
    opts = PipelineOptions(direct_num_workers=1, tamis_spill_dir=spill)
    started = time.perf_counter()
    p = beam.Pipeline(runner=FnApiRunner(), options=opts)
    res = p | beam.Create(list(enumerate(paths))) | "Read" >> beam.FlatMap(read) | NearDup(cfg)
    _ = (
        res.dropped
        | beam.FlatMap(pairs)
        | beam.combiners.ToList()
        | beam.Map(lambda ps: Path(out).write_text(json.dumps(dict(sorted(ps)))))
    )
    result = p.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - started
    shutil.rmtree(spill)
    summary = summary_from_metrics(result)
    drops = json.loads(Path(out).read_text()) if Path(out).exists() else {}
    return {
        "seconds": round(seconds, 2),
        "drops": len(drops),
        "clusters": len(set(drops.values())),
        "rounds_needed": rounds_needed(summary, cfg.max_rounds) if clustering == "star_rounds" else None,
        "unsettled": summary.get("settle", {}).get("unsettled"),
        "groupings": summary,
    }


def _fresh(args: list[str], scratch: Path | None = None) -> dict:
    """Run one measurement in a new interpreter (its own peak RSS and CPU), its process tree sampled from here."""
    cmd = [sys.executable, __file__, *args]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        with Monitor(proc.pid, scratch) as monitor:
            out, _ = proc.communicate()
        if proc.returncode:
            err.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.read()[-4000:]}")
    return {**json.loads(out.strip().splitlines()[-1]), **monitor.report()}


# ---------------------------------------------------------------- the benchmark


def _fixed_seconds(tmp: Path, workers: list[int], files: int) -> dict[int, float]:
    """Each worker count's fixed cost: the chain on a 0.2 MB corpus (Beam's start, workers' start, per-stage costs)."""
    corpus = tmp / "corpus-fixed"
    grow(corpus, 0.2, files)
    out = {}
    for w in workers:
        run = _fresh(["--curate-run", str(corpus / "*.jsonl"), str(tmp / "run-fixed"), str(w)])
        shutil.rmtree(tmp / "run-fixed", ignore_errors=True)
        out[w] = run["seconds"]
    shutil.rmtree(corpus)
    return out


def components_check(name: str, paths: list[Path], tmp: Path) -> dict:
    runs, drops = {}, {}
    for clustering in ("union_find", "star_rounds", "star_rounds_uncontracted"):
        out = tmp / f"components-{clustering}.json"
        runs[clustering] = _fresh(["--components-run", json.dumps([str(p) for p in paths]), clustering, str(out)])
        drops[clustering] = json.loads(out.read_text()) if out.exists() else {}
        out.unlink(missing_ok=True)
    same = drops["union_find"] == drops["star_rounds"] == drops["star_rounds_uncontracted"]
    return {"corpus": name, "identical": same, **runs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--sizes", default="10MB,100MB,1GB")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--files", type=int, default=8, help="JSONL files per corpus")
    ap.add_argument("--datatrove-size", default="100MB", help="which size datatrove runs on; empty to skip")
    ap.add_argument("--skip-components", action="store_true")
    ap.add_argument("--tmp", help="scratch folder (default: a temporary folder)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--parallelism", choices=["auto", "pool", "beam"], default="auto",
                    help="runner.local_parallelism of the tamis runs: auto (default), the fork pool or Beam's")
    ap.add_argument("--curate-run", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--datatrove-run", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--components-run", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.curate_run:
        print(json.dumps(curate_run(args.curate_run[0], args.curate_run[1], int(args.curate_run[2]))))
        return
    if args.datatrove_run:
        print(json.dumps(datatrove_run(args.datatrove_run[0], args.datatrove_run[1], int(args.datatrove_run[2]))))
        return
    if args.components_run:
        paths, clustering, out = args.components_run
        print(json.dumps(components_run(json.loads(paths), clustering, out)))
        return

    os.environ[PARALLELISM] = args.parallelism
    sizes = [parse_size(s) for s in args.sizes.split(",") if s]
    workers = [int(w) for w in args.workers.split(",")]
    dt_size = parse_size(args.datatrove_size) if args.datatrove_size else None
    result: dict = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]},
        "files_per_corpus": args.files,
        "local_parallelism": args.parallelism,
        "chain": ["exact_dedup(line)", "near_dedup", *FILTERS],
        "sizes": {},
    }
    tmp_root = Path(args.tmp or tempfile.mkdtemp(prefix="tamis-scale-"))
    tmp_root.mkdir(parents=True, exist_ok=True)
    try:
        if not args.skip_components:
            result["components_web_pool"] = components_check(
                "web_pool", [DATA / "web_pool" / "pool.jsonl.gz"], tmp_root
            )
        fixed = _fixed_seconds(tmp_root, workers, args.files)
        result["fixed_seconds"] = fixed
        for mb in sizes:
            name = label(mb)
            corpus = tmp_root / f"corpus-{name}"
            truth = grow(corpus, mb, args.files)
            entry: dict = {**truth, "mb": round(truth["mb"], 2), "workers": {}}
            for w in workers:
                out = tmp_root / f"run-{name}-{w}"
                run = _fresh(["--curate-run", str(corpus / "*.jsonl"), str(out), str(w)], out / "_spill")
                shutil.rmtree(out, ignore_errors=True)
                run["fixed_seconds"] = fixed[w]
                run["mb_per_s"] = round(truth["mb"] / run["seconds"], 3)
                run["mb_per_s_without_fixed"] = round(truth["mb"] / max(run["seconds"] - fixed[w], 1e-3), 3)
                run["est_mb_per_s"] = round(truth["mb"] / run["est_seconds"], 3)
                run["load_avg"] = [round(x, 2) for x in os.getloadavg()]
                entry["workers"][str(w)] = run
            ws = entry["workers"]
            if "1" in ws and "2" in ws:
                entry["speedup_2_workers"] = round(ws["1"]["seconds"] / ws["2"]["seconds"], 3)
                entry["est_speedup_2_workers"] = round(ws["1"]["est_seconds"] / ws["2"]["est_seconds"], 3)
                entry["same_output"] = ws["1"]["output_sha256"] == ws["2"]["output_sha256"]
            if dt_size is not None and abs(mb - dt_size) < 1e-6:
                entry["datatrove"] = {}
                for w in workers:
                    work = tmp_root / f"datatrove-{name}-{w}"
                    run = _fresh(["--datatrove-run", str(corpus), str(work), str(w)], work)
                    shutil.rmtree(work, ignore_errors=True)
                    run["mb_per_s"] = round(truth["mb"] / run["seconds"], 3)
                    run["load_avg"] = [round(x, 2) for x in os.getloadavg()]
                    entry["datatrove"][str(w)] = run
            if not args.skip_components:
                entry["components"] = components_check(name, sorted(corpus.glob("*.jsonl")), tmp_root)
            shutil.rmtree(corpus, ignore_errors=True)
            result["sizes"][name] = entry
    finally:
        if not args.tmp:
            shutil.rmtree(tmp_root, ignore_errors=True)
    _headline(result)
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=None if args.json else 2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


def _headline(result: dict) -> None:
    """The top-level figures: per size and worker count, and the ratios."""
    sizes = result["sizes"]
    result["throughput_mb_per_s"] = {n: {w: r["mb_per_s"] for w, r in e["workers"].items()} for n, e in sizes.items()}
    result["throughput_mb_per_s_without_fixed"] = {
        n: {w: r["mb_per_s_without_fixed"] for w, r in e["workers"].items()} for n, e in sizes.items()
    }
    result["est_throughput_mb_per_s"] = {
        n: {w: r["est_mb_per_s"] for w, r in e["workers"].items()} for n, e in sizes.items()
    }
    result["peak_rss_mb"] = {
        n: {w: max([r["parent_rss_mb"], r["largest_child_rss_mb"], *r["workers_rss_mb"]]) for w, r in e["workers"].items()}
        for n, e in sizes.items()
    }
    result["speedup_2_workers"] = {n: e.get("speedup_2_workers") for n, e in sizes.items()}
    result["est_speedup_2_workers"] = {n: e.get("est_speedup_2_workers") for n, e in sizes.items()}
    result["speedup_vs_datatrove"] = {}
    for e in sizes.values():
        for w, dt in e.get("datatrove", {}).items():
            result["speedup_vs_datatrove"][w] = round(e["workers"][w]["mb_per_s"] / dt["mb_per_s"], 2)
    for key in ("throughput_mb_per_s", "throughput_mb_per_s_without_fixed", "est_throughput_mb_per_s"):
        for w in {w for per in result[key].values() for w in per}:
            rates = [per[w] for per in result[key].values() if w in per]
            if len(rates) > 1:
                result.setdefault(key.replace("mb_per_s", "spread"), {})[w] = round(max(rates) / min(rates) - 1, 3)
    if "components_web_pool" in result:
        checks = [result["components_web_pool"], *(e["components"] for e in sizes.values() if "components" in e)]
        result["components_identical"] = all(c["identical"] for c in checks)


if __name__ == "__main__":
    main()
