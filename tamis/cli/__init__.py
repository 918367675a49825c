"""The `tamis` command. Each subcommand is one module of this package: it parses, calls one library function, prints.

A command module defines `HELP`, `add_arguments(parser)` and `run(args) -> int`
and keeps heavy imports inside `run`, so `tamis --help` stays fast. Adding a
command is one module here and one line in COMMANDS. Nothing in tamis imports this package.

A name may have several words (`mix regmix fit`): each leading word is a group.
A group that is also a command names its default in DEFAULT_SUBCOMMANDS, so
`tamis mix CONFIG.yaml` runs `tamis mix run CONFIG.yaml` while `tamis mix
regmix fit ...` still reaches its own command.
"""

import argparse
import importlib
import logging
import sys

from tamis import __version__
from tamis.errors import TamisError

# "group command" or "command" -> module
COMMANDS = {
    "augment": "tamis.cli.augment",
    "code context": "tamis.cli.code_context",
    "code fim": "tamis.cli.code_fim",
    "curate": "tamis.cli.curate",
    "decontam": "tamis.cli.decontam",
    "demo": "tamis.cli.demo",
    "diff": "tamis.cli.diff",
    "eval code-context": "tamis.cli.eval_code_context",
    "eval extraction": "tamis.cli.eval_extraction",
    "eval neardup": "tamis.cli.eval_neardup",
    "eval quality": "tamis.cli.eval_quality",
    "eval retrieval": "tamis.cli.eval_retrieval",
    "export tokens": "tamis.cli.export_tokens",
    "index bm25": "tamis.cli.index_bm25",
    "index code": "tamis.cli.index_code",
    "index dense": "tamis.cli.index_dense",
    "inspect": "tamis.cli.inspect",
    "mix run": "tamis.cli.mix",
    "mix regmix fit": "tamis.cli.mix_regmix_fit",
    "mix regmix eval": "tamis.cli.mix_regmix_eval",
    "mix regmix search": "tamis.cli.mix_regmix_search",
    "quality betr": "tamis.cli.quality_betr",
    "quality train": "tamis.cli.quality_train",
    "report": "tamis.cli.report",
    "search": "tamis.cli.search",
    "serve": "tamis.cli.serve",
    "verify": "tamis.cli.verify",
}


# group -> the subcommand it runs when the next argument is none of its subcommands
DEFAULT_SUBCOMMANDS = {"mix": "run"}
GROUP_HELP = {
    "mix": "mix curate runs into a training mixture: `tamis mix CONFIG.yaml` (same as `tamis mix run CONFIG.yaml`), "
    "and fit, evaluate and search RegMix mixture regressors (`tamis mix regmix ...`)",
    "mix regmix": "RegMix: regress validation loss on mixture weights, then search for the best mixture",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tamis", description="Curate, mix and index pretraining corpora.")
    parser.add_argument("--version", action="version", version=f"tamis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    groups: dict[str, argparse._SubParsersAction] = {
        "": parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    }
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        *path, leaf = name.split()
        for depth in range(1, len(path) + 1):
            group, parent = " ".join(path[:depth]), " ".join(path[: depth - 1])
            if group not in groups:
                text = GROUP_HELP.get(group, f"{group} commands")
                gp = groups[parent].add_parser(path[depth - 1], help=text, description=text)
                groups[group] = gp.add_subparsers(dest=f"{group.replace(' ', '_')}_command", required=True,
                                                  metavar="SUBCOMMAND")
        p = groups[" ".join(path)].add_parser(leaf, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def expand_default(argv: list[str]) -> list[str]:
    """`tamis mix CONFIG.yaml ...` -> `tamis mix run CONFIG.yaml ...`: insert a group's default subcommand
    when the argument after the group is neither one of its subcommands nor a help flag."""
    argv = list(argv)
    at = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    if at is None or argv[at] not in DEFAULT_SUBCOMMANDS:
        return argv
    group = argv[at]
    subcommands = {n.split()[1] for n in COMMANDS if len(n.split()) > 1 and n.split()[0] == group}
    following = argv[at + 1] if at + 1 < len(argv) else None
    if following not in subcommands and following not in ("-h", "--help"):
        argv.insert(at + 1, DEFAULT_SUBCOMMANDS[group])
    return argv


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(expand_default(sys.argv[1:] if argv is None else argv))
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

