"""`tamis mix regmix search`: sample candidate mixtures, keep the best predicted, write weights for `tamis mix`."""

import argparse
import json

HELP = "search for the mixture a RegMix model predicts best and write it as a weights file the mix config reads"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="MODEL", help="model folder written by `tamis mix regmix fit`")
    p.add_argument("--out", required=True, metavar="WEIGHTS.yaml", help="weights file (`weights: {regmix: PATH}`)")
    p.add_argument("--prior", metavar="YAML",
                   help="domain -> token count or share (the token distribution); default: the mean training mixture")
    p.add_argument("--samples", type=int, default=100_000, help="candidate mixtures drawn (default 100000)")
    p.add_argument("--top-k", type=int, default=128, help="best candidates averaged (default 128)")
    p.add_argument("--concentration", type=float, default=1.0,
                   help="Dirichlet concentration = this x the prior (default 1, as the RegMix notebook)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--maximize", action="store_true", help="the target is better when larger (default: a loss)")
    p.add_argument("--strip-prefix", default="", metavar="P",
                   help="drop P from the feature names to get domain names (e.g. train_the_pile_)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.io.side_files import read_yaml
    from tamis.mixers import regmix

    model = regmix.load(args.model)
    prior = None
    if args.prior:
        prior = {f"{args.strip_prefix}{k}" if f"{args.strip_prefix}{k}" in model.features else k: v
                 for k, v in read_yaml(args.prior, what="Prior file").items()}
    result = regmix.search(model, prior, args.samples, args.top_k, args.concentration, args.seed, not args.maximize)
    weights = regmix.write_weights(args.out, result, model, args.strip_prefix)
    if args.json:
        print(json.dumps({"out": args.out, "weights": weights, "predicted": result["predicted"],
                          "predicted_prior": result["predicted_prior"]}))
    else:
        for name, w in sorted(weights.items(), key=lambda kv: -kv[1]):
            print(f"  {name:32s} {w:.4f}")
        print(f"wrote {args.out}: predicted {model.manifest['target']} {result['predicted']:.4f} "
              f"(the prior: {result['predicted_prior']:.4f})")
    return 0
