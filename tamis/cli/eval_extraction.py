"""`tamis eval extraction`: token F1 of an HTML extractor on a ground-truth set (tamis.eval.extraction)."""

import argparse
import json

from tamis.io.html import DEFAULT, EXTRACTORS

HELP = "score an HTML→text extractor against ground-truth article text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", required=True, metavar="DIR", help="folder with ground_truth.jsonl and the HTML it names"
    )
    parser.add_argument("--extractor", default=DEFAULT, choices=sorted(EXTRACTORS), help=f"default: {DEFAULT}")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.eval.extraction import evaluate

    result = evaluate(args.set, args.extractor)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{'extractor':<20} {'pages':>5} {'F1':>6} {'P':>6} {'R':>6} {'pages/s':>8} {'empty':>5}")
    r = result
    print(
        f"{r['extractor']:<20} {r['pages']:>5} {r['f1']:>6.3f} {r['precision']:>6.3f} {r['recall']:>6.3f} "
        f"{r['pages_per_s']:>8} {r['empty']:>5}"
    )
    return 0
