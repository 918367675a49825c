"""`tamis demo`: the curation spine on bundled web text, with a summary table at the end."""

import argparse
import json
import os
import shutil
from importlib import resources

import yaml

from tamis.errors import ConfigError
from tamis.io import run_dir

HELP = "curate the bundled demo data, then mix its sources into a small tokenized export; print both summaries"
DEMO = "tamis demo"


def demo_dir() -> str:
    return str(resources.files("tamis") / "data" / "demo")


def _clear_previous(output: str, fingerprint: str) -> None:
    """Start fresh over a finished demo run, resume an interrupted one, and never touch anything else.

    A demo run is recognized by its manifest (`made_by: tamis demo`) or, before the manifest exists, by
    progress markers that all carry the demo config's fingerprint.
    """
    if not os.path.exists(output) or (os.path.isdir(output) and not os.listdir(output)):
        return
    if os.path.isdir(output):
        manifest = os.path.join(output, "manifest.json")
        if os.path.exists(manifest):
            with open(manifest, encoding="utf-8") as f:
                if json.load(f).get("made_by") == DEMO:
                    shutil.rmtree(output)
                    return
        elif run_dir.markers_fingerprints(output) == {fingerprint}:
            return  # an interrupted demo run: curate resumes it
    raise ConfigError(
        f"{output} exists and is not a demo run; the demo only replaces its own runs.",
        hint="pass --output to a new folder, or remove that folder yourself",
    )


def _clear_stale_mix(folder: str, curated: dict) -> None:
    """The demo's mix lives inside its run; when the run was remade (a resumed run writes a new manifest), the
    mix made from the old one is the demo's own stale output: remove it so it is remade from the run as it is."""
    path = os.path.join(folder, "manifest.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            inputs = json.load(f).get("inputs", [])
        if [i.get("manifest_sha256") for i in inputs] != [curated.get("manifest_sha256")]:
            shutil.rmtree(folder)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", default="tamis-demo-run", help="run directory (default: ./tamis-demo-run)")
    p.add_argument("--workers", type=int, default=1, help="local worker processes")


def run(args: argparse.Namespace) -> int:
    from tamis import config
    from tamis.cli.curate import print_summary
    from tamis.cli.mix import export_line
    from tamis.cli.mix import print_summary as print_mix
    from tamis.cli.report import print_report
    from tamis.pipelines import curate, mix

    folder = demo_dir()
    with open(os.path.join(folder, "config.yaml"), encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    for item in raw["inputs"]:
        item["path"] = os.path.join(folder, item["path"])
    cfg = config.parse(raw, {"output": os.path.abspath(args.output), "runner.workers": args.workers})
    _clear_previous(cfg.output, run_dir.fingerprint(cfg.to_dict()))
    manifest = curate.run(cfg, made_by=DEMO)
    print_summary(manifest, cfg.output)
    print_report(cfg.output)  # report: RUN/report.html (tamis.cli.report)
    _clear_stale_mix(os.path.join(cfg.output, "mix"), manifest)
    mix_cfg = mix.load_config(os.path.join(folder, "mix.yaml"), {
        "inputs": [cfg.output], "output": os.path.join(cfg.output, "mix"), "runner.workers": args.workers})
    print_mix(mix.run(mix_cfg), mix_cfg.output)
    print(f"tokens: {export_line(mix_cfg, mix)}")
    return 0
