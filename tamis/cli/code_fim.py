"""`tamis code fim CONFIG.yaml`: fill-in-the-middle samples with cross-file context, as Parquet shards (Beam)."""

import argparse
import json
import time

from tamis.cli.pipeline_args import add_config_arguments, read_config

HELP = "make FIM training samples with cross-file context from code files (Beam); resumes an interrupted run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, "YAML: inputs, output, fim, index, retriever, shards, runner",
                         "validate the config, list the inputs and stop")


def run(args: argparse.Namespace) -> int:
    from tamis.pipelines import code_fim
    from tamis.validation import parse

    raw = read_config(args)
    cfg = parse(code_fim.CodeFimConfig, raw, owner="code_fim")
    if args.dry_run:
        print(json.dumps({"inputs": [p for _, p, _ in code_fim.input_files(cfg)], "config": cfg.to_dict()}, indent=1))
        return 0
    start = time.perf_counter()
    found = code_fim.run(cfg)
    print(json.dumps({"output": cfg.output, "seconds": round(time.perf_counter() - start, 3), **found["counts"],
                      "repos": len(found["repos"]), "error_records": found["error_records"]}))
    return 0
