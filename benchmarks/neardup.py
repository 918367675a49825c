"""Near-duplicate detection: tamis vs datasketch vs datatrove MinHash, then tamis's Beam stage at growing sizes.

Part 1 (`peers`), on ../shared/data/curation/neardup/webis_s3_* (human-judged
pairs; read at run time, never copied): the three MinHash implementations on
the same documents with the same parameters (word 5-grams, 128 permutations,
the bands × rows datasketch picks for `--threshold`), one core, one process:
MB/s end to end (shingling, signatures, LSH buckets, clusters; the fastest
of `--rounds` runs each) and the precision/recall of their clusters. Then
tamis with its default settings, and datasketch's best F1 over thresholds
0.3–0.9 (signatures reused).

Part 2 (`scaling`): synthetic corpora grown from ../shared/data/curation/web_pool
(each document a random draw of pool lines; a fixed share of documents are
near copies of earlier ones with 2% of their words replaced), run through the
Beam NearDup stage on the in-process FnApiRunner, one worker, each size in a
fresh subprocess (the fastest of `--rounds` runs below 500 MB): MB/s, peak
RSS, and the share of planted copies found. Then
the same corpus through the whole `tamis curate` pipeline (read, exact dedup,
near dedup, writing shards and dropped/ to a run directory): MB/s and peak RSS.

    python benchmarks/neardup.py --json                          # sizes 10 and 100 MB
    python benchmarks/neardup.py --sizes 10,100,1000 --json      # with the 1 GB run
"""

import argparse
import gzip
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

DATA = Path(os.environ.get("TAMIS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "curation"
PLANT_RATE = 0.1
PLANT_EDIT = 0.02
SINGLE_RUN_MB = 500  # a run this large takes over a minute: one is enough


def load_webis():
    docs = [json.loads(line) for line in gzip.open(DATA / "neardup" / "webis_s3_docs.jsonl.gz", "rt")]
    pairs = [json.loads(line) for line in open(DATA / "neardup" / "webis_s3_pairs.jsonl")]
    return docs, [(p["a"], p["b"], p["label"]) for p in pairs]


def clusters_from_pairs(candidates) -> dict[str, str]:
    from tamis.dedup.neardup import UnionFind

    uf = UnionFind()
    for a, b in candidates:
        uf.union(a, b)
    return {x: uf.find(x) for x in uf.parent}


def words5(text: str) -> list[str]:
    w = text.lower().split()
    return [" ".join(w[i : i + 5]) for i in range(max(1, len(w) - 4))]


def run_datasketch(docs, threshold, num_perm=128, signatures=None):
    from datasketch import MinHash, MinHashLSH

    if signatures is None:
        signatures = {}
        for d in docs:
            m = MinHash(num_perm=num_perm, seed=1)
            m.update_batch([s.encode("utf-8") for s in words5(d["text"])])
            signatures[d["id"]] = m
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    pairs = []
    for d in docs:
        m = signatures[d["id"]]
        pairs += [(d["id"], o) for o in lsh.query(m)]
        lsh.insert(d["id"], m)
    return clusters_from_pairs(pairs), signatures, (lsh.b, lsh.r)


def run_datatrove(docs, bands, rows):
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.utils.hashing import HashConfig

    cfg = MinhashConfig(5, bands, rows, hash_config=HashConfig(precision=64, hash_fc="sha1"))
    step = MinhashDedupSignature(tempfile.mkdtemp(), cfg)
    buckets: dict = {}
    for d in docs:
        for i, band in enumerate(step.get_signature(step.get_shingles(d["text"]))):
            buckets.setdefault((i, tuple(band)), []).append(d["id"])
    pairs = [(m[0], o) for m in buckets.values() for o in m[1:]]
    return clusters_from_pairs(pairs)


def run_tamis(docs, cfg):
    from tamis.dedup.neardup import near_duplicates
    from tamis.schema import documents

    batches = [
        documents([{"id": d["id"], "text": d["text"]} for d in docs[i : i + 1000]]) for i in range(0, len(docs), 1000)
    ]
    return near_duplicates(batches, cfg)


def timed(rounds: int, fn, *args, **kw):
    """`fn`'s result and its fastest time over `rounds` runs: the run least disturbed by other load."""
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t)
    return out, best


def prf(pairs, root_of):
    from tamis.eval.neardup import score

    s = score(pairs, root_of)
    return {k: round(s[k], 4) for k in ("precision", "recall", "f1")}


def peers(threshold: float, skip_datatrove: bool, rounds: int) -> dict:
    from tamis.dedup.neardup import NearDupConfig

    docs, pairs = load_webis()
    mb = sum(len(d["text"].encode()) for d in docs) / 1e6
    out: dict = {
        "docs": len(docs),
        "mb": round(mb, 3),
        "threshold": threshold,
        "shingles": "word 5-grams",
        "num_perm": 128,
        "rounds": rounds,
    }
    run_tamis(docs[:5], NearDupConfig())  # warm the code-point table once, as a long run would

    (ds_root, sigs, (b, r)), secs = timed(rounds, run_datasketch, docs, threshold)
    out["bands"], out["rows"] = b, r
    out["datasketch"] = {"mb_per_s": round(mb / secs, 3), "seconds": round(secs, 3), **prf(pairs, ds_root)}
    same = NearDupConfig(threshold=threshold, verify=False, bands=b, rows=r, punctuation=False, digits=False)
    tm_root, secs = timed(rounds, run_tamis, docs, same)
    out["tamis"] = {"mb_per_s": round(mb / secs, 3), "seconds": round(secs, 3), **prf(pairs, tm_root)}
    if not skip_datatrove:
        dt_root, secs = timed(rounds, run_datatrove, docs, b, r)
        out["datatrove"] = {"mb_per_s": round(mb / secs, 3), "seconds": round(secs, 3), **prf(pairs, dt_root)}
    out["speedup_vs_datasketch"] = round(out["tamis"]["mb_per_s"] / out["datasketch"]["mb_per_s"], 2)

    default, secs = timed(rounds, run_tamis, docs, NearDupConfig())
    out["tamis_default"] = {"mb_per_s": round(mb / secs, 3), **prf(pairs, default), "config": NearDupConfig().model_dump()}
    sweep = {}
    for t in np.round(np.arange(0.3, 0.91, 0.05), 2):
        root, _, _ = run_datasketch(docs, float(t), signatures=sigs)
        sweep[str(t)] = prf(pairs, root)
    best = max(sweep, key=lambda t: sweep[t]["f1"])
    out["datasketch_sweep"] = sweep
    out["datasketch_best"] = {"threshold": float(best), **sweep[best]}
    out["f1_gain_vs_datasketch_best"] = round(out["tamis_default"]["f1"] - sweep[best]["f1"], 4)
    return out


def grow_corpus(path: Path, target_mb: float, seed: int = 0, line_edit: bool = False) -> dict:
    """Write a JSONL corpus of random draws of pool lines, with planted near copies; return its truth counts.

    `line_edit` replaces one word of every drawn line with a random pool word, so that lines do not
    repeat more often as the corpus grows (benchmarks/scale.py, whose chain drops repeated lines).
    """
    rng = random.Random(seed)
    lines = []
    for raw in gzip.open(DATA / "web_pool" / "pool.jsonl.gz", "rt"):
        lines += [ln for ln in json.loads(raw)["text"].split("\n") if len(ln) > 40]
    vocab = [w for ln in lines[:5000] for w in ln.split()]
    written = planted = 0
    recent: list[str] = []
    target = target_mb * 1e6
    with open(path, "w", encoding="utf-8") as f:
        i = 0
        while written < target:
            if recent and rng.random() < PLANT_RATE:
                words = rng.choice(recent).split()
                for _ in range(max(1, int(len(words) * PLANT_EDIT))):
                    words[rng.randrange(len(words))] = rng.choice(vocab)
                text, doc_id = " ".join(words), f"planted-{i}"
                planted += 1
            else:
                drawn = [rng.choice(lines) for _ in range(rng.randint(5, 40))]
                if line_edit:
                    drawn = [_edit_one_word(ln, vocab, rng) for ln in drawn]
                text, doc_id = "\n".join(drawn), f"doc-{i}"
                recent = (recent + [text])[-1000:]
            f.write(json.dumps({"id": doc_id, "text": text}) + "\n")
            written += len(text.encode())
            i += 1
    return {"docs": i, "planted": planted, "mb": written / 1e6}


def _edit_one_word(line: str, vocab: list[str], rng: random.Random) -> str:
    words = line.split(" ")
    words[rng.randrange(len(words))] = rng.choice(vocab)
    return " ".join(words)


def beam_run(path: str, warm: str, rounds: int) -> dict:
    """One size through the Beam stage, in this (fresh) process, timed after a run on the small `warm` corpus.

    The warm-up pays the imports and first-use costs once, as a long-lived worker does; a second
    run on it measures the pipeline's fixed cost (Beam's per-stage setup), reported beside the total.
    The fastest of `rounds` runs counts: a run of a few seconds is easily disturbed by other load.
    """
    stage_run(warm)
    fixed = stage_run(warm)["seconds"]
    best = min((stage_run(path) for _ in range(rounds)), key=lambda run: run["seconds"])
    return {**best, "fixed_seconds": fixed, "rounds": rounds, "peak_rss_mb": _peak_rss_mb()}


def curate_run(path: str, warm: str) -> dict:
    """`tamis curate` with exact and near dedup on one corpus, after a warm-up run, in this (fresh) process."""
    from tamis import config
    from tamis.pipelines import curate

    def run(corpus: str) -> tuple[float, dict]:
        out = tempfile.mkdtemp(dir=Path(corpus).parent)
        cfg = config.parse({"inputs": [{"path": corpus}], "output": out, "near_dedup": {"enabled": True}})
        started = time.perf_counter()
        manifest = curate.run(cfg)
        seconds = time.perf_counter() - started
        shutil.rmtree(out)
        return seconds, manifest["counts"]

    run(warm)
    seconds, counts = run(path)
    return {
        "seconds": seconds,
        "kept": counts["kept"],
        "dropped_by_reason": counts["dropped_by_reason"],
        "peak_rss_mb": _peak_rss_mb(),
    }


def stage_run(path: str) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    from tamis.dedup.neardup import NearDupConfig
    from tamis.io.readers import InputConfig, read_file
    from tamis.pipelines.neardup import NearDup

    def read(p):
        for i, (kind, batch) in enumerate(read_file(p, InputConfig(p), 1000)):
            if kind == "docs":
                yield (0, i), batch

    def dropped_ids(kv):
        return kv[1][1].column("id").to_pylist()

    out_file = path + ".dropped.json"
    spill_dir = tempfile.mkdtemp(prefix="spill-", dir=Path(path).parent)  # as `tamis curate` spills locally
    opts = PipelineOptions(direct_num_workers=1, tamis_spill_dir=spill_dir)
    started = time.perf_counter()
    with beam.Pipeline(runner=FnApiRunner(), options=opts) as p:
        res = p | beam.Create([path]) | "Read" >> beam.FlatMap(read) | NearDup(NearDupConfig())
        _ = (
            res.dropped
            | beam.FlatMap(dropped_ids)
            | beam.combiners.ToList()
            | beam.Map(lambda ids: Path(out_file).write_text(json.dumps(ids)))
        )
        _ = res.kept | beam.combiners.Count.Globally() | beam.Map(lambda n: Path(path + ".kept").write_text(str(n)))
    seconds = time.perf_counter() - started
    shutil.rmtree(spill_dir)
    ids = json.loads(Path(out_file).read_text())
    return {
        "seconds": seconds,
        "dropped": len(ids),
        "dropped_planted": sum(i.startswith("planted-") for i in ids),
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    """This process's peak RSS since exec (VmHWM). ru_maxrss would also count the parent's RSS at fork."""
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _fresh_process(flag: str, path: Path, warm: Path, rounds: int = 1) -> dict:
    """Run one measurement in a new interpreter, so that its peak RSS is its own."""
    cmd = [sys.executable, __file__, flag, str(path), "--warm", str(warm), "--rounds", str(rounds)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scaling(sizes: list[float], rounds: int) -> dict:
    """Each size through the Beam stage (the fastest of `rounds` runs below SINGLE_RUN_MB) and through curate."""
    from tamis.dedup.neardup import NearDupConfig

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm.jsonl"
        grow_corpus(warm, 0.5, seed=1)
        for size in sizes:
            path = Path(tmp) / f"corpus_{size:g}mb.jsonl"
            truth = grow_corpus(path, size)
            run = _fresh_process("--beam-run", path, warm, rounds if size < SINGLE_RUN_MB else 1)
            whole = _fresh_process("--curate-run", path, warm)
            out[f"{size:g}MB"] = {
                "docs": truth["docs"],
                "mb": round(truth["mb"], 2),
                "mb_per_s": round(truth["mb"] / run["seconds"], 3),
                "fixed_seconds": round(run["fixed_seconds"], 2),
                "rounds": run["rounds"],
                "mb_per_s_without_fixed": round(truth["mb"] / max(run["seconds"] - run["fixed_seconds"], 1e-3), 3),
                "peak_rss_mb": round(run["peak_rss_mb"], 1),
                "planted": truth["planted"],
                "planted_found": round(run["dropped_planted"] / max(truth["planted"], 1), 4),
                "other_dropped": run["dropped"] - run["dropped_planted"],
                "curate": {
                    "mb_per_s": round(truth["mb"] / whole["seconds"], 3),
                    "peak_rss_mb": round(whole["peak_rss_mb"], 1),
                    "kept": whole["kept"],
                    "dropped_by_reason": whole["dropped_by_reason"],
                },
            }
            path.unlink()
    runs = list(out.values())
    if len(runs) > 1:
        rates = [v["mb_per_s"] for v in runs]
        out["throughput_spread"] = round(max(rates) / min(rates) - 1, 3)
        net = [v["mb_per_s_without_fixed"] for v in runs]
        out["throughput_spread_without_fixed"] = round(max(net) / min(net) - 1, 3)
        lo, hi = runs[-2], runs[-1]
        out["rss_mb_per_corpus_mb"] = round((hi["peak_rss_mb"] - lo["peak_rss_mb"]) / (hi["mb"] - lo["mb"]), 3)
        rss = (hi["curate"]["peak_rss_mb"] - lo["curate"]["peak_rss_mb"]) / (hi["mb"] - lo["mb"])
        out["curate_rss_mb_per_corpus_mb"] = round(rss, 3)
        curate_rates = [v["curate"]["mb_per_s"] for v in runs]
        out["curate_throughput_spread"] = round(max(curate_rates) / min(curate_rates) - 1, 3)
    out["config"] = NearDupConfig().model_dump()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threshold", type=float, default=0.7)
    ap.add_argument("--sizes", default="10,100", help="scaling sizes in MB; empty to skip")
    ap.add_argument("--skip-datatrove", action="store_true")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="timings: the fastest of this many runs (peers; scaling sizes below 500 MB)",
    )
    ap.add_argument("--out", help="also write the JSON here")
    ap.add_argument("--beam-run", help=argparse.SUPPRESS)
    ap.add_argument("--curate-run", help=argparse.SUPPRESS)
    ap.add_argument("--warm", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.beam_run:
        print(json.dumps(beam_run(args.beam_run, args.warm, args.rounds)))
        return
    if args.curate_run:
        print(json.dumps(curate_run(args.curate_run, args.warm)))
        return
    result = {} if args.skip_peers else peers(args.threshold, args.skip_datatrove, args.rounds)
    sizes = [float(s) for s in args.sizes.split(",") if s]
    if sizes:
        result["scaling"] = scaling(sizes, args.rounds)
    text = json.dumps(result, indent=None if args.json else 2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
