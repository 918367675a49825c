"""`tamis eval neardup`: precision and recall of near-duplicate clusters against judged pairs.

A judged pair (`a`, `b`, `label` 1 or 0, as in `../shared/data/curation/neardup/`)
is predicted duplicate when the near-dup stage puts both ids in one cluster;
only judged pairs count. Throughput is text megabytes (UTF-8) over the
seconds the stage takes on the loaded documents (reading excluded).
"""

import argparse
import json
import time
from typing import Any

from tamis.errors import InputError
from tamis.io.side_files import jsonl_rows

HELP = "score near-duplicate detection (MinHash LSH) against judged document pairs"


def load_pairs(path: str) -> list[tuple[str, str, int]]:
    hint = "each line needs 'a', 'b' and 'label'"
    pairs = []
    for n, row in jsonl_rows(path, "Pairs file ", hint):
        try:
            pairs.append((str(row["a"]), str(row["b"]), int(row["label"])))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}:{n}: not a judged pair ({e})", hint=hint) from e
    return pairs


def load_config(path: str | None, overrides: dict[str, Any]):
    """NearDupConfig from a YAML file (its `near_dedup` section, or the fields at top level) plus overrides."""

    from tamis.config import NearDupConfig, read_yaml
    from tamis.filters.registry import from_dict

    raw: dict[str, Any] = {}
    if path:
        loaded = read_yaml(path)
        raw = dict(loaded.get("near_dedup", loaded))
    raw.pop("enabled", None)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(NearDupConfig, {"enabled": True, **raw}, owner="near_dedup")


def score(pairs: list[tuple[str, str, int]], dup_of: dict[str, str]) -> dict[str, float]:
    tp = fp = fn = 0
    for a, b, label in pairs:
        same = dup_of.get(a, a) == dup_of.get(b, b)
        tp += same and label == 1
        fp += same and label == 0
        fn += not same and label == 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def evaluate(docs_path: str, pairs_path: str, cfg) -> dict[str, Any]:
    import pyarrow.compute as pc

    from tamis.config import InputConfig
    from tamis.filters.neardup import lsh_params, near_duplicates
    from tamis.io.readers import read_file

    batches = [b for kind, b in read_file(docs_path, InputConfig(docs_path), 1000) if kind == "docs"]
    if not batches:
        raise InputError(f"No documents in {docs_path}.")
    pairs = load_pairs(pairs_path)
    n_bytes = sum(pc.sum(pc.binary_length(b.column("text").cast("binary"))).as_py() or 0 for b in batches)
    started = time.perf_counter()
    dup_of = near_duplicates(batches, cfg)
    seconds = time.perf_counter() - started
    lsh = lsh_params(cfg)
    return {
        **score(pairs, dup_of),
        "pairs": len(pairs),
        "docs": sum(b.num_rows for b in batches),
        "dropped": len(dup_of),
        "mb": n_bytes / 1e6,
        "seconds": seconds,
        "mb_per_s": n_bytes / 1e6 / seconds if seconds else 0.0,
        "threshold": cfg.threshold,
        "bands": lsh.bands,
        "rows": lsh.rows,
        "config": {k: v for k, v in vars(cfg).items() if k != "enabled"},
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--docs", required=True, help="documents, JSONL[.gz] or Parquet with id and text")
    parser.add_argument("--pairs", required=True, help="judged pairs, JSONL with a, b, label")
    parser.add_argument("--threshold", type=float, help="Jaccard threshold (default: the config's, 0.625)")
    parser.add_argument("--config", help="YAML with near_dedup settings (a curate config or the fields alone)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
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
