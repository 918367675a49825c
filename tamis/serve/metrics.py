"""Prometheus metrics of one service: requests, latency, errors, in-flight requests, queries answered.

Each app gets its own CollectorRegistry, so several apps in one process (tests)
never share or re-register counters. Endpoint labels are the service's own
routes; any other path counts as `other`, so a scanner cannot grow the label set.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ROUTES = ("/v1/search", "/v1/code-context", "/v1/indexes", "/healthz", "/metrics", "/openapi.json")
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def endpoint(path: str) -> str:
    return path if path in ROUTES else "other"


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("tamis_requests", "HTTP requests answered, by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=r)
        self.errors = Counter("tamis_request_errors", "HTTP requests answered with a 4xx or 5xx, by endpoint and status",
                              ["endpoint", "status"], registry=r)
        self.latency = Histogram("tamis_request_seconds", "Time from request to the end of the response, by endpoint",
                                 ["endpoint"], buckets=_BUCKETS, registry=r)
        self.inflight = Gauge("tamis_inflight_requests", "Requests under /v1/ being answered now", registry=r)
        self.rejected = Counter("tamis_rejected", "Requests refused before any work, by reason",
                                ["reason"], registry=r)
        self.queries = Counter("tamis_queries", "Queries answered, by retriever", ["retriever"], registry=r)
        self.index_docs = Gauge("tamis_index_documents", "Documents (code: files) of each served index",
                                ["index", "kind"], registry=r)

    def observe(self, path: str, method: str, status: int, seconds: float) -> None:
        name = endpoint(path)
        self.requests.labels(name, method, str(status)).inc()
        if status >= 400:
            self.errors.labels(name, str(status)).inc()
        self.latency.labels(name).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
