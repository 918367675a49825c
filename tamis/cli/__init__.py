"""The `tamis` command. Each subcommand is one module of this package: it parses, calls one library function, prints.

A command module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`
and keeps heavy imports inside `run`, so `tamis --help` stays fast. Adding a
command is one module here and one line in COMMANDS. Nothing in tamis imports this package.
"""

import argparse
import importlib
import logging
import sys

from tamis import __version__
from tamis.errors import TamisError

# "group command" or "command" -> module
COMMANDS = {
    "curate": "tamis.cli.curate",
    "decontam": "tamis.cli.decontam",
    "demo": "tamis.cli.demo",
    "eval extraction": "tamis.cli.eval_extraction",
    "eval neardup": "tamis.cli.eval_neardup",
    "eval quality": "tamis.cli.eval_quality",
    "eval retrieval": "tamis.cli.eval_retrieval",
    "index bm25": "tamis.cli.index_bm25",
    "quality betr": "tamis.cli.quality_betr",
    "quality train": "tamis.cli.quality_train",
    "search": "tamis.cli.search",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tamis", description="Curate, mix and index pretraining corpora.")
    parser.add_argument("--version", action="version", version=f"tamis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    top = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        *group, leaf = name.split()
        subs = top
        if group:
            if group[0] not in groups:
                gp = top.add_parser(group[0], help=f"{group[0]} commands")
                groups[group[0]] = gp.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
            subs = groups[group[0]]
        p = subs.add_parser(leaf, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("apache_beam", "absl", "urllib3", "trafilatura", "htmldate", "sentence_transformers", "faiss"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if args.debug else logging.WARNING)
    try:
        return int(args._run(args) or 0)
    except TamisError as e:
        if args.debug:
            raise
        print(f"tamis: error: {e}", file=sys.stderr)
        if e.hint:
            print(f"tamis: hint: {e.hint}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tamis: interrupted", file=sys.stderr)
        return 130

