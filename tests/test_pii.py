import gzip
import json
import time

import pytest

from tamis.errors import ConfigError
from tamis.filters.chain import apply_chain
from tamis.filters.pii import redact_pii
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.schema import documents


@pytest.mark.parametrize(
    "text,expected,kind",
    [("write to john.doe+x@mail.example.co.uk today", "write to <EMAIL> today", "email"),
     ("server 192.168.1.20:8080 down", "server <IP_ADDRESS>:8080 down", "ip_address"),
     ("host 2001:db8::8a2e:370:7334 up", "host <IP_ADDRESS> up", "ip_address"),
     ("call (555) 123-4567 now", "call <PHONE_NUMBER> now", "phone_number"),
     ("call +44 20 7946 0958 now", "call <PHONE_NUMBER> now", "phone_number"),
     ("call 555.123.4567.", "call <PHONE_NUMBER>.", "phone_number")],
)  # fmt: skip
def test_pii_redacts_with_typed_placeholders(text, expected, kind):
    redacted, counts = redact_pii(text)
    assert redacted == expected and counts[kind] == 1 and sum(counts.values()) == 1


@pytest.mark.parametrize(
    "text",
    ["version 1.2.3.4 and v10.0.0.1 and 1.2.3.4.5 and 300.1.1.1", "std::map and a::b and 12:30:45",
     "on 2023-01-15 12:30, 15.03.2021, 2021-03-04 1234", "pages 688-694 295-300 11-17, scores 26-60 16-23 72",
     "ISBN 978-3-16-148410-0, total 1,234,567,890, id 1234567890", "a@b.c is not an address"],
)  # fmt: skip
def test_pii_leaves_versions_dates_and_numbers(text):
    assert redact_pii(text) == (text, {"email": 0, "ip_address": 0, "phone_number": 0})


def test_pii_on_web_pool_through_the_chain(shared_data):
    rows = []
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if "@" in r["text"] or "Tel" in r["text"]:
                rows.append({"id": r["id"], "text": r["text"]})
            if len(rows) == 300:
                break
    kept, drops = apply_chain([build("pii")], documents(rows))
    assert not drops and kept.num_rows == len(rows) and "pii.text" not in kept.schema.names
    assert sum(kept.column("pii.email").to_pylist()) > 50
    assert sum(kept.column("pii.phone_number").to_pylist()) > 10
    for before, after in zip(rows, kept.column("text").to_pylist(), strict=True):
        assert redact_pii(after)[1] == {"email": 0, "ip_address": 0, "phone_number": 0}  # nothing left over
        assert len(after) <= len(before["text"]) + 40 * after.count("<")


def test_pii_bad_input_and_config():
    huge = ("1.2.3. 555-123- a@ b@c ::: +1 (" * 400_000) + "x" * 1_000_000
    assert len(huge) > 10_000_000
    start = time.perf_counter()
    scores = build("pii").score(
        DocView(
            documents([{"id": "0", "text": ""}, {"id": "1", "text": "bad \ufffd\ufffd"}, {"id": "2", "text": huge}])
        )
    )
    assert time.perf_counter() - start < 30
    assert list(scores["pii.email"][:2]) == [0, 0]
    assert redact_pii("mail a.b@example.org \udce9")[1]["email"] == 1  # lone surrogates (surrogateescape) pass
    with pytest.raises(ConfigError):
        build("pii", {"kinds": ["ssn"]})
    assert (
        build("pii", {"kinds": ["email"]}).score(DocView(documents([{"id": "0", "text": "1.2.3.4 x@y.org"}])))[
            "pii.text"
        ][0]
        == "1.2.3.4 <EMAIL>"
    )
