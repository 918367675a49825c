"""Resume: what a rerun of an interrupted `tamis curate` costs next to an uninterrupted run, with dedup on.

The corpus is the shared web pool (13,652 documents, 38.7 MB of text) split
into `--files` JSONL files of about equal size (resume works per input file),
or with `--grow MB` a corpus grown from the pool by benchmarks/neardup.py's
generator (lines edited, as benchmarks/scale.py does). The chain is the
default web chain of configs/web.yaml without decontamination: exact dedup
(documents, then repeated lines of at least 40 characters), near dedup with
its defaults, langid (en, 0.65), Gopher repetition and quality, C4, FineWeb,
PII; 64 MB shards (one per input file here).

Each round runs, each in a fresh process: the uninterrupted run; the same
config in a new directory stopped by the `fail_after_shards` fault injection
once half of the input files are finished (64 MB shards: one shard per file,
closed when the file is done; the injection fires at the first batch written
past N shards, so N = half - 1 leaves exactly half of the files finished, as
the run reports); and the rerun that resumes it. The resumed output must be
byte-identical to the uninterrupted one: every file under shards/, dropped/,
errors/ and _progress/ (the markers), and the manifest's counts. Reported:
seconds of each run (the fastest of `--repeat` rounds for each, and every
round's), and `ratio` = resumed ÷ uninterrupted seconds (the issue's goal: ≤
0.6); also each run's CPU seconds (user + system of its process: one worker
runs in-process) and `cpu_ratio`, which a machine shared with other jobs
disturbs less than wall time.

    python benchmarks/resume.py --json --out benchmarks/results/resume.json
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from neardup import DATA, grow_corpus  # noqa: E402  (the sibling benchmark; this folder is on sys.path)

FILTERS = ["langid", "gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality", "pii"]


def split_lines(lines: list[bytes], folder: Path, files: int) -> None:
    """Contiguous runs of lines, about equal in bytes, into part-NNN.jsonl."""
    folder.mkdir(parents=True, exist_ok=True)
    target = sum(len(x) for x in lines) / files
    outs = [open(folder / f"part-{i:03d}.jsonl", "wb") for i in range(files)]
    written = 0
    for line in lines:
        outs[min(int(written // target), files - 1)].write(line)
        written += len(line)
    for o in outs:
        o.close()


def make_corpus(folder: Path, files: int, grow_mb: float | None) -> dict:
    if grow_mb:
        whole = folder.parent / "whole.jsonl"
        truth = grow_corpus(whole, grow_mb, line_edit=True)
        lines = whole.read_bytes().splitlines(keepends=True)
        whole.unlink()
        name = f"grown {grow_mb:g} MB"
    else:
        with gzip.open(DATA / "web_pool" / "pool.jsonl.gz", "rb") as f:
            lines = f.read().splitlines(keepends=True)
        truth = {"docs": len(lines)}
        name = "web_pool"
    split_lines(lines, folder, files)
    mb = sum(len(json.loads(x)["text"].encode()) for x in lines) / 1e6
    return {"corpus": name, **truth, "mb": round(mb, 2), "files": files}


def chain_config(inputs: str, out: str, workers: int, fail_after: int | None = None) -> dict:
    cfg = {
        "inputs": [{"path": inputs}],
        "output": out,
        "exact_dedup": {"enabled": True, "units": "line", "min_unit_chars": 40},
        "near_dedup": {"enabled": True},
        "filters": [{"name": f, "params": {"languages": ["en"], "min_confidence": 0.65}} if f == "langid" else {"name": f}
                    for f in FILTERS],
        "shards": {"target_bytes": 64 * 1024 * 1024},
        "runner": {"workers": workers},
        "max_error_fraction": 0.01,
    }
    if fail_after is not None:
        cfg["fail_after_shards"] = fail_after
    return cfg


def one_run(raw: dict) -> dict:
    """One `curate.run` in this process: its seconds, or the fault it stopped at."""
    from tamis import config
    from tamis.pipelines import curate

    def cpu() -> float:
        used = resource.getrusage(resource.RUSAGE_SELF)
        return used.ru_utime + used.ru_stime

    cfg = config.parse(raw)
    started, cpu_started = time.perf_counter(), cpu()
    try:
        manifest = curate.run(cfg)
    except Exception as e:  # noqa: BLE001  the fault injection, as Beam re-raises it
        if "fault injection" not in str(e):
            raise
        return {"seconds": round(time.perf_counter() - started, 2), "stopped": True}
    return {"seconds": round(time.perf_counter() - started, 2), "cpu_s": round(cpu() - cpu_started, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "stopped": False, "counts": manifest["counts"]}


def fresh(raw: dict) -> dict:
    cmd = [sys.executable, __file__, "--one-run", json.dumps(raw)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"run failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def digests(run: Path) -> dict[str, str]:
    """sha256 of every output file a finished run keeps, markers included (not the manifest: it holds seconds)."""
    return {
        p.relative_to(run).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def finished_inputs(run: Path) -> int:
    return len(list((run / "_progress").glob("*.json")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--files", type=int, default=8, help="input files the corpus is split into")
    ap.add_argument("--grow", type=float, default=None, help="MB of corpus grown from the pool instead of the pool")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2, help="rounds of (uninterrupted, stopped, resumed)")
    ap.add_argument("--tmp", help="scratch folder (default: a temporary folder)")
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--one-run", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one_run:
        print(json.dumps(one_run(json.loads(args.one_run))))
        return

    tmp = Path(args.tmp or tempfile.mkdtemp(prefix="tamis-resume-"))
    tmp.mkdir(parents=True, exist_ok=True)
    result: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_start": [round(x, 2) for x in os.getloadavg()]}}
    try:
        corpus = tmp / "corpus"
        result["corpus"] = make_corpus(corpus, args.files, args.grow)
        inputs = str(corpus / "*.jsonl")
        half = args.files // 2
        stop_after = max(half - 1, 0)  # fires when the next file starts writing: `half` files finished
        result.update(workers=args.workers, chain=["exact_dedup(line, 40)", "near_dedup", *FILTERS],
                      fail_after_shards=stop_after, rounds=[])
        for r in range(args.repeat):
            clean, stopped = tmp / f"clean{r}", tmp / f"stopped{r}"
            full = fresh(chain_config(inputs, str(clean), args.workers))
            killed = fresh(chain_config(inputs, str(stopped), args.workers, fail_after=stop_after))
            if not killed["stopped"]:
                raise RuntimeError("the fault injection did not stop the run")
            done_before = finished_inputs(stopped)
            resumed = fresh(chain_config(inputs, str(stopped), args.workers))
            same_files = digests(clean) == digests(stopped)
            result["rounds"].append({
                "uninterrupted_s": full["seconds"], "stopped_s": killed["seconds"], "resumed_s": resumed["seconds"],
                "inputs_finished_before_resume": done_before, "ratio": round(resumed["seconds"] / full["seconds"], 3),
                "uninterrupted_cpu_s": full["cpu_s"], "resumed_cpu_s": resumed["cpu_s"],
                "uninterrupted_peak_rss_mb": full["peak_rss_mb"], "resumed_peak_rss_mb": resumed["peak_rss_mb"],
                "cpu_ratio": round(resumed["cpu_s"] / full["cpu_s"], 3),
                "identical_files": same_files, "identical_counts": full["counts"] == resumed["counts"],
            })
            result["counts"] = full["counts"]
            shutil.rmtree(clean, ignore_errors=True)
            shutil.rmtree(stopped, ignore_errors=True)
    finally:
        if not args.tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    rounds = result["rounds"]
    best_full = min(x["uninterrupted_s"] for x in rounds)
    best_resumed = min(x["resumed_s"] for x in rounds)
    result.update(
        uninterrupted_s=best_full,
        resumed_s=best_resumed,
        ratio=round(best_resumed / best_full, 3),
        cpu_ratio=round(min(x["resumed_cpu_s"] for x in rounds) / min(x["uninterrupted_cpu_s"] for x in rounds), 3),
        identical=all(x["identical_files"] and x["identical_counts"] for x in rounds),
    )
    result["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=None if args.json else 2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
