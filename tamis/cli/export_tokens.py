"""`tamis export tokens`: tokenize Parquet shards (a curate run, a mix) into token shards with a manifest."""

import argparse
import json
import time

HELP = "tokenize Parquet shards into Megatron/nanoGPT-style token shards (.bin/.idx) with a manifest"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("shards", nargs="+", metavar="SHARDS",
                        help="Parquet files, globs, or run directories (their shards, in manifest order)")
    parser.add_argument("--tokenizer", required=True, help="a local HF tokenizers tokenizer.json")
    parser.add_argument("--output", required=True, help="export folder; rerun into it to resume")
    parser.add_argument("--shard-tokens", type=int, default=1 << 28, help="tokens per shard (default 2^28)")
    parser.add_argument("--eod", help="end-of-document token (default: <|endoftext|>, </s>, ... or [SEP])")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--domain-column", default="domain", help="counted per domain when present")
    parser.add_argument("--batch-rows", type=int, default=1024, help="documents tokenized per batch")
    parser.add_argument("--fail-after-shards", type=int, help=argparse.SUPPRESS)  # crash tests


def run(args: argparse.Namespace) -> int:
    from tamis.io import token_shards

    start = time.perf_counter()
    inputs = token_shards.resolve_inputs(args.shards)
    found = token_shards.export_tokens(
        inputs, args.output, args.tokenizer, args.shard_tokens, eod=args.eod, text_column=args.text_column,
        domain_column=args.domain_column, batch_rows=args.batch_rows, fail_after_shards=args.fail_after_shards,
    )
    counts = found["counts"]
    summary = {"output": args.output, "inputs": len(inputs), "documents": counts["documents"],
               "tokens": counts["tokens"], "shards": counts["shards"], "dtype": found["dtype"],
               "eod_id": found["eod_id"], "tokenizer_sha256": found["tokenizer"]["sha256"],
               "seconds": round(time.perf_counter() - start, 3)}
    if counts["domains"]:
        summary["domains"] = {d: c["tokens"] for d, c in counts["domains"].items()}
    print(json.dumps(summary))
    return 0
