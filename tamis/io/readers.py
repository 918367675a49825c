"""Readers that stream input files as document record batches, and bad records as error batches.

`read_file` yields ("docs", batch) and ("errors", batch) items. A record that
cannot be read (invalid JSON, no text, non-UTF-8 bytes, a truncated stream, a
malformed WARC record) becomes an error row with its source, offset, message
and raw bytes; reading goes on where it can and stops the file where it cannot
(a truncated or corrupt compressed stream has no next record to resync to).
Every document gets a stable id: the record's own id field, else `source:offset`.
"""

import gzip
import io
import json
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import pyarrow as pa

from tamis.errors import ConfigError, InputError
from tamis.io import atomic
from tamis.io.html import check_extractor
from tamis.schema import DOCUMENT, ERROR
from tamis.validation import Params

InputFormat = Literal["auto", "jsonl", "parquet", "warc", "text"]


class InputConfig(Params):
    """One input: a path or glob (local or gs://) and how to read its records."""

    path: str
    format: InputFormat = "auto"
    text_field: str = "text"
    id_field: str = "id"
    extractor: str = "resiliparse_pruned"  # HTML→text for WARC records; see tamis.io.html

    def check(self) -> None:
        check_extractor(self.extractor)

log = logging.getLogger(__name__)

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".warc": "warc",
    ".arc": "warc",
    ".txt": "text",
    ".md": "text",
    ".text": "text",
}
_COMPRESSIONS = (".gz", ".zst", ".zstd")
CHUNK = 1 << 20
_HTML_TYPES = ("text/html", "application/xhtml+xml")
ReadItem = tuple[str, pa.RecordBatch]


def detect_format(path: str) -> str:
    name = path.lower()
    for comp in _COMPRESSIONS:
        if name.endswith(comp):
            name = name[: -len(comp)]
    for suffix, fmt in _SUFFIX_FORMATS.items():
        if name.endswith(suffix):
            return fmt
    raise ConfigError(
        f"Cannot tell the format of input {path} from its name.",
        hint="set 'format' (jsonl, parquet, warc, text) on that input",
    )


def expand(cfg: InputConfig) -> list[str]:
    """The sorted files a configured path or glob names; refuse one that names nothing."""
    try:
        paths = atomic.glob(cfg.path)
    except OSError as e:  # unreachable bucket, no credentials, permission denied
        raise InputError(f"Input path {cfg.path} cannot be listed: {e}") from e
    if not paths:
        raise InputError(f"Input path {cfg.path} matches no file.", hint="check the path or glob in 'inputs'")
    return paths


def _open_decompressed(path: str) -> IO[bytes]:
    raw = atomic.open_read(path)
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)
    if name.endswith((".zst", ".zstd")):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, CHUNK)  # its own readline() is unsupported
    return raw


@dataclass
class _Batcher:
    """Accumulates documents and errors and cuts them into record batches."""

    source: str
    batch_size: int
    docs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # records that are not documents (WARC requests, metadata, images): counted, not errors

    def doc(self, offset: int, text: str, doc_id: Any, meta: dict[str, Any] | None) -> None:
        if doc_id is None or doc_id == "":
            doc_id = f"{self.source}:{offset}"
        self.docs.append(
            {
                "id": str(doc_id),
                "text": text,
                "source": self.source,
                "offset": offset,
                "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True, default=str) if meta else None,
            }
        )

    def error(self, offset: int, message: str, raw: bytes | None) -> None:
        self.errors.append({"source": self.source, "offset": offset, "error": message, "raw": raw})

    def full(self) -> bool:
        return len(self.docs) >= self.batch_size or len(self.errors) >= self.batch_size

    def flush(self) -> Iterator[ReadItem]:
        if self.docs:
            yield "docs", pa.RecordBatch.from_pylist(self.docs, schema=DOCUMENT)
            self.docs = []
        if self.errors:
            yield "errors", pa.RecordBatch.from_pylist(self.errors, schema=ERROR)
            self.errors = []


def _jsonl(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    offset = 0
    with _open_decompressed(path) as f:
        while True:
            try:
                line = f.readline()
            except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as e:
                out.error(offset, f"compressed stream is truncated or corrupt after this offset: {e}", None)
                break
            except Exception as e:  # zstandard raises its own ZstdError
                out.error(offset, f"cannot decompress after this offset: {e}", None)
                break
            if not line:
                break
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            _json_record(line, start, cfg, out)
            if out.full():
                yield from out.flush()
    yield from out.flush()


def _json_record(line: bytes, offset: int, cfg: InputConfig, out: _Batcher) -> None:
    try:
        record = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as e:
        return out.error(offset, f"record is not valid UTF-8: {e}", line)
    except json.JSONDecodeError as e:
        return out.error(offset, f"invalid JSON: {e}", line)
    if not isinstance(record, dict):
        return out.error(offset, f"record is a JSON {type(record).__name__}, not an object", line)
    text = record.pop(cfg.text_field, None)
    if not isinstance(text, str):
        what = "missing" if text is None else f"a {type(text).__name__}, not a string"
        return out.error(offset, f"field {cfg.text_field!r} is {what}", line)
    doc_id = record.pop(cfg.id_field, None)
    out.doc(offset, text, doc_id, record)


def _parquet(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(atomic.open_read(path))
    except Exception as e:
        out.error(0, f"not a readable Parquet file: {e}", None)
        yield from out.flush()
        return
    row = 0
    for batch in pf.iter_batches(batch_size=out.batch_size):
        for record in batch.to_pylist():
            text = record.pop(cfg.text_field, None)
            if not isinstance(text, str):
                what = "missing" if text is None else f"a {type(text).__name__}, not a string"
                raw = json.dumps({cfg.text_field: text, **record}, default=str).encode()
                out.error(row, f"field {cfg.text_field!r} is {what}", raw)
            else:
                out.doc(row, text, record.pop(cfg.id_field, None), record)
            row += 1
        yield from out.flush()


def _text(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    with _open_decompressed(path) as f:
        try:
            data = f.read()
        except Exception as e:
            out.error(0, f"compressed stream is truncated or corrupt: {e}", None)
            data = b""
    if data:
        try:
            out.doc(0, data.decode("utf-8"), None, None)
        except UnicodeDecodeError as e:
            out.error(0, f"file is not valid UTF-8: {e}", data)
    yield from out.flush()


def _warc(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    """HTML responses (and HTML/text resource records) become documents; other records are not documents."""
    from warcio.archiveiterator import ArchiveIterator

    from tamis.io.html import extract

    offset = 0
    with atomic.open_read(path) as raw:
        try:
            records = ArchiveIterator(raw, arc2warc=True, check_digests=True)
            for record in records:
                offset = records.offset  # start of this record; get_record_offset() would consume it
                if record.rec_type not in ("response", "resource"):
                    out.skipped += 1
                    continue
                length = record.rec_headers.get_header("Content-Length", "")
                if not length.isdigit():
                    out.error(offset, f"{record.rec_type} record has an invalid Content-Length {length!r}", None)
                    continue
                url = record.rec_headers.get_header("WARC-Target-URI")
                headers = record.http_headers
                ctype = (headers.get_header("Content-Type") if headers else None) or record.rec_headers.get_header(
                    "Content-Type", ""
                )
                mime = ctype.split(";")[0].strip().lower()
                if mime not in _HTML_TYPES and mime != "text/plain":
                    out.skipped += 1
                    continue
                payload = record.content_stream().read()
                if record.digest_checker.passed is False:
                    problems = "; ".join(record.digest_checker.problems)
                    out.error(offset, f"record is truncated or corrupt ({problems})", payload)
                    continue
                if mime == "text/plain":
                    try:
                        text = payload.decode("utf-8")
                    except UnicodeDecodeError as e:
                        out.error(offset, f"text/plain record is not valid UTF-8: {e}", payload)
                        continue
                else:
                    charset = ctype.split("charset=")[-1].strip() if "charset=" in ctype.lower() else None
                    text = extract(payload, url=url, extractor=cfg.extractor, encoding=charset)
                meta = {"url": url, "date": record.rec_headers.get_header("WARC-Date"), "content_type": mime}
                out.doc(offset, text, record.rec_headers.get_header("WARC-Record-ID"), meta)
                if out.full():
                    yield from out.flush()
        except Exception as e:  # warcio raises ArchiveLoadFailed, digest errors and zlib errors mid-stream
            message = " ".join(str(e).split()) or type(e).__name__
            out.error(offset, f"malformed WARC/ARC data, rest of file unreadable: {message}", None)
    yield from out.flush()


_READERS = {"jsonl": _jsonl, "parquet": _parquet, "warc": _warc, "text": _text}


def read_file(
    path: str, cfg: InputConfig, batch_size: int = 1000, source: str | None = None, stats: dict | None = None
) -> Iterator[ReadItem]:
    """Stream one input file as ("docs" | "errors", RecordBatch) items; `stats` gets the `skipped` count."""
    fmt = detect_format(path) if cfg.format == "auto" else cfg.format
    out = _Batcher(source or path, batch_size)
    try:
        yield from _READERS[fmt](path, cfg, out)
        if stats is not None:
            stats["skipped"] = out.skipped
    except FileNotFoundError as e:
        raise InputError(f"Input file {path} disappeared while reading.") from e


def read_all(path: str, cfg: InputConfig | None = None, batch_size: int = 1000) -> tuple[pa.Table, pa.Table]:
    """Read a whole file into (documents, errors) tables; for tests, tools and small inputs."""
    cfg = cfg or InputConfig(path=path)
    parts: dict[str, list[pa.RecordBatch]] = {"docs": [], "errors": []}
    for kind, batch in read_file(path, cfg, batch_size):
        parts[kind].append(batch)
    return (
        pa.Table.from_batches(parts["docs"], schema=DOCUMENT),
        pa.Table.from_batches(parts["errors"], schema=ERROR),
    )

