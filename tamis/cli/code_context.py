"""`tamis code context`: the cross-file context assembled for a cursor, from a code index."""

import argparse
import json

HELP = "print the cross-file context for a cursor (FILE, LINE) from a code index"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", required=True, help="code index folder (tamis index code)")
    parser.add_argument("--file", required=True, help="path of the file in its repository (or REPO/PATH)")
    parser.add_argument("--line", required=True, type=int, help="1-based line the cursor is on (context comes before it)")
    parser.add_argument("--repo", help="repository name, when the index holds several")
    parser.add_argument("--budget", type=int, default=2048, help="token budget of the context (default: 2048)")
    parser.add_argument("--prefix-file", help="read the text before the cursor from this file (an unsaved buffer)")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the snippets")


def run(args: argparse.Namespace) -> int:
    from tamis.code.context import code_context
    from tamis.code.store import load
    from tamis.errors import InputError

    prefix = None
    if args.prefix_file:
        try:
            with open(args.prefix_file, encoding="utf-8") as f:
                prefix = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"Cannot read --prefix-file {args.prefix_file}: {e}") from e
    context = code_context(load(args.index), args.file, args.line, args.budget, args.repo, prefix)
    if args.json:
        print(json.dumps(context.to_dict()))
    else:
        print(context.text, end="")
    return 0
