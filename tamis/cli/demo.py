"""`tamis demo`: the curation spine on bundled web text, with a summary table at the end."""

import argparse
import os
import shutil
from importlib import resources

import yaml

from tamis.errors import ConfigError
from tamis.io import run_dir

HELP = "run the curation pipeline on the bundled demo data and print a summary"


def demo_dir() -> str:
    return str(resources.files("tamis") / "data" / "demo")


def _clear_previous(output: str) -> None:
    """The demo always starts fresh: remove an earlier demo run, refuse any other non-empty folder."""
    if not os.path.exists(output):
        return
    if not os.path.isdir(output) or (os.listdir(output) and not run_dir.looks_like_run(output)):
        raise ConfigError(f"{output} exists and is not a tamis run directory", hint="pass --output to a new folder")
    shutil.rmtree(output)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default="tamis-demo-run", help="run directory (default: ./tamis-demo-run)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")


def run(args: argparse.Namespace) -> int:
    from tamis import config
    from tamis.cli.curate import print_summary
    from tamis.pipelines import curate

    folder = demo_dir()
    with open(os.path.join(folder, "config.yaml"), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    for item in raw["inputs"]:
        item["path"] = os.path.join(folder, item["path"])
    cfg = config.parse(raw, {"output": os.path.abspath(args.output), "runner.workers": args.workers})
    _clear_previous(cfg.output)
    manifest = curate.run(cfg)
    print_summary(manifest, cfg.output)
    return 0
