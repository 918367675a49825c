"""A client of `tamis serve` for the training stage: the standard library only, retries with exponential backoff.

`Client(url, token).search(queries, k)` returns what any tamis retriever
returns (per query, ids and a numpy array of scores), so it stands in for a
local retriever. Batches larger than `batch_size` go as several requests.

Retries: a 429 waits for its Retry-After (capped at `max_backoff`), a 5xx or
a connection error (refused, reset, timed out, a keep-alive connection the
server closed) waits backoff x 2^attempt seconds with jitter (x 0.5 to 1),
up to `retries` times; then ResourceError. Any other 4xx is the caller's
mistake and is raised at once, never retried: ConfigError with the service's
one-line message. Every request is a read, so retrying one is safe.

Connections are kept alive, one per thread (http.client; urllib would open
one per request), so a data-loader worker pays the TCP handshake once.
"""

import email.utils
import http.client
import json
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from tamis.errors import ConfigError, ResourceError
from tamis.retrievers.base import Hits

_RETRY_STATUS = (429, 500, 502, 503, 504)
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, socket.timeout, http.client.HTTPException, OSError)


class Client:
    """Search and code context over HTTP; thread-safe (each thread has its own connection)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        batch_size: int = 64,
        retriever: str | None = None,
        index: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        seed: int | None = None,
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"The service url must be http(s)://HOST[:PORT]. Got {url!r} instead.")
        if retries < 0 or backoff < 0 or batch_size < 1:
            raise ConfigError("Client needs retries >= 0, backoff >= 0 and batch_size >= 1.")
        self.scheme, self.host, self.port = parts.scheme, parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.token, self.timeout = token, timeout
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.batch_size, self.retriever, self.index = batch_size, retriever, index
        self._sleep, self._rng = sleep, random.Random(seed)
        self._local = threading.local()

    # --- the API -------------------------------------------------------------------------------------------------

    def search(self, queries: Sequence[str], k: int = 10, *, retriever: str | None = None, index: str | None = None,
               filter: dict[str, str | list[str]] | None = None) -> Hits:  # noqa: A002  (the service's field name)
        """Top-k ids and scores (descending) per query, like any tamis retriever."""
        ids: list[list[str]] = []
        scores: list[np.ndarray] = []
        body: dict[str, Any] = {"k": k}
        for name, value in (("retriever", retriever or self.retriever), ("index", index or self.index),
                            ("filter", filter)):
            if value is not None:
                body[name] = value
        for start in range(0, len(queries), self.batch_size):
            found = self.post("/v1/search", {**body, "queries": list(queries[start:start + self.batch_size])})
            for hits in found["hits"]:
                ids.append([h["id"] for h in hits])
                scores.append(np.asarray([h["score"] for h in hits], dtype=np.float64))
        return ids, scores

    def code_context(self, path: str, line: int, budget: int = 2048, *, repo: str | None = None,
                     prefix: str | None = None, index: str | None = None) -> dict[str, Any]:
        """{text, tokens, budget, snippets} for a cursor before 1-based `line` of `path`."""
        body = {"path": path, "line": line, "budget": budget}
        body.update({k: v for k, v in (("repo", repo), ("prefix", prefix), ("index", index)) if v is not None})
        return self.post("/v1/code-context", body)

    def indexes(self) -> dict[str, Any]:
        return self.get("/v1/indexes")

    def healthy(self) -> bool:
        try:
            return self._once("GET", "/healthz", None)[0] == 200
        except _CONNECTION_ERRORS:
            return False

    def get(self, path: str) -> Any:
        return self._request("GET", path, None)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self._request("POST", path, json.dumps(body).encode())

    # --- retries -------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None) -> Any:
        last = ""
        for attempt in range(self.retries + 1):
            try:
                status, headers, data = self._once(method, path, body)
            except _CONNECTION_ERRORS as e:
                self._drop()
                last, delay = f"{type(e).__name__}: {e}", self._backoff(attempt)
            else:
                if status < 400:
                    return json.loads(data)
                message = _message(data, status)
                if status not in _RETRY_STATUS:
                    hint = "send the service's token (Client(url, token=...))" if status in (401, 403) else ""
                    raise ConfigError(f"{method} {path} was refused with {status}: {message}", hint=hint)
                last = f"{status}: {message}"
                after = _retry_after(headers.get("retry-after")) if status in (429, 503) else None
                delay = after if after is not None else self._backoff(attempt)
            if attempt == self.retries:
                break
            self._sleep(min(delay, self.max_backoff))
        raise ResourceError(f"{method} {self._base()}{path} failed after {self.retries + 1} attempts; last: {last}",
                            hint="is the service up and not overloaded? (GET /healthz, /metrics)")

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, self.backoff * 2**attempt) * (0.5 + 0.5 * self._rng.random())

    # --- one request on this thread's kept-alive connection ----------------------------------------------------

    def _base(self) -> str:
        return f"{self.scheme}://{self.host}{f':{self.port}' if self.port else ''}{self.prefix}"

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.scheme == "https":
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _once(self, method: str, path: str, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        conn = self._connection()
        conn.request(method, self.prefix + path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        found = {k.lower(): v for k, v in response.getheaders()}
        if found.get("connection", "").lower() == "close":
            self._drop()
        return response.status, found, data

    def close(self) -> None:
        self._drop()


def _message(data: bytes, status: int) -> str:
    try:
        found = json.loads(data)
        return str(found.get("error") or found.get("detail") or found)
    except (ValueError, AttributeError):
        return data[:200].decode("utf-8", "replace") or f"HTTP {status}"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
