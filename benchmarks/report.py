"""How long the HTML run report takes on a 100k-document curate run.

    python benchmarks/report.py --json [--docs 100000] [--workers 2] [--rounds 3] [--workdir DIR]

Grows N documents from the web pool's real text (random runs of 3-20 of its
lines, fixed seed, as benchmarks/bm25.py's scale mode does), with planted exact
copies and near copies (one line replaced) so that every section has data, and
curates them with `tamis curate` and the demo's chain: exact and near dedup,
langid, gopher_repetition, gopher_quality, c4_quality, fineweb_quality. Then
it times `tamis.report.html.write_report` on the finished run, in-process,
best and median of --rounds, split into reading the run (`collect`) and
drawing the page (`render`); and once each, the cold command `tamis report RUN
--no-verify` (interpreter start and imports included) and the checksum
verification that `tamis report` does by default.

No other tool writes this report, so there is no peer to run beside it. As a
yardstick in the same rounds, `read_all_s` reads every column of every shard
and dropped file with pyarrow (what a report that loaded the run whole would
start with); `ratio_vs_read_all` = report time / that.

With --workdir, a finished run left there by an earlier call is reused (its build times are kept beside it).
`curate_s` includes the report `tamis curate` writes at its end.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

from tamis.cli.demo import demo_dir  # noqa: E402
from tamis.report import data, html, runs  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
POOL = REPO.parent / "shared" / "data" / "curation" / "web_pool" / "pool.jsonl.gz"


def pool_lines(limit_chars: int = 40) -> list[str]:
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        return [ln for row in f for ln in json.loads(row)["text"].split("\n") if len(ln) >= limit_chars]


def write_corpus(n_docs: int, folder: Path, files: int, seed: int = 0, exact: float = 0.01, near: float = 0.03
                 ) -> int:
    """N documents as `files` Parquet files; `exact` of them copies of an earlier document, `near` of them
    copies with one line replaced. Returns the text bytes written."""
    lines = np.array(pool_lines(), dtype=object)
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 21, size=n_docs)
    picks = rng.integers(0, len(lines), size=int(sizes.sum()))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    docs = [list(lines[picks[bounds[i] : bounds[i + 1]]]) for i in range(n_docs)]
    kind = rng.random(n_docs)
    for i in np.flatnonzero(kind < exact + near)[1:]:
        src = docs[int(rng.integers(0, i))]
        docs[i] = list(src)
        if kind[i] >= exact:
            docs[i][int(rng.integers(0, len(src)))] = str(lines[int(rng.integers(0, len(lines)))])
    texts = ["\n".join(d) for d in docs]
    per = -(-n_docs // files)
    for f in range(files):
        part = range(f * per, min(n_docs, (f + 1) * per))
        pq.write_table(pa.table({"id": [f"syn-{i:07d}" for i in part], "text": [texts[i] for i in part]}),
                       folder / f"part-{f:03d}.parquet")
    return sum(len(t.encode()) for t in texts)


def curate(work: Path, n_docs: int, files: int, workers: int) -> dict:
    """Build the corpus and run `tamis curate` on it (in a child process), unless a finished run is there."""
    run, record = work / "run", work / "build.json"
    if (run / "manifest.json").exists() and record.exists():
        return {**json.loads(record.read_text()), "reused_run": True}
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    text_bytes = write_corpus(n_docs, corpus, files)
    generate_s = time.perf_counter() - start
    raw = yaml.safe_load(Path(demo_dir(), "config.yaml").read_text())
    raw.update(inputs=[{"path": str(corpus / "*.parquet")}], output=str(run), shards={"target_bytes": 16 << 20},
               max_error_fraction=0.01)
    (work / "config.yaml").write_text(yaml.safe_dump(raw))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tamis", "curate", str(work / "config.yaml"), "--json",
                           "--workers", str(workers)], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"tamis curate failed:\n{proc.stderr[-3000:]}")
    built = {"generate_s": round(generate_s, 3), "corpus_text_bytes": text_bytes,
             "curate_s": round(time.perf_counter() - start, 3), "curate_workers": workers}
    record.write_text(json.dumps(built))
    return {**built, "reused_run": False}


def read_all(run: str, m: dict) -> int:
    rows = 0
    for folder in ("shards", "dropped"):
        for rel in runs.parquet_files(m, folder):
            rows += pq.read_table(Path(run, rel)).num_rows
    return rows


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=8, help="input files the documents are split into")
    ap.add_argument("--workers", type=int, default=2, help="curate's local worker processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workdir", type=Path, help="where corpus and run go (default: a temporary folder)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "report.json"))
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="tamis-report-bench-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        built = curate(work, args.docs, args.files, args.workers)
        run = str(work / "run")
        m = runs.load(run)
        collect_s, render_s, total_s, read_all_s = [], [], [], []
        for _ in range(args.rounds):
            s, report = timed(data.collect, run)
            collect_s.append(s)
            s, page = timed(html.render, report)
            render_s.append(s)
            s, _ = timed(html.write_report, run)
            total_s.append(s)
            s, _ = timed(read_all, run, m)
            read_all_s.append(s)
        verify_s, _ = timed(runs.load, run, True)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tamis", "report", run, "--no-verify"], capture_output=True,
                              text=True)
        cold_s = time.perf_counter() - start
        if proc.returncode:
            raise SystemExit(f"tamis report failed:\n{proc.stderr[-3000:]}")
        c = m["counts"]
        result = {
            "docs": c["read"],
            "kept": c["kept"],
            "dropped": c["dropped"],
            "dropped_by_stage": c["dropped_by_stage"],
            "score_columns": len(report["scores"]["columns"]),
            "run_bytes": sum(e["bytes"] for e in m["files"]),
            "report_bytes": len(page.encode()),
            **built,
            "rounds": args.rounds,
            "report_s": round(min(total_s), 3),
            "report_median_s": round(statistics.median(total_s), 3),
            "collect_s": round(min(collect_s), 3),
            "render_s": round(min(render_s), 3),
            "cold_command_s": round(cold_s, 3),
            "verify_s": round(verify_s, 3),
            "read_all_s": round(min(read_all_s), 3),
            "ratio_vs_read_all": round(min(total_s) / min(read_all_s), 3),
            "runs": {"report_s": [round(s, 3) for s in total_s], "read_all_s": [round(s, 3) for s in read_all_s]},
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    json.dump(result, sys.stdout, indent=None if args.json else 2)
    print()


if __name__ == "__main__":
    main()
