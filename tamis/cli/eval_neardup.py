"""`tamis eval neardup`: near-dup clusters scored on judged pairs (tamis.eval.neardup)."""

import argparse
import json

HELP = "score near-duplicate detection (MinHash LSH) against judged document pairs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--docs", required=True, help="documents, JSONL[.gz] or Parquet with id and text")
    parser.add_argument("--pairs", required=True, help="judged pairs, JSONL with a, b, label")
    parser.add_argument("--threshold", type=float, help="Jaccard threshold (default: the config's, 0.625)")
    parser.add_argument("--config", help="YAML with near_dedup settings (a curate config or the fields alone)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.eval.neardup import evaluate, load_config

    cfg = load_config(args.config, {"threshold": args.threshold})
    result = evaluate(args.docs, args.pairs, cfg)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"P {result['precision']:.3f}  R {result['recall']:.3f}  F1 {result['f1']:.3f}  "
            f"({result['pairs']} pairs, {result['docs']} docs, {result['mb']:.1f} MB at {result['mb_per_s']:.1f} MB/s)"
        )
    return 0
