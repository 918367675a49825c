"""`tamis index dense`: embed curated shards or JSONL/Parquet files and build a FAISS index, through Beam."""

import argparse
import json
import os
import shutil
import time

from tamis.cli.index_args import add_input_and_runner_arguments

HELP = "build a dense (FAISS) index (Beam) from curated shards or JSONL/Parquet files with a text field"

# flag -> DenseConfig field; each overrides the --config YAML
_OVERRIDES = {
    "spec": "spec", "search_params": "search_params", "model": "model", "device": "device", "backend": "backend",
    "batch_size": "batch_size", "window": "window", "overlap": "overlap", "truncate_dim": "truncate_dim",
    "train_sample": "train_sample", "rescore": "rescore", "rescore_multiplier": "rescore_multiplier",
    "shard_docs": "shard_docs",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="input files or globs (local or gs://)")
    parser.add_argument("--output", required=True, help="index folder (local, or gs:// with --runner dataflow)")
    parser.add_argument("--config", help="YAML with the index parameters (a `dense:` mapping or its top level)")
    parser.add_argument("--spec", help="FAISS index-factory string: Flat, SQfp16, SQ8, PQ48, IVF1024,SQ8, HNSW32, BFlat")
    parser.add_argument("--search-params", help="FAISS ParameterSpace string stored as default, e.g. nprobe=16")
    parser.add_argument("--model", help="local sentence-transformers folder (default: the packaged all-MiniLM-L6-v2)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], help="where to embed and run FAISS")
    parser.add_argument("--backend", choices=["torch", "torch-bf16", "onnx", "onnx-int8"], help="encoder backend")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--window", type=int, help="tokens per chunk (default: the model's maximum)")
    parser.add_argument("--overlap", type=int, help="tokens shared by consecutive chunks (default 32)")
    parser.add_argument("--truncate-dim", type=int, help="Matryoshka: index only the first N dimensions")
    parser.add_argument("--train-sample", type=int, help="chunks the FAISS index trains on (default 100000)")
    parser.add_argument("--rescore", choices=["auto", "none", "float16", "int8"], help="rescore candidates from")
    parser.add_argument("--rescore-multiplier", type=int, help="candidates rescored = multiplier x depth (default 4)")
    parser.add_argument("--shard-docs", type=int, help="documents per shard (default 10000)")
    add_input_and_runner_arguments(parser)
    parser.add_argument("--resume", action="store_true", help="finish an interrupted build, keeping finished shards")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="check the config and the FAISS spec, print the plan (with Dataflow: build the job graph) and stop",
    )


def run(args: argparse.Namespace) -> int:
    from tamis.config import RunnerConfig
    from tamis.errors import ConfigError
    from tamis.indexes import dense
    from tamis.io import atomic, manifest
    from tamis.io.readers import InputConfig, expand
    from tamis.pipelines import index_dense
    from tamis.pipelines.options import make

    raw = dense.load_config(args.config).to_dict()
    for flag, field in _OVERRIDES.items():
        if getattr(args, flag) is not None:
            raw[field] = getattr(args, flag)
    raw["store_text"] = raw["store_text"] or args.store_text
    config = dense.config_from_dict(raw)
    input_cfg = InputConfig(path="", format=args.format, text_field=args.text_field, id_field=args.id_field)
    files = [f for pattern in args.inputs for f in expand(InputConfig(path=pattern, format=args.format))]
    options = {k: v for k in ("project", "region", "temp_location") if (v := getattr(args, k))}
    runner = RunnerConfig(name=args.runner, workers=args.workers, options=options)
    make(runner)  # refuses a Dataflow run without project, region or a gs:// temp location
    plan = {"inputs": files, "output": args.output, "runner": args.runner, "config": config.to_dict(),
            **_spec_plan(config)}
    if args.dry_run:
        if args.runner == "dataflow":
            index_dense.run(files, args.output, config, input_cfg, runner, dry_run=True)
            print("dataflow job graph built and checked (dry run, nothing submitted)")
        print(json.dumps(plan, indent=1))
        return 0
    if atomic.exists(atomic.join(args.output, manifest.MANIFEST)) or (_occupied(args.output) and not args.resume):
        if not args.overwrite:
            raise ConfigError(
                f"{args.output} is not empty.",
                hint="pass --overwrite to replace it, --resume to finish an interrupted build, or pick a new folder",
            )
        _clear(args.output)
    start = time.perf_counter()
    found = index_dense.run(files, args.output, config, input_cfg, runner)
    summary = {"output": args.output, "seconds": round(time.perf_counter() - start, 3), **found["counts"],
               "shards": len(found["shards"]), "error_records": found["errors"]["records"],
               "bytes_per_vector": found["index"]["code_bytes"], "built_on": found["index"]["built_on"]}
    print(json.dumps(summary))
    return 0


def _spec_plan(config) -> dict:
    """Build the empty FAISS index now, so a typo in the spec stops the run before any embedding."""
    from tamis.embeddings import model_dim, model_path
    from tamis.indexes import dense

    d_model = model_dim(model_path(config.model))
    d = config.truncate_dim or d_model
    index = dense.empty_index(config.spec, d)
    return {"dim": d, "bytes_per_vector": dense.code_bytes(index), "needs_training": not index.is_trained}


def _occupied(path: str) -> bool:
    """A local folder with anything in it, or a remote prefix holding a finished index."""
    from tamis.io import atomic

    if atomic.is_remote(path):
        return atomic.exists(atomic.join(path, "manifest.json"))
    return os.path.isdir(path) and bool(os.listdir(path))


def _clear(path: str) -> None:
    from tamis.io import atomic

    if atomic.is_remote(path):
        from apache_beam.io.filesystems import FileSystems

        FileSystems.delete([path.rstrip("/") + "/"])
    else:
        shutil.rmtree(path)
