"""`tamis decontam --benchmark NAME=PATH --docs PATH`: which benchmark items leak into a corpus.

A report only: it reads the documents in one process and writes nothing;
`tamis curate` with `decontaminate.enabled` drops or cuts the documents.
"""

import argparse
import json
import time

HELP = "report the benchmark items that share an n-gram with a corpus (no output written)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--benchmark", action="append", required=True, metavar="NAME=PATH",
                   help="a benchmark's test items, JSONL(.gz) or Parquet (repeatable)")
    p.add_argument("--docs", action="append", required=True, metavar="PATH", help="documents to check (repeatable)")
    p.add_argument("--text-field", action="append", metavar="FIELD",
                   help="benchmark field(s) joined into an item's text (repeatable; default: text)")
    p.add_argument("--id-field", default="id", help="benchmark item id field")
    p.add_argument("--ngram", type=int, default=13, help="words per n-gram")
    p.add_argument("--digits", action="store_true", help="map every digit to 0 before matching")
    p.add_argument("--batch-size", type=int, default=1000, help="documents per batch")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def decontam_config(args: argparse.Namespace):
    from tamis.dedup.decontam import DecontamConfig
    from tamis.errors import ConfigError
    from tamis.validation import parse

    benchmarks = []
    for spec in args.benchmark:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--benchmark must be NAME=PATH. Got {spec!r} instead.", hint="e.g. gsm8k=test.jsonl.gz")
        benchmarks.append({"name": name, "path": path, "text_fields": args.text_field or ["text"],
                           "id_field": args.id_field})
    raw = {"enabled": True, "benchmarks": benchmarks, "ngram": args.ngram, "digits": args.digits}
    return parse(DecontamConfig, raw, owner="decontaminate")


def run(args: argparse.Namespace) -> int:
    from tamis.dedup.decontam import build_index, decontaminate, merge_stats, report
    from tamis.io.readers import InputConfig, expand, read_file
    from tamis.schema import empty_documents

    cfg = decontam_config(args)
    index = build_index(cfg)
    stats = decontaminate(empty_documents(), index, "drop", 0.0).stats  # every benchmark, even with no documents
    docs = errors = 0
    started = time.perf_counter()
    for pattern in args.docs:
        for path in expand(InputConfig(path=pattern)):
            for kind, batch in read_file(path, InputConfig(path=path), args.batch_size):
                if kind == "errors":
                    errors += batch.num_rows
                    continue
                docs += batch.num_rows
                stats = merge_stats(stats, decontaminate(batch, index, "drop", 0.0).stats)
    seconds = time.perf_counter() - started
    out = {"documents": docs, "unreadable": errors, "ngram": cfg.ngram, "index_bytes": index.nbytes,
           "seconds": round(seconds, 3), "benchmarks": report(stats)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{docs:,} documents checked ({errors:,} unreadable records) in {seconds:.1f} s, {cfg.ngram}-grams")
    for name, r in out["benchmarks"].items():
        print(f"  {name}: {r['items_leaked']} of {r['items']} items leaked, in {r['documents']} documents"
              + (f" ({r['items_short']} items too short to check)" if r["items_short"] else ""))
    return 0
