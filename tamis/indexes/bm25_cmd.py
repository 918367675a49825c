"""`tamis index bm25`: build a BM25 index from curated shards or JSONL/Parquet files through Beam."""

import argparse
import json
import os
import shutil
import time

HELP = "build a BM25 index (Beam) from curated shards or JSONL/Parquet files with a text field"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", help="input files or globs (local or gs://)")
    parser.add_argument("--output", required=True, help="index directory (local)")
    parser.add_argument("--config", help="YAML with the index parameters (analysis, variant, k1, b, ...)")
    parser.add_argument("--variant", help="override: lucene, robertson, atire, bm25l, bm25+ or okapi")
    parser.add_argument("--shard-docs", type=int, help="override: documents per index shard")
    parser.add_argument("--store-text", action="store_true", help="keep document text in the docstore")
    parser.add_argument("--format", default="auto", help="input format: auto, jsonl, parquet, text")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--id-field", default="id")
    parser.add_argument("--workers", type=int, default=1, help="local Beam workers (multi-processing when > 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index at --output")
    parser.add_argument("--dry-run", action="store_true", help="validate the config, list the inputs and stop")


def run(args: argparse.Namespace) -> int:
    from tamis.config import InputConfig, RunnerConfig
    from tamis.errors import ConfigError
    from tamis.filters.registry import check_value
    from tamis.indexes import bm25
    from tamis.io.readers import expand
    from tamis.pipelines import index_bm25

    config = bm25.load_config(args.config)
    if args.variant:
        config.variant = check_value("bm25", "variant", bm25.Variant, args.variant)
    if args.shard_docs:
        config.shard_docs = args.shard_docs
    config.store_text = config.store_text or args.store_text
    config.validate()
    input_cfg = InputConfig(path="", format=args.format, text_field=args.text_field, id_field=args.id_field)
    files = [f for pattern in args.inputs for f in expand(InputConfig(path=pattern, format=args.format))]
    plan = {"inputs": files, "output": args.output, "config": config.to_dict()}
    if args.dry_run:
        print(json.dumps(plan, indent=1))
        return 0
    if os.path.exists(args.output) and os.listdir(args.output):
        if not args.overwrite:
            raise ConfigError(
                f"{args.output} is not empty.", hint="pass --overwrite to replace it, or pick a new folder"
            )
        shutil.rmtree(args.output)
    start = time.perf_counter()
    found = index_bm25.run(files, args.output, config, input_cfg, RunnerConfig(workers=args.workers))
    summary = {"output": args.output, "seconds": round(time.perf_counter() - start, 3), **found["counts"]}
    summary["shards"] = len(found["shards"])
    summary["error_records"] = found["errors"]["records"]
    print(json.dumps(summary))
    return 0
