"""`tamis diff RUN_A RUN_B`: what changed between two runs: config, counts, drops per reason, moved documents."""

import argparse
import json

HELP = "compare two runs: config changes, counts and drops per reason (A, B, delta), documents that moved"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_a", help="the first run directory (A)")
    p.add_argument("run_b", help="the second run directory (B)")
    p.add_argument("-n", type=int, default=5, help="example ids listed per movement (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def show(d: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"A: {d['a']}\nB: {d['b']}")
    if d["config"]:
        t = Table(title="config changes")
        for col in ("key", "A", "B"):
            t.add_column(col)
        for row in d["config"]:
            t.add_row(row["key"], json.dumps(row["a"]), json.dumps(row["b"]))
        console.print(t)
    else:
        console.print("config: no changes")
    for title, rows in (("documents", d["counts"]), ("dropped by stage", d["stages"]),
                        ("dropped by reason", d["reasons"])):
        t = Table(title=title)
        t.add_column("")
        for col in ("A", "B", "Δ"):
            t.add_column(col, justify="right")
        for r in rows:
            style = "" if r["delta"] == 0 else "bold"
            t.add_row(r["key"], f"{r['a']:,}", f"{r['b']:,}", f"{r['delta']:+,}", style=style)
        console.print(t)
    m = d["moved"]
    console.print(f"moved: {m['kept_to_dropped']:,} kept → dropped, {m['dropped_to_kept']:,} dropped → kept, "
                  f"{m['other_reason']:,} dropped for another reason; only in A {m['only_in_a']:,}, "
                  f"only in B {m['only_in_b']:,}")
    if d["moves"]:
        t = Table(title="documents that moved")
        for col in ("A", "B", "documents", "for example"):
            t.add_column(col, justify="right" if col == "documents" else "left", overflow="fold")
        for x in d["moves"]:
            t.add_row(x["a"], x["b"], f"{x['documents']:,}", ", ".join(x["examples"]))
        console.print(t)


def run(args: argparse.Namespace) -> int:
    from tamis.report import diff

    result = diff.compare(args.run_a, args.run_b, examples=args.n)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        show(result)
    return 0
