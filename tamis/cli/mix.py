"""`tamis mix CONFIG.yaml` (or `tamis mix run CONFIG.yaml`): mix curate runs into a blended training mixture."""

import argparse
import json
import os
import sys

HELP = "mix curate runs into a training mixture: domains, token budget, weights, epoch caps, blended shards"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="YAML mix config")
    p.add_argument("--output", help="mix run directory (overrides config 'output')")
    p.add_argument("--workers", type=int, help="local worker processes (runner.workers)")
    p.add_argument("--batch-size", type=int, help="documents per record batch (runner.batch_size)")
    p.add_argument("--dry-run", action="store_true", help="verify the inputs, check the config, print the plan")
    p.add_argument("--json", action="store_true", help="print the per-domain report as one JSON object")


def _overrides(args: argparse.Namespace) -> dict:
    pairs = (("output", "output"), ("workers", "runner.workers"), ("batch_size", "runner.batch_size"))
    return {dotted: getattr(args, flag) for flag, dotted in pairs if getattr(args, flag) is not None}


def print_plan(cfg, pl) -> None:
    print(f"output:    {cfg.output}")
    print(f"inputs:    {len(cfg.inputs)} curate runs, verified; {len(pl.parts)} shards, "
          f"{sum(i['documents'] for i in pl.inputs):,} documents")
    print(f"tokenizer: {json.dumps(pl.counter.identity)}")
    print(f"budget:    {cfg.budget_tokens:,} tokens, weights from {cfg.weights.kind}, max_epochs {cfg.max_epochs}")
    for d in cfg.domains:
        rules = {k: v for k, v in (("source", d.source), ("meta", d.meta), ("score", d.score)) if v is not None}
        print(f"  domain {d.name}: {json.dumps(rules) if rules else 'every document not taken above'}")


def share_table(manifest: dict, title: str):
    from rich.table import Table

    table = Table(title=title, show_header=True)
    for col in ("domain", "documents", "tokens", "weight", "target", "achieved", "error", "epochs", "capped"):
        table.add_column(col, justify="left" if col == "domain" else "right")
    for name, d in manifest["domains"].items():
        table.add_row(name, f"{d['documents']:,}", f"{d['tokens']:,}", f"{d['weight']:.4f}", f"{d['target_share']:.4%}",
                      f"{d['achieved_share']:.4%}", f"{d['share_error']:+.4%}", f"{d['epochs']:.3f}",
                      "yes" if d["capped"] else "")
    return table


def print_summary(manifest: dict, run: str) -> None:
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 120)  # a piped table keeps its columns
    console.print(share_table(manifest, f"tamis mix: {run}"))
    print(f"tokens: {manifest['achieved_tokens']:,} of a {manifest['budget_tokens']:,} budget "
          f"({manifest['samples']:,} samples, {manifest['repeated_samples']:,} repeats, "
          f"{len(manifest['shards'])} shards); unassigned documents: {manifest['unassigned_documents']:,}")
    moved = manifest["redistributed"]
    if moved["from"]:
        print(f"epoch caps: {json.dumps(moved['from'])} tokens short, given to {json.dumps(moved['to'])}")
    if manifest["budget_shortfall_tokens"]:
        print(f"budget shortfall: {manifest['budget_shortfall_tokens']:,} tokens (every domain is at its epoch cap)")
    print(f"manifest: {os.path.join(run, 'manifest.json')}")


def run(args: argparse.Namespace) -> int:
    from tamis.pipelines import mix

    cfg = mix.load_config(args.config, _overrides(args))
    if args.dry_run:
        print_plan(cfg, mix.plan(cfg))
        return 0
    manifest = mix.run(cfg)
    tokens = export_line(cfg, mix) if cfg.export.tokens else None
    if args.json:
        keys = ("budget_tokens", "achieved_tokens", "samples", "unassigned_documents", "budget_shortfall_tokens",
                "redistributed", "domains", "tokenizer")
        print(json.dumps({"run": cfg.output, **{k: manifest[k] for k in keys}, "shards": len(manifest["shards"]),
                          "tokens_export": tokens}))
    else:
        print_summary(manifest, cfg.output)
        if tokens:
            print(f"tokens: {tokens}")
    return 0


def export_line(cfg, mix) -> str:
    from tamis.io.token_shards import read_export

    c = read_export(mix.export_dir(cfg), verify=False)["counts"]
    return f"{mix.export_dir(cfg)} ({c['tokens']:,} tokens, {c['documents']:,} documents in {c['shards']} shards)"
