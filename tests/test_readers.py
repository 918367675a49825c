import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tamis.errors import ConfigError, InputError
from tamis.io.readers import InputConfig, detect_format, expand, read_all

DOCS = [{"id": f"d{i}", "text": f"document number {i}", "url": f"https://example.org/{i}"} for i in range(5)]


def jsonl_bytes(rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_plain_and_compressed(tmp_path, suffix):
    data = jsonl_bytes(DOCS)
    path = tmp_path / f"docs{suffix}"
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    elif suffix.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    docs, errors = read_all(str(path), batch_size=2)
    assert docs.column("id").to_pylist() == [d["id"] for d in DOCS]
    assert docs.column("text").to_pylist() == [d["text"] for d in DOCS]
    assert json.loads(docs.column("meta")[0].as_py()) == {"url": "https://example.org/0"}
    assert errors.num_rows == 0


def test_ids_default_to_source_and_byte_offset(tmp_path):
    path = tmp_path / "noid.jsonl"
    path.write_bytes(b'{"text": "a"}\n{"text": "bb"}\n')
    docs, _ = read_all(str(path))
    assert docs.column("id").to_pylist() == [f"{path}:0", f"{path}:14"]
    assert docs.column("offset").to_pylist() == [0, 14]


def test_bad_jsonl_records_go_to_errors_and_reading_goes_on(tmp_path):
    lines = [
        b'{"id": "ok1", "text": "fine"}',
        b'{"id": "cut", "text": "trunc',
        b'{"id": "notext", "body": "x"}',
        b'{"id": "num", "text": 5}',
        b'["not", "an", "object"]',
        b'{"id": "latin1", "text": "caf\xe9"}',
        b"",
        b'{"id": "ok2", "text": "also fine"}',
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    docs, errors = read_all(str(path))
    assert docs.column("id").to_pylist() == ["ok1", "ok2"]
    msgs = errors.column("error").to_pylist()
    assert len(msgs) == 5
    assert "invalid JSON" in msgs[0] and "missing" in msgs[1] and "not a string" in msgs[2]
    assert "not an object" in msgs[3] and "UTF-8" in msgs[4]
    # nothing is lost: each error keeps its raw bytes and byte offset
    raw = path.read_bytes()
    for off, rec in zip(errors.column("offset").to_pylist(), errors.column("raw").to_pylist(), strict=True):
        assert raw[off : off + len(rec)] == rec


def test_truncated_gzip_keeps_what_was_read_and_records_the_cut(tmp_path):
    rows = [{"id": str(i), "text": "word " * 200 + str(i)} for i in range(200)]
    data = gzip.compress(jsonl_bytes(rows))
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    docs, errors = read_all(str(path))
    assert 0 < docs.num_rows < 200
    assert docs.column("id").to_pylist() == [str(i) for i in range(docs.num_rows)]
    assert errors.num_rows == 1 and "truncated" in errors.column("error")[0].as_py()


def test_empty_file_yields_nothing(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    docs, errors = read_all(str(path))
    assert docs.num_rows == 0 and errors.num_rows == 0


def test_parquet_rows_and_bad_rows(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["x", None, "z"], "lang": ["en", "en", "fr"]}), path)
    docs, errors = read_all(str(path))
    assert docs.column("id").to_pylist() == ["a", "c"]
    assert docs.column("offset").to_pylist() == [0, 2]
    assert json.loads(docs.column("meta")[1].as_py()) == {"lang": "fr"}
    assert errors.column("offset").to_pylist() == [1]


def test_parquet_without_text_column_errors_every_row(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "body": ["x", "y"]}), path)
    docs, errors = read_all(str(path))
    assert docs.num_rows == 0 and errors.num_rows == 2


def test_text_files(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("one document\nin a file\n", encoding="utf-8")
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe broken")
    docs, errors = read_all(str(good))
    assert docs.column("text").to_pylist() == ["one document\nin a file\n"]
    assert docs.column("id").to_pylist() == [f"{good}:0"]
    docs, errors = read_all(str(bad))
    assert docs.num_rows == 0 and errors.column("raw")[0].as_py() == b"\xff\xfe broken"


def test_warc_html_responses_become_documents(shared_data):
    path = shared_data / "curation/warc/dolma_sample-0000.warc.gz"
    docs, errors = read_all(str(path))
    assert docs.num_rows >= 20 and errors.num_rows == 0
    meta = json.loads(docs.column("meta")[0].as_py())
    assert meta["url"].startswith("http") and meta["content_type"] == "text/html"
    assert all(i.startswith("<urn:uuid:") for i in docs.column("id").to_pylist())
    assert sum(len(t) > 200 for t in docs.column("text").to_pylist()) >= 10


@pytest.mark.parametrize(
    "name, problem",
    [
        ("warcio_example-bad-non-chunked.warc.gz", "malformed"),
        ("warcio_example-bad.warc.gz.bad", "malformed"),
        ("warcio_example-wrong-chunks.warc.gz", "malformed"),
        ("warcio_example-trunc.warc", "truncated or corrupt"),
        ("warcio_bad.arc", "invalid Content-Length"),
    ],
)
def test_malformed_warc_files_give_errors_not_crashes(shared_data, name, problem):
    docs, errors = read_all(str(shared_data / "curation/warc" / name), InputConfig(path=name, format="warc"))
    assert errors.num_rows >= 1
    assert any(problem in e for e in errors.column("error").to_pylist())


def test_format_detection_and_missing_paths(tmp_path):
    assert detect_format("x/a.jsonl.gz") == "jsonl"
    assert detect_format("a.warc.gz") == "warc"
    assert detect_format("a.parquet") == "parquet"
    with pytest.raises(ConfigError, match="format"):
        detect_format("a.bin")
    with pytest.raises(InputError, match="matches no file"):
        expand(InputConfig(path=str(tmp_path / "nothing*.jsonl")))


def test_side_files_are_read_strictly(tmp_path):
    import gzip as gz

    from tamis.errors import InputError
    from tamis.io.side_files import jsonl_rows

    good = tmp_path / "pairs.jsonl.gz"
    good.write_bytes(gz.compress(b'{"a": 1}\n\n{"a": 2}\n'))
    assert list(jsonl_rows(good)) == [(1, {"a": 1}), (3, {"a": 2})]
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gz.compress(b'{"a": 1}\n' * 1000)[:-20])
    with pytest.raises(InputError, match="unreadable"):
        list(jsonl_rows(truncated))
    (tmp_path / "list.jsonl").write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(InputError, match=r"list.jsonl:2: line 2 is not a JSON object"):
        list(jsonl_rows(tmp_path / "list.jsonl"))
    with pytest.raises(InputError, match="does not exist"):
        list(jsonl_rows(tmp_path / "missing.jsonl"))
