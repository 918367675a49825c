"""`tamis inspect RUN_DIR`: kept or dropped documents of a run with their scores and why they were dropped."""

import argparse
import json

HELP = "show a run's dropped (or kept) documents with their scores and drop reasons"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run directory")
    p.add_argument("--reason", help="only documents dropped for this reason (see the report's drops table)")
    p.add_argument("--id", dest="doc_id", help="the document with this id, kept or dropped, and its duplicates")
    p.add_argument("--kept", action="store_true", help="kept documents (shards/) instead of dropped ones")
    p.add_argument("-n", type=int, default=5, help="documents to show (default 5)")
    p.add_argument("--chars", type=int, default=500, help="characters of text to show (0: all; default 500)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _value(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def show(found: dict, what: str) -> None:
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = Console()
    docs = found["documents"]
    console.print(f"{found['matched']:,} {what}; showing {len(docs)}")
    for d in docs:
        head = "kept" if d["status"] == "kept" else f"dropped: {d['reason']} ({d['stage']})"
        parts = [Text(f"{d['source']}:{d['offset']}", style="dim")]
        if d.get("dup_of"):
            parts.append(Text(f"duplicate of {d['dup_of']}", style="yellow"))
        if d["scores"]:
            table = Table(show_header=False, box=None, padding=(0, 1))
            table.add_column(style="cyan")
            table.add_column(justify="right")
            for k, v in d["scores"].items():
                table.add_row(k, _value(v))
            parts.append(table)
        cut = f" (first {len(d['text']):,} of {d['chars']:,} characters)" if d["chars"] > len(d["text"]) else ""
        parts.append(Text(d["text"] + ("…" if cut else "")))
        console.print(Panel(Group(*parts), title=f"[bold]{d['id']}[/] · {head}", subtitle=cut.strip() or None,
                            title_align="left", border_style="green" if d["status"] == "kept" else "red"))
    if found.get("duplicates"):
        console.print(f"dropped as its duplicates: {', '.join(found['duplicates'])}")


def run(args: argparse.Namespace) -> int:
    from tamis.errors import ConfigError
    from tamis.report import documents

    if args.n < 0 or args.chars < 0:
        raise ConfigError(f"-n and --chars must be >= 0. Got {args.n} and {args.chars} instead.")
    found = documents.find(args.run, reason=args.reason, doc_id=args.doc_id, kept=args.kept, n=args.n,
                           chars=args.chars)
    if args.json:
        print(json.dumps({"run": args.run, **found}, ensure_ascii=False))
        return 0
    what = ("documents with that id" if args.doc_id else "kept documents" if args.kept
            else f"documents dropped for {args.reason}" if args.reason else "dropped documents")
    show(found, what)
    return 0
