"""`tamis mix regmix eval`: Spearman correlation of a RegMix model's predictions with the losses of other runs."""

import argparse
import json

HELP = "evaluate a RegMix model on other runs: Spearman rho x 100 between predicted and measured loss"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODEL", help="model folder written by `tamis mix regmix fit`")
    p.add_argument("--mixtures", required=True, metavar="CSV")
    p.add_argument("--losses", required=True, metavar="CSV")
    p.add_argument("--target", required=True, metavar="COLUMN")
    p.add_argument("--index-column", default="index")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.mixers import regmix

    model = regmix.load(args.model)
    if args.target != model.manifest["target"]:
        print(f"tamis: warning: the model predicts {model.manifest['target']!r}, evaluated against {args.target!r}")
    runs = regmix.read_runs(args.mixtures, args.losses, args.target, features=model.features,
                            index_column=args.index_column)
    report = {"spearman": regmix.spearman(model.predict(runs.X), runs.y), "n": len(runs.index),
              "target": args.target, "regressor": model.manifest["regressor"]}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"Spearman {report['spearman']} over {report['n']} runs ({report['regressor']}, {args.target})")
    return 0
