"""`tamis serve`: answers, every limit (4xx with a clear message), the token, the refusal of open addresses, metrics."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from serve_fixtures import TOKEN, blocking_served, bm25_dir, code_dir

from tamis.errors import ConfigError, IntegrityError
from tamis.retrievers.bm25 import BM25Retriever
from tamis.serve import server
from tamis.serve.app import create_app
from tamis.serve.indexes import Catalog
from tamis.serve.models import Limits

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def indexes(shared_data, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("served")
    return {"web": bm25_dir(shared_data, root), "code": code_dir(root)}


@pytest.fixture(scope="module")
def catalog(indexes) -> Catalog:
    return Catalog.open([str(indexes["web"]), str(indexes["code"])])


@pytest.fixture(scope="module")
def client(catalog) -> TestClient:
    return TestClient(create_app(catalog))


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and "\n" not in body["error"]
    return body["error"]


# --- answers ----------------------------------------------------------------------------------------------------


def test_search_answers_what_the_retriever_answers(client, indexes):
    local = BM25Retriever.open(str(indexes["web"]))
    queries = ["apache license", "thrift transport protocol", "police bridge"]
    one = client.post("/v1/search", json={"query": queries[0], "k": 5}).json()
    assert set(one) == {"hits"} and [h["id"] for h in one["hits"]] == local.search(queries[:1], 5)[0][0]
    batch = client.post("/v1/search", json={"queries": queries, "k": 4}).json()["hits"]
    ids, scores = local.search(queries, 4)
    assert [[h["id"] for h in hits] for hits in batch] == ids
    assert [h["score"] for hits in batch for h in hits] == pytest.approx([v for s in scores for v in s.tolist()])
    assert client.post("/v1/search", json={"query": "the of and", "k": 3}).json() == {"hits": []}


def test_the_index_field_picks_a_served_index_by_folder_name(client):
    assert client.post("/v1/search", json={"query": "license", "k": 2, "index": "web"}).status_code == 200
    assert "No index named 'nope'" in error_of(client.post("/v1/search", json={"query": "x", "index": "nope"}), 404)
    assert "code index" in error_of(client.post("/v1/search", json={"query": "x", "index": "code"}), 400)
    assert "No dense index" in error_of(client.post("/v1/search", json={"query": "x", "retriever": "dense"}), 400)
    assert "hybrid" in error_of(client.post("/v1/search", json={"query": "x", "retriever": "hybrid"}), 400)


def test_filter_keeps_documents_whose_field_matches(client):
    def ids(**extra):
        return [h["id"] for h in client.post("/v1/search", json={"query": "data", "k": 50, **extra}).json()["hits"]]

    code, web, every = ids(filter={"source": "code"}), ids(filter={"source": ["web"]}), ids()
    assert code and web and len(code) + len(web) == len(every)
    assert all(i.startswith("thrift:") for i in code) and not any(i.startswith("thrift:") for i in web)
    assert ids(filter={"source": ["web", "code"]}) == every
    assert "cannot filter on 'nope'" in error_of(client.post("/v1/search", json={"query": "x", "filter": {"nope": "1"}}),
                                                 400)


def test_code_context_answers_from_the_code_index(client):
    found = client.post("/v1/code-context", json={"path": "app/main.py", "line": 4, "budget": 512}).json()
    assert found["snippets"] and found["tokens"] <= 512 and "pkg/" in found["text"]
    with_prefix = client.post("/v1/code-context", json={"path": "new.py", "line": 2, "prefix": "from pkg import Circle\n"})
    assert with_prefix.status_code == 200
    assert "repository" in error_of(client.post("/v1/code-context", json={"path": "a.py", "line": 1, "repo": "nope"}), 404)


def test_no_file_path_is_ever_read_from_a_request(client, tmp_path):
    secret = tmp_path / "secret.py"
    secret.write_text("PASSWORD = 'hunter2'\n")
    for path in (str(secret), "../../../etc/passwd", "/etc/passwd"):
        r = client.post("/v1/code-context", json={"path": path, "line": 2})
        assert r.status_code == 404 and "hunter2" not in r.text
    r = client.post("/v1/code-context", json={"path": "app/main.py", "line": 2, "index": str(tmp_path)})
    assert "No index named" in error_of(r, 404)


def test_health_indexes_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    found = client.get("/v1/indexes").json()
    assert {i["name"]: i["kind"] for i in found["indexes"]} == {"web": "bm25", "code": "code"}
    assert "source" in found["indexes"][0]["filter_fields"] and found["limits"]["max_k"] == 1000
    schema = client.get("/openapi.json").json()
    search = schema["components"]["schemas"]["SearchRequest"]["properties"]
    assert search["k"]["maximum"] == 1000
    assert {"/v1/search", "/v1/code-context", "/healthz", "/metrics"} <= set(schema["paths"])
    assert {"413", "422", "429"} <= set(schema["paths"]["/v1/search"]["post"]["responses"])


# --- limits ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, field", [
    ({"query": "x", "k": 1001}, "'k'"),
    ({"query": "x", "k": 0}, "'k'"),
    ({"query": "x", "k": True}, "'k'"),
    ({"query": "x", "k": "5"}, "'k'"),
    ({"queries": ["x"] * 257, "k": 1}, "'queries'"),
    ({"queries": [], "k": 1}, "'queries'"),
    ({"query": "x" * 8193}, "'query'"),
    ({"queries": ["ok", "x" * 8193]}, "'queries"),
    ({"query": ""}, "'query'"),
    ({"query": "x", "filter": {f"f{i}": "v" for i in range(17)}}, "'filter'"),
    ({"query": "x", "filter": {"source": ["v"] * 1025}}, "'filter"),
    ({"query": "x", "retriever": "sparse"}, "'retriever'"),
    ({"query": "x", "index": "i" * 257}, "'index'"),
    ({"query": "x", "queries": ["y"]}, "exactly one of 'query'"),
    ({"k": 3}, "exactly one of 'query'"),
    ({"query": "x", "path": "/etc/passwd"}, "no field 'path'"),
    ({"query": 7}, "'query'"),
])  # fmt: skip
def test_every_over_limit_or_malformed_search_is_a_422_naming_the_field(client, body, field):
    assert field in error_of(client.post("/v1/search", json=body), 422)


def test_limits_are_inclusive(client):
    assert client.post("/v1/search", json={"query": "x" * 8192, "k": 1000}).status_code == 200
    assert len(client.post("/v1/search", json={"queries": ["license"] * 256, "k": 1}).json()["hits"]) == 256


@pytest.mark.parametrize("body, field", [
    ({"path": "a.py", "line": 0}, "'line'"),
    ({"path": "", "line": 1}, "'path'"),
    ({"path": "a.py", "line": 1, "budget": 32769}, "'budget'"),
    ({"path": "a.py", "line": 1, "budget": -1}, "'budget'"),
    ({"path": "p" * 4097, "line": 1}, "'path'"),
    ({"line": 1}, "'path'"),
])  # fmt: skip
def test_every_over_limit_code_context_is_a_422(client, body, field):
    assert field in error_of(client.post("/v1/code-context", json=body), 422)


def test_a_body_over_one_mib_is_a_413_whether_or_not_its_length_is_announced(client):
    big = json.dumps({"queries": ["word " * 1000] * 220}).encode()
    assert len(big) > 1 << 20
    assert "larger than 1048576 bytes" in error_of(client.post("/v1/search", content=big,
                                                               headers={"content-type": "application/json"}), 413)

    def chunked():  # no Content-Length: the guard counts the bytes as they arrive
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    assert error_of(client.post("/v1/search", content=chunked(), headers={"content-type": "application/json"}), 413)
    assert client.post("/v1/search", content=b"{not json", headers={"content-type": "application/json"}).status_code \
        in (400, 422)
    assert client.post("/v1/search", content=b"[" * 200_000, headers={"content-type": "application/json"}).status_code \
        in (400, 422)


def test_a_saturated_service_answers_429_with_retry_after_then_recovers():
    served, fake = blocking_served()
    app = create_app(Catalog.of([served]), Limits(max_inflight=2, threads=2, retry_after_s=3))
    with server.Background(app) as url:
        port = int(url.rsplit(":", 1)[1])
        results: list[int] = []

        def call():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/v1/search", body=json.dumps({"query": "x"}), headers={"content-type": "application/json"})
            results.append(conn.getresponse().status)

        workers = [threading.Thread(target=call) for _ in range(2)]
        for w in workers:
            w.start()
        assert fake.started.acquire(timeout=10)  # one searches; the other waits for the index's lock, in flight
        deadline = time.monotonic() + 10
        while app.inflight < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert app.inflight == 2
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/search", body=json.dumps({"query": "x"}), headers={"content-type": "application/json"})
        busy = conn.getresponse()
        assert busy.status == 429 and busy.getheader("retry-after") == "3"
        assert "busy" in json.loads(busy.read())["error"]
        conn.request("GET", "/healthz")  # health and metrics are never refused for being busy
        assert conn.getresponse().status == 200
        fake.release.set()
        for w in workers:
            w.join(timeout=30)
        assert results == [200, 200]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    assert 'tamis_requests_total{endpoint="/v1/search",method="POST",status="429"} 1.0' in text
    assert 'tamis_rejected_total{reason="busy"} 1.0' in text


def test_shutdown_lets_requests_in_flight_finish():
    served, fake = blocking_served()
    app = create_app(Catalog.of([served]))
    results: list[int] = []
    bg = server.Background(app)
    url = bg.__enter__()
    port = int(url.rsplit(":", 1)[1])

    def call():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/v1/search", body=json.dumps({"query": "x"}), headers={"content-type": "application/json"})
        results.append(conn.getresponse().status)

    worker = threading.Thread(target=call)
    worker.start()
    assert fake.started.acquire(timeout=10)
    bg.server.should_exit = True  # what SIGTERM does
    time.sleep(0.3)
    fake.release.set()
    worker.join(timeout=30)
    bg.thread.join(timeout=30)
    assert results == [200] and not bg.thread.is_alive()


# --- the token and the address ----------------------------------------------------------------------------------


def test_with_a_token_every_path_but_healthz_needs_it(catalog, monkeypatch):
    import tamis.serve.guard as guard

    compared = []
    real = guard.hmac.compare_digest
    monkeypatch.setattr(guard.hmac, "compare_digest", lambda a, b: compared.append(1) or real(a, b))
    c = TestClient(create_app(catalog, token=TOKEN))
    body = {"query": "license", "k": 2}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}):
        r = c.post("/v1/search", json=body, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), headers
    ok = {"Authorization": f"Bearer {TOKEN}"}
    assert c.post("/v1/search", json=body, headers=ok).status_code == 200
    assert compared, "the token must be compared with hmac.compare_digest"
    assert c.get("/healthz").status_code == 200
    for path in ("/metrics", "/openapi.json", "/v1/indexes"):
        assert c.get(path).status_code == 401 and c.get(path, headers=ok).status_code == 200


def test_addresses_and_tokens(tmp_path):
    assert all(server.is_loopback(h) for h in ("127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"))
    assert not any(server.is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.org", "192.168.1.2"))
    with pytest.raises(ConfigError, match="refusing to listen on 0.0.0.0"):
        server.check_host("0.0.0.0", None)
    server.check_host("0.0.0.0", TOKEN)
    server.check_host("127.0.0.1", None)
    assert server.load_token(None, {}) is None
    assert server.load_token(None, {server.TOKEN_ENV: f" {TOKEN}\n"}) == TOKEN
    f = tmp_path / "token"
    f.write_text(TOKEN + "\n")
    f.chmod(0o600)
    assert server.load_token(str(f), {server.TOKEN_ENV: "another-token-that-is-long"}) == TOKEN  # the file wins
    with pytest.raises(ConfigError, match="at least 16"):
        server.load_token(None, {server.TOKEN_ENV: "short"})
    with pytest.raises(ConfigError, match="Cannot read the token file"):
        server.load_token(str(tmp_path / "missing"), {})


def _tamis(*argv, env=None, timeout=60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k != server.TOKEN_ENV}
    return subprocess.run([sys.executable, "-m", "tamis", *map(str, argv)], cwd=REPO, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_serve_on_an_open_address_without_a_token_exits_at_once_with_one_line(indexes):
    started = time.perf_counter()
    done = _tamis("serve", "--index", indexes["web"], "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2 and time.perf_counter() - started < 20
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing to listen on 0.0.0.0" in lines[0] and "--token-file" in lines[0]
    assert _tamis("serve", "--index", indexes["web"], "--token", TOKEN).returncode == 2  # no such flag


def test_a_damaged_index_stops_the_service_at_start_up(indexes, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(indexes["web"], broken)
    target = next(broken.glob("shards/*/data.npy"))
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        Catalog.open([str(broken)])
    assert _tamis("serve", "--index", broken).returncode == 4
    with pytest.raises(ConfigError, match="the folder name 'web'"):
        Catalog.open([str(indexes["web"]), str(indexes["web"]) + "/"])


# --- metrics --------------------------------------------------------------------------------------------------


def test_metrics_count_requests_latency_and_errors(catalog):
    c = TestClient(create_app(catalog))
    c.post("/v1/search", json={"queries": ["license", "bridge"], "k": 2})
    c.post("/v1/search", json={"query": "x", "k": 5000})
    c.get("/no/such/path")
    text = c.get("/metrics").text
    assert 'tamis_requests_total{endpoint="/v1/search",method="POST",status="200"} 1.0' in text
    assert 'tamis_request_errors_total{endpoint="/v1/search",status="422"} 1.0' in text
    assert 'tamis_request_errors_total{endpoint="other",status="404"} 1.0' in text
    assert 'tamis_request_seconds_bucket{endpoint="/v1/search",le="0.1"}' in text
    assert 'tamis_queries_total{retriever="bm25"} 2.0' in text
    assert 'tamis_index_documents{index="web",kind="bm25"} 300.0' in text


# --- dense and hybrid ------------------------------------------------------------------------------------------


def test_dense_and_hybrid_over_the_same_documents(tmp_path):
    from dense_fixtures import embedder, tiny_corpus, tiny_queries

    from tamis.indexes import bm25, dense

    corpus = tiny_corpus()
    bm25.save(bm25.build(corpus), str(tmp_path / "sparse"))
    dense.build(corpus, str(tmp_path / "vectors"), dense.DenseConfig(device="cpu"), embedder=embedder())
    cat = Catalog.open([str(tmp_path / "sparse"), str(tmp_path / "vectors")], device="cpu")
    assert cat.retrievers() == ["bm25", "dense", "hybrid"]
    c = TestClient(create_app(cat))
    q = tiny_queries()[:2]
    fused = c.post("/v1/search", json={"queries": q, "k": 3}).json()["hits"]  # one pair served: hybrid by default
    assert fused == c.post("/v1/search", json={"queries": q, "k": 3, "retriever": "hybrid"}).json()["hits"]
    _, fn, _ = cat._pair(None)
    ids, scores = fn(q, 3, None)
    assert [[h["id"] for h in hits] for hits in fused] == ids
    vec = c.post("/v1/search", json={"queries": q, "k": 3, "retriever": "dense"}).json()["hits"]
    assert [[h["id"] for h in hits] for hits in vec] == cat.indexes["vectors"].handle.search(q, 3)[0]
    assert np.all(np.diff([h["score"] for h in vec[0]]) <= 0)
    assert "bm25 retriever only" in error_of(
        c.post("/v1/search", json={"query": q[0], "retriever": "dense", "filter": {"source": "x"}}), 400)


def test_the_service_runs_without_apache_beam(indexes):
    code = f"""
import sys
class NoBeam:
    def find_spec(self, name, path=None, target=None):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError("apache_beam is blocked")
sys.meta_path.insert(0, NoBeam())
from fastapi.testclient import TestClient
from tamis.serve.app import create_app
from tamis.serve.indexes import Catalog
from tamis.serve import server
c = TestClient(create_app(Catalog.open([{str(indexes['web'])!r}])))
assert c.post("/v1/search", json={{"query": "license", "k": 1}}).status_code == 200
assert not any(m.startswith("apache_beam") for m in sys.modules)
print("served")
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "served" in done.stdout, done.stderr[-2000:]


def test_each_index_searches_on_its_own_thread_one_search_at_a_time():
    slow, fake = blocking_served("slow")
    other, other_fake = blocking_served("other")
    cat = Catalog.of([slow, other])
    futures = [runner.submit(fn, ["q"], 1, None) for _, _, fn, runner in
               (cat.searcher(None, name) for name in ("slow", "slow", "other"))]
    assert fake.started.acquire(timeout=10) and other_fake.started.acquire(timeout=10)
    assert not fake.started.acquire(timeout=0.3)  # the second search of `slow` waits for the first
    fake.release.set()
    other_fake.release.set()
    assert [f.result(timeout=10)[0] for f in futures] == [[["a"]]] * 3
