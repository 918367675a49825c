"""What every request passes before the API sees it: metrics, the bearer token, the concurrency bound, the body size.

One plain ASGI middleware, in this order, so the cheapest refusals come first
and every answer is counted:

1. time and count the request (tamis.serve.metrics), whatever its fate;
2. with a token configured, every path but /healthz needs
   `Authorization: Bearer <token>`, compared in constant time
   (hmac.compare_digest): 401 otherwise;
3. at most `max_inflight` requests under /v1/ at once: one more gets 429 with
   `Retry-After` at once, instead of queueing without bound;
4. a body over `max_body_bytes` gets 413: at once when Content-Length says
   so, else as soon as the bytes read pass the limit. The body is read here
   (at most the limit) and handed to the API whole.
"""

import hmac
import json
import time

from tamis.serve.metrics import Metrics
from tamis.serve.models import Limits

OPEN_PATHS = ("/healthz",)  # answered without a token: load balancers probe them
_BODY_METHODS = (b"POST", b"PUT", b"PATCH")


async def _send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    def __init__(self, app, limits: Limits, metrics: Metrics, token: str | None = None):
        self.app, self.limits, self.metrics = app, limits, metrics
        self._token = token.encode() if token else None
        self.inflight = 0  # the event loop is one thread: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def counted_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._checked(scope, receive, counted_send)
        finally:
            self.metrics.observe(scope.get("path", ""), scope.get("method", ""), status[0], time.perf_counter() - started)

    async def _checked(self, scope, receive, send):
        path = scope.get("path", "")
        if self._token is not None and path not in OPEN_PATHS and not self._authorized(scope):
            self.metrics.rejected.labels("unauthorized").inc()
            await _send_json(send, 401, {"error": "missing or wrong bearer token (send 'Authorization: Bearer TOKEN')"},
                             [(b"www-authenticate", b'Bearer realm="tamis"')])
            return
        if not path.startswith("/v1/"):
            await self._with_body(scope, receive, send)
            return
        if self.inflight >= self.limits.max_inflight:
            self.metrics.rejected.labels("busy").inc()
            retry = str(self.limits.retry_after_s)
            await _send_json(send, 429, {"error": f"the service is busy ({self.inflight} requests in flight, the limit is "
                                                  f"{self.limits.max_inflight}); retry after {retry} s"},
                             [(b"retry-after", retry.encode())])
            return
        self.inflight += 1
        self.metrics.inflight.inc()
        try:
            await self._with_body(scope, receive, send)
        finally:
            self.inflight -= 1
            self.metrics.inflight.dec()

    def _authorized(self, scope) -> bool:
        given = b""
        for name, value in scope.get("headers", []):
            if name.lower() == b"authorization":
                given = value
                break
        scheme, _, token = given.partition(b" ")
        ok = hmac.compare_digest(token.strip(), self._token)  # constant time whatever the scheme
        return ok and scheme.lower() == b"bearer"

    async def _with_body(self, scope, receive, send):
        if scope.get("method", "").encode() not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        too_large = {"error": f"the request body is larger than {limit} bytes"}
        for name, value in scope.get("headers", []):
            if name.lower() == b"content-length":
                if not value.strip().isdigit():
                    await _send_json(send, 400, {"error": "the Content-Length header is not a number"})
                    return
                if int(value) > limit:
                    self.metrics.rejected.labels("body_too_large").inc()
                    await _send_json(send, 413, too_large)
                    return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                self.metrics.rejected.labels("body_too_large").inc()
                await _send_json(send, 413, too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = [False]

        async def replay():
            if not sent[0]:
                sent[0] = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
