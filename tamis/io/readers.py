"""Readers that stream input files as document record batches, and bad records as error batches.

`read_file` yields ("docs", batch) and ("errors", batch) items. A record that
cannot be read (invalid JSON, no text, non-UTF-8 bytes, a truncated stream, a
malformed WARC record) becomes an error row with its source, offset, message
and raw bytes; reading goes on where it can and stops the file where it cannot
(a truncated or corrupt compressed stream has no next record to resync to).
Such a file is reported in the reader's stats as `truncated`, with
`unread_bytes`: the stored bytes after the point the decoder reached, which
no reader could turn into records. A file with no record at all is `empty`.
Every document gets a stable id: the record's own id field, else `source:offset`.
"""

import gzip
import io
import json
import logging
import os
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
        if not atomic.is_remote(cfg.path) and os.path.isdir(cfg.path):
            raise InputError(
                f"Input path {cfg.path} is a folder, not a file or glob.",
                hint=f"name its files, e.g. {os.path.join(cfg.path, 'shards', '*.parquet')} for a run's shards",
            )
        raise InputError(f"Input path {cfg.path} matches no file.", hint="check the path or glob in 'inputs'")
    return paths


def is_compressed(path: str) -> bool:
    return path.lower().endswith(_COMPRESSIONS)


def _open_decompressed(path: str) -> tuple[IO[bytes], IO[bytes]]:
    """(the decompressed stream, the stored file under it, whose position says how far decoding got)."""
    raw = atomic.open_read(path)
    name = path.lower()
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw), raw
    if name.endswith((".zst", ".zstd")):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=True)
        return io.BufferedReader(reader, CHUNK), raw  # its own readline() is unsupported
    return raw, raw


def _unread(raw: IO[bytes], path: str) -> int:
    """Stored bytes after the decoder's position in `raw` (buffered reads make it a lower bound)."""
    try:
        return max(atomic.size(path) - raw.tell(), 0)
    except (OSError, ValueError):
        return 0


@dataclass
class _Batcher:
    """Accumulates documents and errors and cuts them into record batches; counts what a file held."""

    source: str
    batch_size: int
    offset_kind: str = "file"  # what error offsets count (see tamis.schema.ERROR)
    docs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # records that are not documents (WARC requests, metadata, images): counted, not errors
    records: int = 0  # documents and errors, however many batches they came in
    unread_bytes: int | None = None  # set when the file could not be read to its end

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"skipped": self.skipped}
        if self.unread_bytes is not None:
            out.update(truncated=True, unread_bytes=self.unread_bytes)
        if self.records == 0 and self.skipped == 0:
            out["empty"] = True
        return out

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
        self.errors.append(
            {"source": self.source, "offset": offset, "offset_kind": self.offset_kind, "error": message, "raw": raw}
        )

    def stop(self, offset: int, message: str, unread_bytes: int) -> None:
        """The rest of the file cannot be read: one error row, and the file counts as truncated."""
        self.error(offset, message, None)
        self.unread_bytes = unread_bytes

    def full(self) -> bool:
        return len(self.docs) >= self.batch_size or len(self.errors) >= self.batch_size

    def flush(self) -> Iterator[ReadItem]:
        self.records += len(self.docs) + len(self.errors)
        if self.docs:
            yield "docs", pa.RecordBatch.from_pylist(self.docs, schema=DOCUMENT)
            self.docs = []
        if self.errors:
            yield "errors", pa.RecordBatch.from_pylist(self.errors, schema=ERROR)
            self.errors = []


def _jsonl(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    offset = 0
    f, raw = _open_decompressed(path)
    with f:
        while True:
            try:
                line = f.readline()
            except (EOFError, OSError, zlib.error, gzip.BadGzipFile) as e:
                out.stop(offset, f"compressed stream is truncated or corrupt after this offset: {e}", _unread(raw, path))
                break
            except Exception as e:  # zstandard raises its own ZstdError
                out.stop(offset, f"cannot decompress after this offset: {e}", _unread(raw, path))
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
    present = cfg.text_field in record
    text = record.pop(cfg.text_field, None)
    if not isinstance(text, str):
        return out.error(offset, f"field {cfg.text_field!r} is {_what(present, text)}", line)
    doc_id = record.pop(cfg.id_field, None)
    out.doc(offset, text, doc_id, record)


def _what(present: bool, value: Any) -> str:
    """How a text field that is not a string is described: missing, null, or its type with the right article."""
    if not present:
        return "missing"
    if value is None:
        return "null"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}, not a string"


def _parquet(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(atomic.open_read(path))
    except Exception as e:
        out.stop(0, f"not a readable Parquet file: {e}", atomic.size(path))
        yield from out.flush()
        return
    row = 0
    batches = pf.iter_batches(batch_size=out.batch_size)
    while True:
        try:
            batch = next(batches, None)
        except Exception as e:  # a corrupt page or row group: the rest of the file cannot be read
            out.stop(row, f"Parquet data is corrupt from this row on: {' '.join(str(e).split())}", 0)
            break
        if batch is None:
            break
        for record in batch.to_pylist():
            present = cfg.text_field in record
            text = record.pop(cfg.text_field, None)
            if not isinstance(text, str):
                raw = json.dumps({cfg.text_field: text, **record}, default=str).encode()
                out.error(row, f"field {cfg.text_field!r} is {_what(present, text)}", raw)
            else:
                out.doc(row, text, record.pop(cfg.id_field, None), record)
            row += 1
        yield from out.flush()
    yield from out.flush()


def _text(path: str, cfg: InputConfig, out: _Batcher) -> Iterator[ReadItem]:
    f, raw = _open_decompressed(path)
    with f:
        try:
            data = f.read()
        except Exception as e:
            out.stop(0, f"compressed stream is truncated or corrupt: {e}", _unread(raw, path))
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
            out.stop(offset, f"malformed WARC/ARC data, rest of file unreadable: {message}", _unread_after(path, offset))
    yield from out.flush()


def _unread_after(path: str, offset: int) -> int:
    return max(atomic.size(path) - offset, 0)


_READERS = {"jsonl": _jsonl, "parquet": _parquet, "warc": _warc, "text": _text}


def reader_format(path: str, cfg: InputConfig) -> str:
    """The format a file will be read as; ConfigError when its name says nothing known (checked at plan time)."""
    return detect_format(path) if cfg.format == "auto" else cfg.format


def read_file(
    path: str, cfg: InputConfig, batch_size: int = 1000, source: str | None = None, stats: dict | None = None
) -> Iterator[ReadItem]:
    """Stream one input file as ("docs" | "errors", RecordBatch) items.

    `stats` gets what the file held beyond its batches: `skipped` (records that
    are not documents), and `truncated` with `unread_bytes`, or `empty`, when so.
    """
    fmt = reader_format(path, cfg)
    kind = "row" if fmt == "parquet" else "decompressed" if fmt != "warc" and is_compressed(path) else "file"
    out = _Batcher(source or path, batch_size, kind)
    try:
        yield from _READERS[fmt](path, cfg, out)
        if out.records == 0 and out.skipped == 0:
            log.warning("input %s holds no record", path)
        if stats is not None:
            stats.update(out.stats())
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

