"""`tamis quality betr`: train a cheap benchmark-similarity classifier from an embedded sample (BETR)."""

import argparse
import json

HELP = "embed benchmarks and a document sample, train fastText on the most benchmark-like, report Spearman"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--benchmarks", required=True, action="append", metavar="B", help="benchmark JSONL/Parquet (repeatable)"
    )
    parser.add_argument("--docs", required=True, action="append", metavar="D", help="corpus JSONL/Parquet (repeatable)")
    parser.add_argument(
        "--out", required=True, metavar="MODEL", help="fastText model file; a manifest is written beside it"
    )
    parser.add_argument("--sample", type=int, default=3000, help="documents to embed (default 3000)")
    parser.add_argument("--top-k", type=int, default=10, help="benchmark neighbours in the mean (default 10)")
    parser.add_argument("--target", choices=["mean_topk", "max"], default="mean_topk", help="similarity to learn")
    parser.add_argument("--positive-fraction", type=float, default=0.3, help="share labeled positive (default 0.3)")
    parser.add_argument("--heldout-fraction", type=float, default=0.2, help="share held out (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scores-out", metavar="PARQUET", help="also save the sample's embedding scores here")
    parser.add_argument("--embedding-model", default="all-MiniLM-L6-v2", help="local sentence-transformers model")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _read(paths: list[str]) -> tuple[list[str], list[str], list[dict]]:
    from tamis.filters.fasttext_model import read_docs

    ids, texts, sources = [], [], []
    for path in paths:
        file_ids, file_texts, entry = read_docs(path)
        ids += file_ids
        texts += file_texts
        sources.append(entry)
    return ids, texts, sources


def run(args: argparse.Namespace) -> int:
    from tamis.embeddings import Embedder
    from tamis.filters.betr import BETRParams, run_betr

    params = BETRParams(
        sample=args.sample,
        top_k=args.top_k,
        target=args.target,
        positive_fraction=args.positive_fraction,
        heldout_fraction=args.heldout_fraction,
        seed=args.seed,
    )
    params.check()
    _, bench, bench_sources = _read(args.benchmarks)
    ids, texts, doc_sources = _read(args.docs)
    embedder = Embedder(args.embedding_model, device=args.device)
    report = run_betr(bench, ids, texts, embedder, args.out, params, bench_sources + doc_sources, args.scores_out)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"wrote {report['model']}: Spearman {report['spearman']} on {report['heldout']} held-out documents")
    return 0
