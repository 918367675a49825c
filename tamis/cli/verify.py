"""`tamis verify DIR`: check a run or index directory against its manifest, every file, and list what fails."""

import argparse
import json

HELP = "check every file of a run or index directory against its manifest (exit 4 and the failing paths if any)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="a curate run, an index, or any directory tamis wrote with a manifest.json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.code import fim, store
    from tamis.errors import IntegrityError
    from tamis.indexes import bm25, dense
    from tamis.io import run_dir, token_shards
    from tamis.io.verify import verify
    from tamis.mixers import dsir, mix_run, regmix

    readable = {k.KIND: k.FORMAT_VERSION for k in (run_dir, bm25, dense, dsir, mix_run, regmix, store, fim, token_shards)}
    report = verify(args.directory, readable)
    if args.json:
        print(json.dumps(report))
    else:
        for problem in report["problems"]:
            print(f"FAIL  {problem}")
    if report["problems"]:
        raise IntegrityError(
            f"{len(report['problems'])} problem(s) in {args.directory} ({report['kind']}, "
            f"{report['files']} files listed): {report['problems'][0]}",
            hint="a damaged run or index must be rebuilt (or its damaged inputs redone); nothing reads it meanwhile",
        )
    if not args.json:
        print(f"ok    {args.directory}: {report['kind']} format {report['format_version']}, {report['files']} files verified")
    return 0
