"""`tamis serve --index DIR ...`: the HTTP retrieval service (FastAPI on uvicorn) over built indexes."""

import argparse

HELP = ("serve BM25, dense, hybrid and code-context retrieval over HTTP (127.0.0.1 by default; any other address "
        "needs a bearer token from --token-file or TAMIS_SERVE_TOKEN)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", action="append", required=True, metavar="DIR",
                        help="an index folder (tamis index bm25|dense|code); repeat to serve several, picked per "
                             "request by folder name")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    parser.add_argument("--token-file", help="file holding the bearer token (else TAMIS_SERVE_TOKEN); required for "
                                             "any non-loopback --host")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="dense: query encoder device")
    parser.add_argument("--config", help="YAML with `limits:` and `hybrid:` mappings (see docs/serve.md)")
    parser.add_argument("--max-inflight", type=int, help="override limits.max_inflight (429 above it)")
    parser.add_argument("--threads", type=int, help="override limits.threads (searches computed at once)")


def run(args: argparse.Namespace) -> int:
    from tamis.io.side_files import read_yaml
    from tamis.serve import server
    from tamis.validation import parse

    raw = read_yaml(args.config) if args.config else {}
    limits = dict(raw.get("limits") or {})
    for name in ("max_inflight", "threads"):
        if getattr(args, name) is not None:
            limits[name] = getattr(args, name)
    cfg = parse(server.ServeConfig, {**raw, "indexes": args.index, "host": args.host, "port": args.port,
                              "token_file": args.token_file, "device": args.device, "limits": limits}, owner="serve")
    server.run(cfg)
    return 0
