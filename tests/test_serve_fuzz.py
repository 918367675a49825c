"""Schemathesis against the service's own OpenAPI schema: valid and invalid requests to every operation, no 500s.

The app serves a real BM25 index and a code index, with a token that every generated request carries.
Each operation is fuzzed with schema-valid bodies (positive) and schema-breaking ones (negative). Checks:
no server error, only status codes and content types the schema documents, responses that match their
schemas, and (negative) every invalid request refused with a 4xx. schemathesis's list of refusals lacks
413, which is the right answer to a body over 1 MiB, so a 413 counts as refused when the body is that large.
`TAMIS_FUZZ_EXAMPLES=N` sets the examples per operation and mode (default 60).
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from serve_fixtures import TOKEN, bm25_dir, code_dir

from tamis.serve.app import create_app
from tamis.serve.indexes import Catalog
from tamis.serve.models import Limits

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = int(os.environ.get("TAMIS_FUZZ_EXAMPLES", "60"))
LIMITS = Limits(max_k=50, max_batch=8, max_query_chars=256, max_prefix_chars=4096)


@pytest.fixture(scope="module")
def api_schema(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    catalog = Catalog.open([str(bm25_dir(shared_data, root)), str(code_dir(root))])
    app = create_app(catalog, LIMITS, token=TOKEN)
    return schemathesis.openapi.from_asgi("/openapi.json", app, headers=AUTH)


def fuzz(schema, mode: GenerationMode) -> tuple[dict[str, dict[int, int]], list[str]]:
    """Per operation, how many answers of each status; and every failed check, one short line each."""
    statuses: dict[str, dict[int, int]] = {}
    failures: list[str] = []
    for result in schema.get_all_operations():
        op = result.ok()
        if mode == GenerationMode.NEGATIVE and op.method.upper() != "POST":
            continue  # a GET without parameters has no invalid form
        checks = CHECKS + ([negative_data_rejection] if mode == GenerationMode.NEGATIVE else [])

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call(headers=AUTH)
            label = case.operation.label
            found = statuses.setdefault(label, {})
            found[response.status_code] = found.get(response.status_code, 0) + 1
            for check in checks:  # noqa: B023
                if check is negative_data_rejection and response.status_code == 413:
                    assert len(response.request.body or b"") > LIMITS.max_body_bytes
                    continue
                try:
                    case.validate_response(response, checks=[check])
                except Exception as e:  # schemathesis raises a group of failures; keep one line of each
                    line = " ".join(str(e).split())[:300]
                    failures.append(f"{label} {response.status_code} {check.__name__}: {line}")

        run()
    return statuses, failures


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_a_server_error(api_schema, mode):
    statuses, failures = fuzz(api_schema, mode)
    print(mode.value, statuses)
    assert not failures, "\n".join(sorted(set(failures))[:20])
    assert {"POST /v1/search", "POST /v1/code-context"} <= set(statuses)
    assert all(s < 500 for found in statuses.values() for s in found), statuses
    if mode == GenerationMode.POSITIVE:
        assert 200 in statuses["POST /v1/search"] and 404 in statuses["POST /v1/code-context"]  # past validation
        assert {"GET /healthz", "GET /metrics", "GET /v1/indexes"} <= set(statuses)
    else:
        assert set(statuses["POST /v1/search"]) <= {400, 404, 413, 422}
