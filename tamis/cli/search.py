"""`tamis search`: query any index folder (BM25 today; the registry opens each index kind) from the command line."""

import argparse
import json
import sys

HELP = "search an index: top-k ids, scores and text snippets for one query or a JSONL file of queries"
MAX_K = 10_000  # the largest k accepted: a bound on output and memory, far above any top-k a person reads
BATCH = 1_000  # queries searched together from --queries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the query text (or use --queries)")
    parser.add_argument("--index", required=True, help="index folder (built by `tamis index bm25`)")
    parser.add_argument("--queries", help="JSONL file: one object per line with `id` (or `_id`) and `text`")
    parser.add_argument("-k", type=int, default=10, help=f"hits per query, 1 to {MAX_K} (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON: one object, or one line per query")
    parser.add_argument("--no-verify", action="store_true", help="skip checksum verification (trusted copies)")


def _read_queries(path: str) -> list[tuple[str, str]]:
    from tamis.errors import InputError
    from tamis.io.side_files import jsonl_rows

    hint = "each line is a JSON object with `id` (or `_id`) and a non-empty `text`"
    out = []
    for n, row in jsonl_rows(path, hint=hint):
        qid = row.get("id", row.get("_id"))
        text = row.get("text")
        if not isinstance(qid, (str, int)) or isinstance(qid, bool):
            raise InputError(f"{path}:{n}: line {n} has no `id` or `_id` (a string or an integer).", hint=hint)
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{path}:{n}: line {n} has no non-empty `text`.", hint=hint)
        out.append((str(qid), text))
    if not out:
        raise InputError(f"{path} holds no query.", hint=hint)
    return out


def run(args: argparse.Namespace) -> int:
    from tamis.errors import ConfigError
    from tamis.retrievers.registry import open_retriever
    from tamis.retrievers.results import search_results

    if not 1 <= args.k <= MAX_K:
        raise ConfigError(f"The '-k' option must be between 1 and {MAX_K}. Got {args.k} instead.")
    if (args.query is None) == (args.queries is None):
        raise ConfigError("Give either a query or --queries FILE, not both and not neither.")
    if args.query is not None and not args.query.strip():
        raise ConfigError("The query is empty.", hint='pass words to search for, e.g. tamis search --index DIR "x"')
    queries = [("", args.query)] if args.queries is None else _read_queries(args.queries)
    retriever = open_retriever(args.index, verify=not args.no_verify)
    for start in range(0, len(queries), BATCH):
        part = queries[start : start + BATCH]
        results, has_text = search_results(retriever, [text for _, text in part], args.k)
        for (qid, text), hits in zip(part, results, strict=True):
            _print(qid, text, hits, has_text, args)
    return 0


def _print(qid: str, text: str, hits: list[dict], has_text: bool, args: argparse.Namespace) -> None:
    if args.json:
        record = {"query": text, "k": args.k, "hits": hits, "text_stored": has_text}
        if args.queries is not None:
            record = {"id": qid, **record}
        print(json.dumps(record, ensure_ascii=False))
        return
    head = f"query {qid}: {text}" if args.queries is not None else f"query: {text}"
    print(head)
    if not hits:
        print("  (no document matches)")
    width = len(str(len(hits)))
    for rank, hit in enumerate(hits, 1):
        line = f"  {rank:>{width}}. {hit['id']}  {hit['score']:.4f}"
        print(f"{line}  {hit['snippet']}" if "snippet" in hit else line)
    if hits and not has_text:
        print("  (this index keeps no text, so no snippets: build it with --store-text to have them)")
    if args.queries is not None:
        print()
    sys.stdout.flush()
