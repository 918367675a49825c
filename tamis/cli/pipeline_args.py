"""The flags of the pipelines configured by one YAML file (augment, code fim): the file, and the overrides."""

import argparse
from typing import Any


def add_config_arguments(parser: argparse.ArgumentParser, config_help: str, dry_run_help: str) -> None:
    parser.add_argument("config", help=config_help)
    parser.add_argument("--output", help="override: output folder")
    parser.add_argument("--workers", type=int, help="override: local Beam workers")
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)


def read_config(args: argparse.Namespace) -> dict[str, Any]:
    """The YAML config with the command line's overrides applied."""
    from tamis.io.side_files import read_yaml

    raw = read_yaml(args.config)
    if args.output:
        raw["output"] = args.output
    if args.workers:
        raw.setdefault("runner", {})["workers"] = args.workers
    return raw
