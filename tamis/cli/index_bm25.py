"""`tamis index bm25`: build a BM25 index from curated shards or JSONL/Parquet files through Beam."""

import argparse
import json
import logging
import os
import time

from tamis.cli.index_args import add_input_and_runner_arguments
from tamis.io import atomic

HELP = "build a BM25 index (Beam) from curated shards or JSONL/Parquet files with a text field"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="input files or globs (local or gs://)")
    parser.add_argument("--output", required=True, help="index folder (local, or gs:// with --runner dataflow)")
    parser.add_argument("--config", help="YAML with the index parameters (analysis, variant, k1, b, ...)")
    parser.add_argument("--variant", help="override: lucene, robertson, atire, bm25l, bm25+ or okapi")
    parser.add_argument("--shard-docs", type=int, help="override: documents per index shard")
    add_input_and_runner_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="validate the config and list the inputs; with "
                        "--runner dataflow also build and check the job graph offline")


def run(args: argparse.Namespace) -> int:
    from tamis.config import RunnerConfig
    from tamis.errors import ConfigError
    from tamis.indexes import bm25
    from tamis.io import atomic, run_dir
    from tamis.io.readers import InputConfig, expand, reader_format
    from tamis.pipelines import index_bm25
    from tamis.pipelines.options import make

    raw = bm25.load_config(args.config).to_dict()
    if args.variant:
        raw["variant"] = args.variant
    if args.shard_docs:
        raw["shard_docs"] = args.shard_docs
    raw["store_text"] = raw["store_text"] or args.store_text
    config = bm25.config_from_dict(raw)
    input_cfg = InputConfig(path="", format=args.format, text_field=args.text_field, id_field=args.id_field)
    files = [f for pattern in args.inputs for f in expand(InputConfig(path=pattern, format=args.format))]
    for f in files:
        reader_format(f, input_cfg)  # an unknown format fails now, not mid-pipeline
    run_dir.verify_inputs(files)  # a curate run's shards are read only if the run verifies and lists them
    options = {k: v for k in ("project", "region", "temp_location") if (v := getattr(args, k))}
    runner = RunnerConfig(name=args.runner, workers=args.workers, options=options)
    make(runner)  # refuses a Dataflow run without project, region or a gs:// temp location
    plan = {"inputs": files, "output": args.output, "runner": args.runner, "config": config.to_dict()}
    if args.dry_run:
        print(json.dumps(plan, indent=1))
        if args.runner == "dataflow":
            index_bm25.run(files, args.output, config, input_cfg, runner, dry_run=True)
            print("dataflow job graph built and checked (dry run, nothing submitted)")
        return 0
    if index_bm25.unfinished_build(args.output, index_bm25.build_fingerprint(files, config, input_cfg)):
        logging.getLogger(__name__).info("%s holds an unfinished build of the same inputs: building again", args.output)
        atomic.remove_tree(args.output)
    elif _occupied(args.output):
        if not args.overwrite:
            raise ConfigError(
                f"{args.output} is not empty.", hint="pass --overwrite to replace it, or pick a new folder"
            )
        atomic.remove_tree(args.output)
    start = time.perf_counter()
    found = index_bm25.run(files, args.output, config, input_cfg, runner)
    summary = {"output": args.output, "seconds": round(time.perf_counter() - start, 3), **found["counts"]}
    summary["shards"] = len(found["shards"])
    summary["error_records"] = found["errors"]["records"]
    print(json.dumps(summary))
    return 0


def _occupied(path: str) -> bool:
    """A local folder with anything in it, or a remote prefix holding a finished index."""
    if atomic.is_remote(path):
        return atomic.exists(atomic.join(path, "manifest.json"))
    return os.path.isdir(path) and bool(os.listdir(path))

