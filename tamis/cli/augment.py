"""`tamis augment CONFIG.yaml`: chunks of curated documents with their retrieved neighbours, as Parquet shards (Beam)."""

import argparse
import json
import time

from tamis.cli.pipeline_args import add_config_arguments, read_config

HELP = ("retrieval-augmented training data: chunk curated documents and store each chunk's top-k neighbours "
        "from a BM25, dense or hybrid index, excluding self, near-duplicates and contaminated documents (Beam)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "YAML: inputs (curate runs), output, retriever, chunking, neighbours, exclude, "
                         "shards, runner (see docs/augment.md)", "check the config, inputs and indexes, print the plan")


def run(args: argparse.Namespace) -> int:
    from tamis.pipelines import augment

    raw = read_config(args)
    cfg = augment.load_config(raw)
    if args.dry_run:
        pl = augment.plan(cfg)
        print(json.dumps({"input_shards": len(pl.parts), "finished_shards": len(pl.done),
                          "finished": pl.finished is not None, **pl.identity, "config": cfg.to_dict()}, indent=1))
        return 0
    start = time.perf_counter()
    found = augment.run(cfg)
    print(json.dumps({"output": cfg.output, "seconds": round(time.perf_counter() - start, 3), **found["counts"],
                      "shards": len(found["shards"])}))
    return 0
