"""`tamis mix regmix fit`: fit a regressor from proxy runs' mixture weights to one validation loss."""

import argparse
import json

HELP = "fit a RegMix regressor (mixture weights -> validation loss) and save it as a checksummed model folder"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mixtures", required=True, metavar="CSV", help="one run per row: an index column and the weights")
    p.add_argument("--losses", required=True, metavar="CSV", help="one run per row: the index column and the losses")
    p.add_argument("--target", required=True, metavar="COLUMN", help="the loss column to predict")
    p.add_argument("--out", required=True, metavar="MODEL", help="model folder (model file + manifest.json)")
    p.add_argument("--regressor", choices=["gp", "lightgbm"], default="gp",
                   help="gp: Gaussian process on log weights (default); lightgbm: the paper's regressor")
    p.add_argument("--params", default="{}", metavar="JSON", help='regressor parameters, e.g. \'{"eps": 0.003}\'')
    p.add_argument("--index-column", default="index", help="the column joining the two files (default: index)")
    p.add_argument("--cv", type=int, default=0, metavar="K",
                   help="also report K-fold out-of-fold Spearman on the fit runs (default: off)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis import validation
    from tamis.errors import ConfigError
    from tamis.io import atomic
    from tamis.mixers import regmix

    try:
        raw = json.loads(args.params)
    except ValueError as e:
        raise ConfigError(f"--params is not JSON: {e}") from e
    params = validation.parse(regmix.PARAMS[args.regressor], raw, owner=args.regressor)
    runs = regmix.read_runs(args.mixtures, args.losses, args.target, index_column=args.index_column)
    extra = {"data": {name: {"path": path, "sha256": atomic.sha256_file(path)}
                      for name, path in (("mixtures", args.mixtures), ("losses", args.losses))}}
    if args.cv:
        extra["cv"] = {"folds": args.cv, "spearman": regmix.cross_validate(runs.X, runs.y, args.regressor, params,
                                                                          args.cv)}
    model = regmix.fit(runs.X, runs.y, args.regressor, params)
    m = regmix.save(args.out, args.regressor, model, runs, params, extra)
    report = {"model": args.out, "regressor": args.regressor, "target": args.target, "runs": len(runs.index),
              "features": len(runs.features), **({"cv_spearman": extra["cv"]["spearman"]} if args.cv else {}),
              "manifest_sha256": m["manifest_sha256"]}
    if args.json:
        print(json.dumps(report))
    else:
        cv = f", {args.cv}-fold out-of-fold Spearman {extra['cv']['spearman']}" if args.cv else ""
        print(f"wrote {args.out}: {args.regressor} on {len(runs.index)} runs x {len(runs.features)} domains{cv}")
    return 0
