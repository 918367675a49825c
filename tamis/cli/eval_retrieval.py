"""`tamis eval retrieval`: nDCG@10, recall@100 and QPS on a BEIR folder (tamis.eval.retrieval)."""

import argparse
import json
import os

HELP = "retrieval quality and speed on a BEIR-format folder (nDCG@10, recall@100, QPS)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--beir", required=True, help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    parser.add_argument("--split", default="test", help="qrels split (default: test)")
    parser.add_argument(
        "--retriever", default="bm25", help="bm25 (default), dense:SPEC (a FAISS factory string) or hybrid:SPEC"
    )
    parser.add_argument("--index-config", help="YAML with the index parameters (default: built-in defaults)")
    parser.add_argument("--index", help="index folder: loaded if finished there, else built and saved there")
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds of query timing (default: 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from tamis.errors import ConfigError
    from tamis.eval.retrieval import BUILDERS, evaluate, load_beir, resolve

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    build = resolve(args.retriever)
    if build is None:
        raise ConfigError(
            f"The '--retriever' option must be one of {list(BUILDERS)} or dense:SPEC, hybrid:SPEC. "
            f"Got {args.retriever!r} instead."
        )
    data = load_beir(args.beir, args.split)
    retriever, info = build(data.corpus, args.index, args.index_config)
    result = {"retriever": args.retriever, **evaluate(data, retriever, info, args.min_time)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>12}  {value:.4f}" if isinstance(value, float) else f"{key:>12}  {value}")
    return 0
