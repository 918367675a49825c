"""The tamis training loader beside pyarrow, HF datasets and MosaicML streaming, on the same real web text.

    python benchmarks/loader.py [--copies N] [--rounds R] [--seq-len L] [--json]

Two workloads over the same documents (the shared web pool, `--copies` times):

    documents  one sample per document, a dict of id and text. tamis DocumentDataset over Parquet
               shards written by the curate shard writer; a plain pyarrow loop (iter_batches,
               to_pylist) over the same files; HF datasets streaming over the same files; MosaicML
               StreamingDataset over MDS shards written from them.
    tokens     one sample per packed sequence of L tokens, an int64 torch tensor. tamis TokenDataset
               over a token export of those shards (MiniLM tokenizer); the others over the same
               sequences already packed into rows (Parquet `input_ids`; MDS `ndarray:uint16:L`),
               the pyarrow loop converting 256 rows at a time (as tamis does).

Every reader is iterated in this process (no DataLoader workers: those add the same
collate and inter-process cost to any of them), and each pass builds its reader
anew, so opening and reading manifests and footers count. The training loaders shuffle
(tamis and HF with a 16,384-sample buffer, MosaicML its default py1e with
`shuffle=True`); the pyarrow loop reads in file order. tamis verifies sha256 as by
default, which a process does once per file (tamis/train/checks.py): `tamis` is a
later epoch, `tamis_first_epoch` forgets what was verified before each pass and so
hashes every shard, `tamis_noverify` never does; `hf_datasets_unshuffled` shows what
HF's shuffle buffer costs (ratios compare shuffled with shuffled). Each reader keeps its fastest of
`--rounds` passes, interleaved so load from other processes hits all alike.

MosaicML streaming pins numpy<2.2 and transformers<5, so it cannot sit in tamis's
environment: it runs in its own virtualenv (`--streaming-python`, default
/tmp/streaming-venv/bin/python, made with `python3.11 -m venv /tmp/streaming-venv &&
/tmp/streaming-venv/bin/pip install mosaicml-streaming==0.13.0 pyarrow`), driven as a
subprocess that runs this file with `--mosaic-worker`; without it the result says
"not installed". Printed: samples/s of each reader and workload, tamis's ratios to each,
and at top level the lower of the two workloads' ratios (`ratio_vs_pyarrow`, ...).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SHARED_POOL = REPO.parent / "shared" / "data" / "curation" / "web_pool" / "pool.jsonl.gz"
BUFFER = 1 << 14
STREAMING_PYTHON = "/tmp/streaming-venv/bin/python"


# ---------------------------------------------------------------- data


def prepare(work: Path, pool: Path, copies: int, seq_len: int) -> dict:
    """Parquet shards, a token export and the packed sequences, written once per setting under `work`."""
    from tamis.embeddings import model_path
    from tamis.io import manifest, token_shards
    from tamis.io.shards import ShardWriter

    done = work / "prepared.json"
    if done.exists() and json.loads(done.read_text())["key"] == [str(pool), copies, seq_len]:
        return json.loads(done.read_text())
    import gzip

    rows = [json.loads(line) for line in gzip.open(pool, "rt", encoding="utf-8")]
    run = work / "docs"
    with ShardWriter(str(run), "shards", "part-00000", 16 << 20) as w:  # as curate writes: ~16 MB shards
        for c in range(copies):
            for at in range(0, len(rows), 1000):
                part = rows[at:at + 1000]
                w.write(pa.RecordBatch.from_pydict({"id": [f"{r['id']}-{c}" for r in part],
                                                    "text": [r["text"] for r in part]}))
    shards = w.entries
    manifest.write_manifest(str(run), "loader_bench", 1, {"shards": [{"path": e["path"]} for e in shards]}, shards)
    files = [str(run / e["path"]) for e in shards]
    export = token_shards.export_tokens(files, str(work / "tokens"), model_path() / "tokenizer.json", 1 << 23)
    stream = np.concatenate([np.fromfile(work / "tokens" / s["bin"]["path"], dtype="<u2") for s in export["shards"]])
    packed = stream[: len(stream) // seq_len * seq_len].reshape(-1, seq_len)
    # uncompressed and without dictionary: token ids gain little from either, and decoding costs
    pq.write_table(pa.table({"input_ids": pa.array([row.tobytes() for row in packed], pa.binary())}),
                   work / "packed.parquet", row_group_size=1024, compression="none", use_dictionary=False)
    info = {"key": [str(pool), copies, seq_len], "docs_root": str(run), "docs_files": files,
            "documents": sum(e["rows"] for e in shards), "text_bytes": sum(len(r["text"].encode()) for r in rows) * copies,
            "tokens_root": str(work / "tokens"), "tokens": int(len(stream)), "packed": str(work / "packed.parquet"),
            "sequences": int(len(packed)), "seq_len": seq_len}
    done.write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------- readers (each returns the samples it read)


def tamis_documents(info: dict, verify: bool = True, cold: bool = False) -> int:
    from tamis.train import DocumentDataset
    from tamis.train.checks import forget_verified

    if cold:
        forget_verified()
    return sum(1 for _ in DocumentDataset(info["docs_root"], shuffle_buffer=BUFFER, verify=verify))


def tamis_tokens(info: dict, verify: bool = True, cold: bool = False) -> int:
    from tamis.train import TokenDataset
    from tamis.train.checks import forget_verified

    if cold:
        forget_verified()
    return sum(1 for _ in TokenDataset(info["tokens_root"], info["seq_len"], shuffle_buffer=BUFFER, verify=verify))


def pyarrow_documents(info: dict) -> int:
    n = 0
    for path in info["docs_files"]:
        for batch in pq.ParquetFile(path).iter_batches(columns=["id", "text"]):
            for _row in batch.to_pylist():
                n += 1
    return n


def packed_rows(column: pa.BinaryArray, seq_len: int) -> np.ndarray:
    """The uint16 sequences of a binary column of equal-length rows, without a copy per row."""
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset:column.offset + len(column) + 1]
    data = np.frombuffer(column.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    return data.view("<u2").reshape(-1, seq_len)


def pyarrow_tokens(info: dict) -> int:
    import torch

    n = 0
    for batch in pq.ParquetFile(info["packed"]).iter_batches(batch_size=256, columns=["input_ids"]):
        ids = packed_rows(batch.column(0), info["seq_len"]).astype(np.int64)
        for _sample in torch.from_numpy(ids).unbind(0):
            n += 1
    return n


def hf_documents(info: dict, shuffle: bool = True) -> int:
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=info["docs_files"], split="train", streaming=True)
    ds = ds.select_columns(["id", "text"])
    return sum(1 for _ in (ds.shuffle(seed=0, buffer_size=BUFFER) if shuffle else ds))


def hf_tokens(info: dict, shuffle: bool = True) -> int:
    import torch
    from datasets import load_dataset

    ds = load_dataset("parquet", data_files=[info["packed"]], split="train", streaming=True)
    ds = ds.shuffle(seed=0, buffer_size=BUFFER) if shuffle else ds
    return sum(1 for row in ds if torch.from_numpy(np.frombuffer(row["input_ids"], "<u2").astype(np.int64)) is not None)


READERS = {
    "documents": {"tamis_first_epoch": lambda i: tamis_documents(i, cold=True), "tamis": tamis_documents,
                  "tamis_noverify": lambda i: tamis_documents(i, verify=False),
                  "pyarrow": pyarrow_documents, "hf_datasets": hf_documents,
                  "hf_datasets_unshuffled": lambda i: hf_documents(i, shuffle=False)},
    "tokens": {"tamis_first_epoch": lambda i: tamis_tokens(i, cold=True), "tamis": tamis_tokens,
               "tamis_noverify": lambda i: tamis_tokens(i, verify=False),
               "pyarrow": pyarrow_tokens, "hf_datasets": hf_tokens,
               "hf_datasets_unshuffled": lambda i: hf_tokens(i, shuffle=False)},
}


def timed(fn, info: dict) -> tuple[int, float]:
    start = time.perf_counter()
    n = fn(info)
    return n, time.perf_counter() - start


# ---------------------------------------------------------------- MosaicML streaming, in its own venv


def mosaic_worker(info: dict, work: Path, rounds: int) -> dict:
    """Runs under the streaming venv: write MDS from the same data once, then time StreamingDataset passes."""
    import torch
    from streaming import MDSWriter, StreamingDataset
    from streaming.base.util import clean_stale_shared_memory

    clean_stale_shared_memory()
    L = info["seq_len"]
    docs_mds, tokens_mds = work / "mds_docs", work / "mds_tokens"
    if not (docs_mds / "index.json").exists():
        with MDSWriter(out=str(docs_mds), columns={"id": "str", "text": "str"}) as out:
            for path in info["docs_files"]:
                for row in pq.read_table(path, columns=["id", "text"]).to_pylist():
                    out.write(row)
    if not (tokens_mds / "index.json").exists():
        packed = packed_rows(pq.read_table(info["packed"]).column(0).combine_chunks(), L)
        with MDSWriter(out=str(tokens_mds), columns={"input_ids": f"ndarray:uint16:{L}"}) as out:
            for row in packed:
                out.write({"input_ids": row})

    def dataset(local: Path) -> StreamingDataset:
        # predownload: samples its ready thread may run ahead; the default, 8 * batch_size, stalls
        # a one-sample consumer on 7 ms sleeps (about 1,000 samples/s), so let it run a whole epoch ahead
        return StreamingDataset(local=str(local), shuffle=True, shuffle_seed=0, batch_size=1, predownload=1 << 30)

    def documents(_: dict) -> int:
        return sum(1 for _ in dataset(docs_mds))

    def tokens(_: dict) -> int:
        return sum(1 for s in dataset(tokens_mds) if torch.from_numpy(s["input_ids"].astype(np.int64)) is not None)

    found = {}
    for name, fn in (("documents", documents), ("tokens", tokens)):
        runs = [timed(fn, info) for _ in range(rounds)]
        found[name] = {"samples": runs[0][0], "seconds": [round(s, 4) for _, s in runs]}
    import streaming

    found["version"] = streaming.__version__
    return found


def run_mosaic(info: dict, work: Path, rounds: int, python: str) -> dict:
    if not os.path.exists(python):
        return {"error": f"not installed ({python} is missing; see this file's docstring)"}
    args = [python, __file__, "--mosaic-worker", json.dumps({"info": info, "work": str(work), "rounds": rounds})]
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- main


def bench(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    info = prepare(work, Path(args.data), args.copies, args.seq_len)
    expected = {"documents": info["documents"], "tokens": info["sequences"]}
    times: dict[str, dict[str, list[float]]] = {w: {r: [] for r in READERS[w]} for w in READERS}
    for fn in (r for w in READERS.values() for r in w.values()):  # warm the page cache and imports
        fn(info)
    mosaic: dict = {}
    for k in range(args.rounds):
        for workload, readers in READERS.items():
            for name, fn in readers.items():
                n, seconds = timed(fn, info)
                if n != expected[workload]:
                    raise SystemExit(f"{name} read {n} {workload} samples, expected {expected[workload]}")
                times[workload][name].append(seconds)
        if k == args.rounds // 2:
            mosaic = run_mosaic(info, work, args.rounds, args.streaming_python)
    result = {"data": str(args.data), "copies": args.copies, "documents": info["documents"],
              "text_bytes": info["text_bytes"], "tokens": info["tokens"], "seq_len": args.seq_len,
              "sequences": info["sequences"], "rounds": args.rounds, "shuffle_buffer": BUFFER,
              "python": platform.python_version(), "cpus": os.cpu_count(), "workloads": {}}
    for workload in READERS:
        rate = {name: expected[workload] / min(s) for name, s in times[workload].items()}
        if "error" in mosaic:
            rate["mosaic_streaming"] = None
        else:
            rate["mosaic_streaming"] = expected[workload] / min(mosaic[workload]["seconds"])
        entry = {"samples": expected[workload],
                 "samples_per_s": {k: (round(v, 1) if v else v) for k, v in rate.items()},
                 "ratio_vs_pyarrow": round(rate["tamis"] / rate["pyarrow"], 3),
                 "ratio_vs_pyarrow_first_epoch": round(rate["tamis_first_epoch"] / rate["pyarrow"], 3),
                 "ratio_vs_pyarrow_noverify": round(rate["tamis_noverify"] / rate["pyarrow"], 3),
                 "ratio_vs_hf_datasets": round(rate["tamis"] / rate["hf_datasets"], 3),
                 "ratio_vs_mosaic_streaming": (round(rate["tamis"] / rate["mosaic_streaming"], 3)
                                               if rate["mosaic_streaming"] else None)}
        result["workloads"][workload] = entry
    result["mosaic_streaming"] = ({"version": mosaic["version"], "python": args.streaming_python}
                                  if "error" not in mosaic else mosaic["error"])
    for key in ("ratio_vs_pyarrow", "ratio_vs_pyarrow_first_epoch", "ratio_vs_hf_datasets"):
        result[key] = min(w[key] for w in result["workloads"].values())
    mosaic_ratios = [w["ratio_vs_mosaic_streaming"] for w in result["workloads"].values()]
    result["ratio_vs_mosaic_streaming"] = None if None in mosaic_ratios else min(mosaic_ratios)
    return result


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--mosaic-worker":
        cfg = json.loads(sys.argv[2])
        print(json.dumps(mosaic_worker(cfg["info"], Path(cfg["work"]), cfg["rounds"])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED_POOL), help="JSONL.gz with id and text (default: web pool)")
    parser.add_argument("--copies", type=int, default=4, help="times the pool is repeated (distinct ids)")
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--work", default=str(REPO / "bench_out" / "loader"))
    parser.add_argument("--streaming-python", default=STREAMING_PYTHON)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "loader.json"))
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args()
    result = bench(args)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for workload, entry in result["workloads"].items():
            print(workload, json.dumps(entry["samples_per_s"]), "ratio vs pyarrow", entry["ratio_vs_pyarrow"])


if __name__ == "__main__":
    main()
