"""`tamis index code`: build a per-repository code index (windows, symbol table, import graph) through Beam."""

import argparse
import json
import os
import shutil
import time

HELP = "build a code index (Beam) from repositories: directories, git repositories, archives or repo JSONL"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "repos", nargs="+",
        help="a directory, a git repository (PATH or PATH@COMMIT), a tar/zip archive, "
        "or a JSONL(.gz) of {repo, path, content} rows",
    )  # fmt: skip
    parser.add_argument("--output", required=True, help="index folder")
    parser.add_argument("--config", help="YAML with the index parameters (window, stride, analysis, ingest)")
    parser.add_argument("--window", type=int, help="override: lines per window")
    parser.add_argument("--stride", type=int, help="override: lines between window starts")
    parser.add_argument("--workers", type=int, default=1, help="local Beam workers (multi-processing when > 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index at --output")
    parser.add_argument("--dry-run", action="store_true", help="validate the config, list the repositories and stop")


def run(args: argparse.Namespace) -> int:
    from tamis.code.index import CodeIndexConfig
    from tamis.config import RunnerConfig
    from tamis.errors import ConfigError
    from tamis.io.side_files import read_yaml
    from tamis.pipelines import index_code
    from tamis.validation import parse

    raw = read_yaml(args.config, "Index config") if args.config else {}
    raw = raw.get("code_index", raw) if isinstance(raw.get("code_index"), dict) else raw
    for name in ("window", "stride"):
        if getattr(args, name) is not None:
            raw[name] = getattr(args, name)
    config = parse(CodeIndexConfig, raw, owner="code_index")
    plan = {"repos": args.repos, "output": args.output, "config": config.to_dict()}
    if args.dry_run:
        print(json.dumps(plan, indent=1))
        return 0
    if os.path.isdir(args.output) and os.listdir(args.output):
        if not args.overwrite:
            raise ConfigError(f"{args.output} is not empty.", hint="pass --overwrite to replace it, or pick a new folder")
        shutil.rmtree(args.output)
    start = time.perf_counter()
    found = index_code.run(args.repos, args.output, config, RunnerConfig(name="local", workers=args.workers))
    summary = {"output": args.output, "seconds": round(time.perf_counter() - start, 3)}
    summary["repos"] = [{k: r[k] for k in ("name", "files", "windows", "definitions", "skipped")} for r in found["repos"]]
    print(json.dumps(summary))
    return 0
