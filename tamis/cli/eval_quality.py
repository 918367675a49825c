"""`tamis eval quality`: AUC and accuracy of a quality classifier on labels (tamis.eval.quality)."""

import argparse
import json

HELP = "ROC AUC and accuracy of a quality classifier on documents with a quality_label"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model written by `tamis quality train` (a folder, or a fastText .bin)")
    parser.add_argument("--labeled", required=True, help="JSONL with text and quality_label (0/1)")
    parser.add_argument("--positive-label", default="hq", help="a fastText model's high-quality label (default hq)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.eval.quality import evaluate

    result = evaluate(args.model, args.labeled, args.positive_label)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"n={result['n']} auc={result['auc']:.4f} accuracy={result['accuracy']:.4f}")
    return 0
