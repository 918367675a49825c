"""`tamis curate CONFIG`: run the curation pipeline locally or on Dataflow."""

import argparse
import json
import logging
import os

HELP = "run the curation pipeline described by a YAML config"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML config file")
    p.add_argument("--output", help="run directory (overrides config 'output')")
    p.add_argument("--workers", type=int, help="local worker processes (runner.workers)")
    p.add_argument("--batch-size", type=int, help="documents per record batch (runner.batch_size)")
    p.add_argument("--runner", choices=["local", "dataflow"], help="runner.name")
    p.add_argument("--project", help="Dataflow: Google Cloud project")
    p.add_argument("--region", help="Dataflow: region")
    p.add_argument("--temp-location", help="Dataflow: gs:// temp location")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the config and print the plan; with --runner dataflow also build and check the job graph")
    p.add_argument("--json", action="store_true", help="print the manifest's counts as JSON")


def overrides(args: argparse.Namespace) -> dict:
    out = {}
    for flag, dotted in (("output", "output"), ("workers", "runner.workers"), ("batch_size", "runner.batch_size"),
                         ("runner", "runner.name"), ("project", "runner.options.project"),
                         ("region", "runner.options.region"), ("temp_location", "runner.options.temp_location")):
        value = getattr(args, flag)
        if value is not None:
            out[dotted] = value
    return out


def print_plan(cfg, pl, stage_names: list[str]) -> None:
    print(f"output:  {cfg.output}")
    print(f"runner:  {cfg.runner.name} (workers={cfg.runner.workers}, batch_size={cfg.runner.batch_size})")
    print(f"stages:  {' → '.join(stage_names)}")
    print(f"inputs:  {len(pl.inputs)} files, {sum(f.size for f in pl.inputs):,} bytes, {len(pl.done)} already finished")
    for f in pl.inputs[:20]:
        print(f"  [{f.index}] {f.path} ({f.size:,} bytes){' done' if f.index in pl.done else ''}")
    if len(pl.inputs) > 20:
        print(f"  ... {len(pl.inputs) - 20} more")


def print_summary(manifest: dict, run: str) -> None:
    from rich.console import Console
    from rich.table import Table

    c = manifest["counts"]
    table = Table(title=f"tamis curate: {run}", show_header=True)
    table.add_column("", style="bold")
    table.add_column("documents", justify="right")
    table.add_row("read", f"{c['read']:,}")
    table.add_row("kept", f"{c['kept']:,}")
    table.add_row("dropped", f"{c['dropped']:,}")
    for reason, n in sorted(c["dropped_by_reason"].items(), key=lambda kv: -kv[1]):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("errors", f"{c['errors']:,}")
    if c.get("skipped_non_document"):
        table.add_row("not documents (skipped)", f"{c['skipped_non_document']:,}")
    table.add_row("shards written", f"{len(manifest['shards']):,}")
    Console().print(table)
    print(f"manifest: {os.path.join(run, 'manifest.json')}")


def run(args: argparse.Namespace) -> int:
    from tamis import config
    from tamis.cli.report import print_report
    from tamis.pipelines import curate

    cfg = config.load(args.config, overrides(args))
    if args.dry_run:
        pl = curate.plan(cfg, offline=cfg.runner.name == "dataflow")
        print_plan(cfg, pl, curate.stages(cfg))
        if cfg.runner.name == "dataflow":
            curate.run(cfg, dry_run=True)
            print("dataflow job graph built and checked (dry run, nothing submitted)")
        return 0
    manifest = curate.run(cfg)
    if args.json:
        print_report(cfg.output, echo=False)  # report: RUN/report.html (tamis.cli.report)
        print(json.dumps({"run": cfg.output, **manifest["counts"], "shards": len(manifest["shards"])}))
    else:
        print_summary(manifest, cfg.output)
        print_report(cfg.output)  # report: RUN/report.html (tamis.cli.report)
    return 0
