"""`tamis demo`: the curation spine on bundled web text, with a summary table at the end."""

import argparse
import os
from importlib import resources

import yaml

HELP = "run the curation pipeline on the bundled demo data and print a summary"


def demo_dir() -> str:
    return str(resources.files("tamis") / "data" / "demo")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default="tamis-demo-run", help="run directory (default: ./tamis-demo-run)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")


def run(args: argparse.Namespace) -> int:
    from tamis import config
    from tamis.pipelines import curate
    from tamis.pipelines.curate_cmd import print_summary

    folder = demo_dir()
    with open(os.path.join(folder, "config.yaml"), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    for item in raw["inputs"]:
        item["path"] = os.path.join(folder, item["path"])
    cfg = config.parse(raw, {"output": os.path.abspath(args.output), "runner.workers": args.workers})
    manifest = curate.run(cfg)
    print_summary(manifest, cfg.output)
    return 0
