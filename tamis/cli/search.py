"""`tamis search`: query any index folder from the command line (the registry opens it by its kind).

One `--index` searches a BM25 or dense index; a BM25 and a dense index of the
same corpus together search both, fused (reciprocal rank fusion). With
`--code-index DIR --file PATH --line N` it prints the cross-file context of a
cursor instead (the same function as `tamis code context`).
"""

import argparse
import json
import sys

HELP = "search an index: top-k ids, scores and text snippets for one query or a JSONL file of queries"
MAX_K = 10_000  # the largest k accepted: a bound on output and memory, far above any top-k a person reads
BATCH = 1_000  # queries searched together from --queries


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="?", help="the query text (or use --queries)")
    parser.add_argument("--index", action="append", help="index folder (tamis index bm25 | dense); give a BM25 and "
                        "a dense index of one corpus to search both, fused")
    parser.add_argument("--fusion", choices=["rrf", "score"], default="rrf", help="with two indexes: how to fuse")
    parser.add_argument("--code-index", help="code index folder (tamis index code): print a cursor's context")
    parser.add_argument("--file", help="with --code-index: the cursor's file, as its path in the repository")
    parser.add_argument("--line", type=int, help="with --code-index: the 1-based line the cursor is on")
    parser.add_argument("--repo", help="with --code-index: the repository, when the index holds several")
    parser.add_argument("--budget", type=int, default=2048, help="with --code-index: token budget (default 2048)")
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
    from tamis.retrievers.results import search_results

    if args.code_index:
        return _code_context(args)
    if not args.index:
        raise ConfigError("Give --index DIR (or --code-index DIR --file PATH --line N).")
    if not 1 <= args.k <= MAX_K:
        raise ConfigError(f"The '-k' option must be between 1 and {MAX_K}. Got {args.k} instead.")
    if (args.query is None) == (args.queries is None):
        raise ConfigError("Give either a query or --queries FILE, not both and not neither.")
    if args.query is not None and not args.query.strip():
        raise ConfigError("The query is empty.", hint='pass words to search for, e.g. tamis search --index DIR "x"')
    queries = [("", args.query)] if args.queries is None else _read_queries(args.queries)
    retriever = _retriever(args.index, args.fusion, not args.no_verify)
    for start in range(0, len(queries), BATCH):
        part = queries[start : start + BATCH]
        results, has_text = search_results(retriever, [text for _, text in part], args.k)
        for (qid, text), hits in zip(part, results, strict=True):
            _print(qid, text, hits, has_text, args)
    return 0


def _retriever(roots: list[str], fusion: str, verify: bool):
    from tamis.errors import ConfigError
    from tamis.retrievers.hybrid import HybridConfig, HybridRetriever
    from tamis.retrievers.registry import index_kind, open_retriever

    if len(roots) == 1:
        return open_retriever(roots[0], verify=verify)
    kinds = {index_kind(r): r for r in roots}
    if len(roots) != 2 or set(kinds) != {"bm25-index", "dense-index"}:
        raise ConfigError("Two --index folders are fused only as one BM25 and one dense index of the same corpus.",
                          hint=f"got kinds {sorted(index_kind(r) for r in roots)}")
    sparse, dense = (open_retriever(kinds[k], verify=verify) for k in ("bm25-index", "dense-index"))
    return HybridRetriever(sparse, dense, HybridConfig(method=fusion))


def _code_context(args: argparse.Namespace) -> int:
    from tamis.cli import code_context
    from tamis.errors import ConfigError

    if args.file is None or args.line is None:
        raise ConfigError("--code-index needs --file PATH and --line N.")
    args.index, args.prefix_file = args.code_index, None
    return code_context.run(args)


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
