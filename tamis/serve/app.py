"""The HTTP API: search, code context, health, metrics and the OpenAPI schema, over a Catalog of loaded indexes.

    POST /v1/search         {"query": str | "queries": [str], "k", "retriever", "index", "filter"} -> {"hits": ...}
    POST /v1/code-context   {"path", "line", "budget", "repo", "prefix", "index"} -> the context and its snippets
    GET  /v1/indexes        what is served, the retrievers and the limits
    GET  /healthz           {"status": "ok"} (no token needed)
    GET  /metrics           Prometheus text
    GET  /openapi.json      the schema, with every limit in it

Searches run on their index's own thread (tamis.serve.indexes), code context in
worker threads (at most `threads` at once), so the event loop keeps accepting,
refusing and timing requests while one computes. Errors are
JSON `{"error": one line, "detail": ...}`: 422 for a body that breaks its model
(with the first problem in the shape of tamis.validation's messages), 400 for
a request the served indexes cannot answer as asked, 404 for an unknown index,
repository or file, 401/413/429 from tamis.serve.guard; a 500 is a bug.
"""

import asyncio
import functools
import logging
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from tamis import __version__
from tamis.errors import ConfigError, InputError
from tamis.serve.guard import Guard
from tamis.serve.indexes import Catalog, RequestError
from tamis.serve.metrics import Metrics
from tamis.serve.models import ErrorResponse, Limits, SearchResponse, request_models

log = logging.getLogger(__name__)


def _error(status: int, message: str, detail: Any = None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict"}


def _validation_line(errors: list[dict]) -> str:
    """The most telling problem of a request body, in one line: a broken limit before a wrong type (a union
    field reports a type error per alternative), with the field's dotted path (`queries.3`)."""
    err = sorted(errors, key=lambda e: str(e.get("type", "")).endswith("_type"))[0]
    loc = [str(p) for p in err.get("loc", ()) if p != "body" and str(p) not in _TYPE_TAGS and "[" not in str(p)]
    where = ".".join(loc)
    kind, msg = err.get("type", ""), err.get("msg", "is invalid")
    if kind == "missing":
        return f"The request is missing its required field {where!r}."
    if kind == "extra_forbidden":
        return f"The request has no field {where!r}."
    if not where:
        return f"The request body must be a JSON object ({msg})."
    what = "must be" + msg[len("Input should be"):] if msg.startswith("Input should be") else msg[:1].lower() + msg[1:]
    given = repr(err.get("input"))
    given = given if len(given) <= 80 else given[:77] + "..."
    return f"The {where!r} field {what}. Got {given} instead." if what.startswith("must") else \
        f"The {where!r} field is invalid: {what}. Got {given} instead."


_ERRORS = {400: ErrorResponse, 401: ErrorResponse, 404: ErrorResponse, 413: ErrorResponse, 422: ErrorResponse,
           429: ErrorResponse}


def create_app(catalog: Catalog, limits: Limits | None = None, token: str | None = None) -> Guard:
    """The ASGI app: the API wrapped in the guard (metrics, token, concurrency, body size)."""
    limits = limits or Limits()
    metrics = Metrics()
    for s in catalog.indexes.values():
        metrics.index_docs.labels(s.name, s.kind).set(s.docs)
    SearchRequest, CodeContextRequest = request_models(limits)
    api = FastAPI(title="tamis", version=__version__, docs_url=None, redoc_url=None,
                  description="Retrieval over tamis indexes (BM25, dense, hybrid) and cross-file code context.")
    threads: list[anyio.CapacityLimiter] = []  # made on first use, inside the event loop

    async def in_thread(fn, *args):
        if not threads:
            threads.append(anyio.CapacityLimiter(limits.threads))
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=threads[0])

    @api.exception_handler(RequestValidationError)
    async def invalid_body(request: Request, exc: RequestValidationError):
        errors = list(exc.errors())
        line = _validation_line(errors) if errors else "The request body is invalid."
        return _error(422, line, [{k: e.get(k) for k in ("type", "loc", "msg")} for e in errors[:10]])

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return _error(exc.status_code, str(exc.detail))

    @api.exception_handler(ConfigError)
    async def config_error(request: Request, exc: ConfigError):
        return _error(422, str(exc))

    @api.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError):
        return _error(exc.status, str(exc))

    @api.exception_handler(InputError)
    async def not_found(request: Request, exc: InputError):
        return _error(404, str(exc), exc.hint or None)

    @api.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        log.exception("internal error answering %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the service log")

    @api.post("/v1/search", response_model=None, responses={200: {"model": SearchResponse}, **_responses()})
    async def search(body: SearchRequest) -> JSONResponse:  # type: ignore[valid-type]
        """Top-k hits per query; `hits` is one list for `query`, a list of lists for `queries`."""
        name, kind, fn, runner = catalog.searcher(body.retriever, body.index)
        queries = body.texts()
        ids, scores = await asyncio.wrap_future(runner.submit(fn, queries, body.k, body.where()))
        metrics.queries.labels(kind).inc(len(queries))
        hits = [[{"id": i, "score": float(s)} for i, s in zip(qi, qs.tolist(), strict=True)]
                for qi, qs in zip(ids, scores, strict=True)]
        return JSONResponse({"hits": hits[0] if body.query is not None else hits})

    @api.post("/v1/code-context", response_model=None, responses=_responses())
    async def code_context(body: CodeContextRequest) -> JSONResponse:  # type: ignore[valid-type]
        """Snippets from the other files of the repository for a cursor before `line` of `path`, within `budget` tokens.

        `path` is a key of the code index (a file of the indexed repository, or REPO/PATH); nothing is read from disk.
        """
        from tamis.code.context import code_context as context_for

        served = catalog.code_index(body.index)
        found = await in_thread(context_for, served.handle, body.path, body.line, body.budget, body.repo, body.prefix)
        return JSONResponse(found.to_dict())

    @api.get("/v1/indexes")
    async def indexes() -> dict:
        """The served indexes (name, kind, documents, filter fields), the retrievers and the limits."""
        return {**catalog.describe(), "limits": limits.to_dict()}

    @api.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @api.get("/metrics", response_class=Response)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app = Guard(api, limits, metrics, token)
    app.api, app.catalog = api, catalog  # for tests and tools
    return app


def _responses() -> dict:
    return {code: {"model": model} for code, model in _ERRORS.items()}
