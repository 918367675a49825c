"""tamis.retrievers.Client: retries 429 (after Retry-After), 5xx and connection errors with backoff; never other 4xx."""

import http.server
import json
import socket
import threading
from email.utils import formatdate

import pytest
from serve_fixtures import TOKEN, blocking_served, bm25_dir

from tamis.errors import ConfigError, ResourceError
from tamis.retrievers import Client
from tamis.retrievers.bm25 import BM25Retriever
from tamis.serve import server
from tamis.serve.app import create_app
from tamis.serve.indexes import Catalog
from tamis.serve.models import Limits

OK = (200, {}, {"hits": [[{"id": "a", "score": 2.0}, {"id": "b", "score": 1.0}]]})


class Stub:
    """A loopback HTTP server answering from a script: (status, headers, JSON body), or "drop" to close the
    connection without an answer. It records every request and counts connections."""

    def __init__(self, script):
        self.script, self.requests, self.connections = list(script), [], 0
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                stub.connections += 1
                super().setup()

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                stub.requests.append((self.path, dict(self.headers), json.loads(body or b"null")))
                step = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status, headers, payload = step
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in {"content-type": "application/json", "content-length": str(len(data)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def client(url, sleeps, **kw) -> Client:
    return Client(url, token=TOKEN, sleep=sleeps.append, seed=0, **{"retries": 4, "backoff": 0.5, **kw})


def test_429_waits_for_retry_after_then_succeeds():
    sleeps = []
    with Stub([(429, {"retry-after": "2"}, {"error": "busy"}), OK]) as stub:
        ids, scores = client(stub.url, sleeps).search(["q"], k=2)
    assert ids == [["a", "b"]] and scores[0].tolist() == [2.0, 1.0]
    assert sleeps == [2.0] and len(stub.requests) == 2
    path, headers, body = stub.requests[0]
    assert path == "/v1/search" and headers["Authorization"] == f"Bearer {TOKEN}" and body == {"k": 2, "queries": ["q"]}


def test_retry_after_is_capped_and_read_as_an_http_date():
    sleeps = []
    with Stub([(429, {"retry-after": "120"}, {}), (503, {"retry-after": formatdate(usegmt=True)}, {}), OK]) as stub:
        client(stub.url, sleeps, max_backoff=30).search(["q"])
    assert sleeps[0] == 30 and 0 <= sleeps[1] <= 1


def test_5xx_is_retried_with_exponential_backoff_and_jitter():
    sleeps = []
    with Stub([(500, {}, {"error": "x"}), (502, {}, {}), (503, {}, {}), OK]) as stub:
        client(stub.url, sleeps).search(["q"])
    assert len(stub.requests) == 4 and len(sleeps) == 3
    for attempt, s in enumerate(sleeps):
        assert 0.5 * 2**attempt * 0.5 <= s <= 0.5 * 2**attempt


def test_giving_up_after_the_retries_is_a_resource_error():
    sleeps = []
    with Stub([(503, {}, {"error": "down"})]) as stub:
        with pytest.raises(ResourceError, match="after 5 attempts; last: 503: down"):
            client(stub.url, sleeps).search(["q"])
    assert len(stub.requests) == 5 and len(sleeps) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_other_4xx_are_never_retried(status):
    sleeps = []
    with Stub([(status, {}, {"error": "the 'k' field must be <= 1000"}), OK]) as stub:
        with pytest.raises(ConfigError, match=f"refused with {status}: the 'k' field") as e:
            client(stub.url, sleeps).search(["q"], k=5000)
    assert len(stub.requests) == 1 and sleeps == []
    assert ("token" in e.value.hint) == (status in (401, 403))


def test_connection_errors_are_retried():
    sleeps = []
    with Stub(["drop", "drop", OK]) as stub:
        assert client(stub.url, sleeps).search(["q"])[0] == [["a", "b"]]
    assert len(sleeps) == 2
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = []
    with pytest.raises(ResourceError, match="ConnectionRefusedError"):
        client(f"http://127.0.0.1:{port}", sleeps, retries=2).search(["q"])
    assert len(sleeps) == 2


def test_connections_are_kept_alive_and_batches_split():
    sleeps = []
    with Stub([(200, {}, {"hits": [[{"id": "a", "score": 1.0}]] * 2})]) as stub:
        c = client(stub.url, sleeps, batch_size=2)
        ids, _ = c.search(["q1", "q2", "q3", "q4"])
        c.search(["q5"])
    assert [r[2]["queries"] for r in stub.requests] == [["q1", "q2"], ["q3", "q4"], ["q5"]]
    assert stub.connections == 1 and len(ids) == 4


def test_bad_urls_are_refused():
    for url in ("localhost:8080", "ftp://x", "http://"):
        with pytest.raises(ConfigError):
            Client(url)


# --- against the real service ---------------------------------------------------------------------------------


def test_against_the_service_the_client_equals_the_local_retriever(shared_data, tmp_path):
    index = bm25_dir(shared_data, tmp_path)
    app = create_app(Catalog.open([str(index)]), token=TOKEN)
    queries = ["apache license", "thrift transport", "police bridge", "the of and", "compiler"]
    with server.Background(app) as url:
        c = Client(url, token=TOKEN, batch_size=2)
        assert c.healthy() and c.indexes()["indexes"][0]["name"] == "web"
        ids, scores = c.search(queries, k=7)
        with pytest.raises(ConfigError, match="refused with 401"):
            Client(url, token="wrong-token-0123456789").search(["x"])
        with pytest.raises(ConfigError, match="refused with 422"):
            c.search(["x"], k=1001)
    local_ids, local_scores = BM25Retriever.open(str(index)).search(queries, 7)
    assert ids == local_ids and all((a == pytest.approx(b)) for a, b in zip(scores, local_scores, strict=True))


def test_against_a_saturated_service_the_client_waits_and_gets_its_answer():
    served, fake = blocking_served()
    app = create_app(Catalog.of([served]), Limits(max_inflight=1, threads=1, retry_after_s=1))
    with server.Background(app) as url:
        first = threading.Thread(target=lambda: Client(url).search(["q"]))
        first.start()
        assert fake.started.acquire(timeout=10)
        sleeps = []

        def sleep(seconds):  # the service is busy: free it while "sleeping"
            sleeps.append(seconds)
            fake.release.set()
            first.join(timeout=10)

        assert Client(url, sleep=sleep).search(["q"])[0] == [["a"]]
        assert sleeps == [1.0]
