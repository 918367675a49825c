"""Tokenized shards: flat token ids plus a Megatron `.idx` of document boundaries, and the export that writes them.

An export directory holds

    tokens-NNNNN.bin    token ids of whole documents, each followed by the end-of-document (EOD) id,
                        little-endian uint16 when the vocabulary fits in 16 bits, else uint32; no header
    tokens-NNNNN.idx    Megatron's MMIDIDX index: one sequence per document (its length with the EOD
                        and its byte offset in the .bin), so Megatron's IndexedDataset reads the pair
    tokenizer.json      a copy of the tokenizer, whose sha256 is the export's tokenizer identity
    _progress/*.json    one marker per finished shard, for resume
    manifest.json       written last: token counts per shard and per domain, tokenizer, dtype, EOD, sha256s

The `.bin` is the layout nanoGPT-style loaders memmap (`np.memmap(path, dtype)`);
docs/export.md gives the recipe to read both files without tamis. Shards hold
whole documents; a shard is closed once it holds `shard_tokens` tokens or more,
so it exceeds that by less than one document.

The export is deterministic and resumable: shard boundaries depend only on the
inputs, the tokenizer and the settings; every file is written under a temporary
name and renamed, and a shard counts as finished only once its marker exists.
A rerun after a crash reuses the finished shards and continues from the input row
after the last one, so the files come out byte-identical to an uninterrupted run.
"""

import glob
import hashlib
import json
import logging
import os
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.errors import ConfigError, InputError, IntegrityError, ResourceError
from tamis.io import atomic, manifest
from tamis.validation import Params

log = logging.getLogger(__name__)

KIND = "token_export"
FORMAT_VERSION = 1
PREFIX = "tokens"
TOKENIZER_FILE = "tokenizer.json"
PROGRESS = "_progress"
INDEX_FORMAT = "megatron-mmidx-1"
NO_DOMAIN = "(none)"
# End-of-document tokens, in the order they are looked for when `eod` is not given.
EOD_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "[SEP]")

# Megatron's index: magic, version, dtype code, sequence count, document count, then
# int32 lengths, int64 byte pointers and int64 document indices (one per document, plus the end).
_MAGIC = b"MMIDIDX\x00\x00"
_HEADER = struct.Struct("<9sQBQQ")
# Megatron names its dtypes by code; it has no uint32, and int32 (4) reads the same bytes for ids below 2**31.
_DTYPE_CODE = {"uint16": 8, "uint32": 4}
_CODE_DTYPE = {8: "uint16", 4: "uint32"}
_LE = {"uint16": "<u2", "uint32": "<u4"}


class FaultInjected(RuntimeError):
    """Raised by `fail_after_shards` to simulate a crash in the middle of a shard."""


class ExportConfig(Params):
    shard_tokens: int = 1 << 28  # tokens per shard (whole documents; may exceed by less than one document)
    eod: str | int | None = None  # end-of-document token or id; None: the first of EOD_CANDIDATES in the vocabulary
    text_column: str = "text"
    domain_column: str = "domain"  # counted per domain when the inputs have it
    batch_rows: int = 1024  # rows tokenized per batch

    def check(self) -> None:
        for name in ("shard_tokens", "batch_rows"):
            value = getattr(self, name)
            if value <= 0:
                raise ConfigError(f"The '{name}' parameter of token export must be > 0. Got {value} instead.")


# ---------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class TokenizerInfo:
    sha256: str
    vocab_size: int
    eod_id: int
    eod_token: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "vocab_size": self.vocab_size, "eod_id": self.eod_id,
                "eod_token": self.eod_token, "file": TOKENIZER_FILE}


def tokenizer_sha256(path: str | os.PathLike) -> str:
    """The tokenizer's identity: sha256 of its tokenizer.json bytes."""
    path = str(path)
    if not os.path.isfile(path):
        raise ResourceError(f"tokenizer file {path} does not exist", hint="give the path of a local tokenizer.json")
    return atomic.sha256_file(path)


def load_tokenizer(path: str | os.PathLike):
    """A HF `tokenizers` Tokenizer for whole documents: no truncation, no padding, no added special tokens.

    Special-token strings inside a document's text are tokenized as plain text,
    so the only EOD ids in a shard are the ones the export appends.
    """
    from tokenizers import Tokenizer

    path = str(path)
    tokenizer_sha256(path)  # a clear error for a missing file
    try:
        tok = Tokenizer.from_file(path)
    except Exception as e:  # tokenizers raises a bare Exception for a malformed file
        raise ResourceError(f"{path} is not a HF tokenizers tokenizer.json ({e})") from e
    tok.no_truncation()
    tok.no_padding()
    tok.encode_special_tokens = True
    return tok


def tokenizer_info(tok, sha256: str, eod: str | int | None) -> TokenizerInfo:
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    if eod is None:
        found = [t for t in EOD_CANDIDATES if tok.token_to_id(t) is not None]
        if not found:
            raise ConfigError(
                f"the tokenizer has none of the usual end-of-document tokens {list(EOD_CANDIDATES)}",
                hint="name its EOD token with --eod TOKEN (or eod: in the config)",
            )
        eod = found[0]
    if isinstance(eod, int):
        eod_id, eod_token = eod, tok.id_to_token(eod)
        if eod_token is None:
            raise ConfigError(f"The 'eod' parameter of token export must be a token id of the tokenizer. Got {eod}.")
    else:
        eod_id, eod_token = tok.token_to_id(eod), eod
        if eod_id is None:
            raise ConfigError(f"The 'eod' parameter of token export must be a token of the tokenizer. Got {eod!r}.")
    dtype = "uint16" if vocab_size <= 1 << 16 else "uint32"
    return TokenizerInfo(sha256, vocab_size, eod_id, eod_token, dtype)


# ---------------------------------------------------------------- one shard


def shard_name(index: int) -> str:
    return f"{PREFIX}-{index:05d}"


def encode_index(lengths: np.ndarray, dtype: str) -> bytes:
    """Megatron's .idx bytes for documents of `lengths` tokens (one sequence per document)."""
    lengths = np.asarray(lengths, dtype="<i4")
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(lengths), dtype="<i8")
    if len(lengths) > 1:
        np.cumsum(lengths[:-1], dtype="<i8", out=pointers[1:])
    pointers *= itemsize
    documents = np.arange(len(lengths) + 1, dtype="<i8")
    header = _HEADER.pack(_MAGIC, 1, _DTYPE_CODE[dtype], len(lengths), len(documents))
    return header + lengths.tobytes() + pointers.tobytes() + documents.tobytes()


def decode_index(data: bytes | np.ndarray, path: str) -> tuple[str, np.ndarray]:
    """(dtype, int64 document lengths) from .idx bytes; IntegrityError naming `path` if they are not an index."""
    buf = memoryview(data).cast("B") if not isinstance(data, bytes) else data
    if len(buf) < _HEADER.size:
        raise IntegrityError(f"{path} is truncated: {len(buf)} bytes is shorter than an index header")
    magic, version, code, n_seq, n_doc = _HEADER.unpack_from(buf, 0)
    if magic != _MAGIC or version != 1 or code not in _CODE_DTYPE:
        raise IntegrityError(f"{path} is not a Megatron MMIDIDX index (version 1, uint16 or int32 tokens)")
    expected = _HEADER.size + n_seq * 12 + n_doc * 8
    if len(buf) != expected:
        raise IntegrityError(f"{path} is truncated or padded: {len(buf)} bytes, its header implies {expected}")
    lengths = np.frombuffer(buf, dtype="<i4", count=n_seq, offset=_HEADER.size).astype(np.int64)
    return _CODE_DTYPE[code], lengths


class _ShardWriter:
    """Writes one shard: tokens stream to a temporary .bin, the .idx is written when it closes."""

    def __init__(self, root: str, index: int, dtype: str):
        self.root, self.name, self.dtype = root, shard_name(index), dtype
        self._ctx = atomic.atomic_write(atomic.join(root, self.name + ".bin"))
        self._f = self._ctx.__enter__()
        self._sha = hashlib.sha256()
        self.lengths: list[int] = []
        self.tokens = 0
        self.domains: Counter = Counter()
        self.domain_docs: Counter = Counter()

    def add(self, flat: np.ndarray, lengths: list[int], domains: list[str] | None) -> None:
        data = flat.astype(_LE[self.dtype], copy=False).tobytes()
        self._f.write(data)
        self._sha.update(data)
        self.lengths.extend(lengths)
        self.tokens += len(flat)
        if domains is not None:
            for d, n in zip(domains, lengths, strict=True):
                self.domains[d] += n
                self.domain_docs[d] += 1

    def abort(self, exc: BaseException) -> None:
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)

    def close(self) -> list[dict[str, Any]]:
        bin_bytes = self._f.tell()
        self._ctx.__exit__(None, None, None)
        idx = encode_index(np.asarray(self.lengths), self.dtype)
        atomic.write_bytes(atomic.join(self.root, self.name + ".idx"), idx)
        return [
            {"path": self.name + ".bin", "bytes": bin_bytes, "sha256": self._sha.hexdigest()},
            {"path": self.name + ".idx", "bytes": len(idx), "sha256": hashlib.sha256(idx).hexdigest()},
        ]


def write_shard(root: str, index: int, documents: Sequence[np.ndarray], dtype: str) -> list[dict[str, Any]]:
    """Write one shard of already-tokenized documents (each ending with its EOD); returns its two file entries."""
    w = _ShardWriter(root, index, dtype)
    flat = np.concatenate(documents) if len(documents) else np.zeros(0, dtype=dtype)
    w.add(flat, [len(d) for d in documents], None)
    return w.close()


# ---------------------------------------------------------------- inputs


def resolve_inputs(items: Sequence[str]) -> list[str]:
    """Parquet files in order from files, globs, or run directories (verified against their manifest).

    A directory with a manifest.json (a curate run, a mix output) is verified,
    then its shards are taken in manifest order: its `shards` list when it has one,
    else its files under shards/.
    """
    paths: list[str] = []
    for item in items:
        if os.path.isdir(item):
            paths += _run_shards(item)
        elif os.path.isfile(item):
            paths.append(item)
        else:
            found = sorted(glob.glob(item))
            if not found:
                raise InputError(f"{item} matches no file", hint="give Parquet shards, globs or run directories")
            paths += found
    if not paths:
        raise InputError("no Parquet shards to export")
    return paths


def _run_shards(root: str) -> list[str]:
    found = any_manifest(root)
    manifest.verify_files(root, found)
    return [os.path.join(root, e["path"]) for e in parquet_shards(found)]


def any_manifest(root: str) -> dict[str, Any]:
    """The manifest of a run or export directory of any kind, its own checksum checked (its files are not)."""
    if not os.path.isfile(os.path.join(root, manifest.MANIFEST)):
        raise InputError(f"{root} has no {manifest.MANIFEST}: it is not a finished run or export",
                         hint="give its Parquet files instead, or finish the run")
    return manifest.read_any(root)


def parquet_shards(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The file entries (path, bytes, sha256) of a manifest's Parquet shards, in order.

    Its `shards` list when it has one (curate runs, mixes), else its files under shards/.
    """
    by_path = {e["path"]: e for e in found["files"]}
    if isinstance(found.get("shards"), list):
        rels = [s["path"] for s in found["shards"]]
    else:
        rels = sorted(p for p in by_path if p.startswith("shards/"))
    return [by_path[r] for r in rels if r.endswith(".parquet")]


def _input_entry(path: str) -> dict[str, Any]:
    try:
        rows = pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowInvalid) as e:
        raise InputError(f"{path} is not a readable Parquet file ({e})") from e
    return {"path": os.path.abspath(path), "bytes": os.path.getsize(path), "rows": rows}


def _read_rows(path: str, start_row: int, cfg: ExportConfig) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(first row number, batch) of `path` from row `start_row` on, skipping whole row groups before it."""
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if cfg.text_column not in names:
        raise InputError(f"{path} has no {cfg.text_column!r} column (it has {names})",
                         hint="name the text column with --text-column")
    columns = [cfg.text_column] + ([cfg.domain_column] if cfg.domain_column in names else [])
    row, first = 0, pf.num_row_groups
    for g in range(pf.num_row_groups):
        n = pf.metadata.row_group(g).num_rows
        if row + n > start_row:
            first = g
            break
        row += n
    groups = list(range(first, pf.num_row_groups))
    if not groups:
        return
    for batch in pf.iter_batches(batch_size=cfg.batch_rows, row_groups=groups, columns=columns):
        if row + batch.num_rows <= start_row:
            row += batch.num_rows
            continue
        skip = max(0, start_row - row)
        yield row + skip, batch.slice(skip)
        row += batch.num_rows


# ---------------------------------------------------------------- the export


def _fingerprint(inputs: list[dict[str, Any]], info: TokenizerInfo, cfg: ExportConfig) -> str:
    body = {"format_version": FORMAT_VERSION, "inputs": [[i["path"], i["bytes"]] for i in inputs],
            "tokenizer": info.sha256, "eod": info.eod_id, "dtype": info.dtype,
            "shard_tokens": cfg.shard_tokens, "text_column": cfg.text_column, "domain_column": cfg.domain_column}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _marker_path(out: str, index: int) -> str:
    return os.path.join(out, PROGRESS, shard_name(index) + ".json")


def _finished_shards(out: str, fp: str) -> list[dict[str, Any]]:
    """Markers of the shards a previous run finished, in order, up to the first missing or damaged one."""
    done = []
    while os.path.isfile(path := _marker_path(out, len(done))):
        with open(path, "rb") as f:
            marker = json.loads(f.read())
        if marker.get("fingerprint") != fp:
            raise IntegrityError(
                f"{out} holds a partial export made from other inputs or settings",
                hint="choose a new output directory, or delete the old export",
            )
        files_ok = all(
            os.path.isfile(p := os.path.join(out, e["path"])) and os.path.getsize(p) == e["bytes"]
            for e in marker["files"]
        )
        if not files_ok:
            break
        done.append(marker)
    return done


def _clear_after(out: str, keep: int) -> None:
    """Remove markers from shard `keep` on and temporary files a killed run left behind."""
    for name in os.listdir(os.path.join(out, PROGRESS)):
        if name.startswith(PREFIX + "-") and int(name[len(PREFIX) + 1:].split(".")[0]) >= keep:
            os.remove(os.path.join(out, PROGRESS, name))
    for folder in (out, os.path.join(out, PROGRESS)):
        for name in os.listdir(folder):
            if ".tmp-" in name:
                os.remove(os.path.join(folder, name))


def export_tokens(
    parquet_paths: Sequence[str],
    out_dir: str,
    tokenizer_json: str | os.PathLike,
    shard_tokens: int = ExportConfig().shard_tokens,
    *,
    eod: str | int | None = None,
    text_column: str = "text",
    domain_column: str = "domain",
    batch_rows: int = 1024,
    fail_after_shards: int | None = None,
) -> dict[str, Any]:
    """Tokenize Parquet shards, in the order given, into token shards under `out_dir`; return the manifest.

    Documents keep their input order (a mix's blend order). Each gets the EOD id
    appended. Rows with a `domain_column` value are also counted per domain.
    A rerun into the same `out_dir` resumes: finished shards are kept, the rest
    is redone; a finished export is returned as it is. `fail_after_shards` stops
    with FaultInjected in the middle of the shard after that many new shards
    (crash tests only).
    """
    cfg = ExportConfig(shard_tokens=shard_tokens, eod=eod, text_column=text_column,
                       domain_column=domain_column, batch_rows=batch_rows)
    tok = load_tokenizer(tokenizer_json)
    info = tokenizer_info(tok, tokenizer_sha256(tokenizer_json), cfg.eod)
    inputs = [_input_entry(p) for p in parquet_paths]
    fp = _fingerprint(inputs, info, cfg)
    os.makedirs(os.path.join(out_dir, PROGRESS), exist_ok=True)
    if os.path.isfile(os.path.join(out_dir, manifest.MANIFEST)):
        return _finished_export(out_dir, fp)
    done = _finished_shards(out_dir, fp)
    _clear_after(out_dir, len(done))
    if done:
        log.info("resuming %s: %d finished shards reused", out_dir, len(done))
    with open(str(tokenizer_json), "rb") as f:
        atomic.write_bytes(os.path.join(out_dir, TOKENIZER_FILE), f.read())
    start = tuple(done[-1]["next"]) if done else (0, 0)
    new = _write_shards(out_dir, parquet_paths, start, len(done), tok, info, cfg, fp, fail_after_shards)
    return _write_manifest(out_dir, inputs, info, cfg, fp, done + new)


def _write_shards(out, paths, start, first_index, tok, info, cfg, fp, fail_after) -> list[dict[str, Any]]:
    """Tokenize from input position `start` = (file, row) on; close a shard once it holds shard_tokens."""
    markers: list[dict[str, Any]] = []
    writer: _ShardWriter | None = None
    shard_start = start
    try:
        for file_index in range(start[0], len(paths)):
            first_row = start[1] if file_index == start[0] else 0
            for row, batch in _read_rows(paths[file_index], first_row, cfg):
                flat, lengths = _tokenize(tok, batch, info, cfg, paths[file_index], row)
                domains = _domains(batch, cfg)
                ends = np.cumsum(lengths)
                i = 0
                while i < len(lengths):
                    if writer is None:
                        writer = _ShardWriter(out, first_index + len(markers), info.dtype)
                        shard_start = (file_index, row + i)
                    offset = ends[i - 1] if i else 0
                    # documents i..j-1 fit before this shard reaches shard_tokens (the one that reaches it included)
                    j = i + 1 + int(np.searchsorted(ends[i:] - offset + writer.tokens, cfg.shard_tokens))
                    j = min(j, len(lengths))
                    writer.add(flat[offset:ends[j - 1]], lengths[i:j].tolist(), domains and domains[i:j])
                    if fail_after is not None and len(markers) >= fail_after:
                        raise FaultInjected(f"fault injection: stopping after {fail_after} shards")
                    if writer.tokens >= cfg.shard_tokens:
                        markers.append(_close(out, writer, shard_start, (file_index, row + j), fp))
                        writer = None
                    i = j
        if writer is not None:
            markers.append(_close(out, writer, shard_start, (len(paths), 0), fp))
            writer = None
    except BaseException as e:
        if writer is not None:
            writer.abort(e)
        raise
    return markers


def _tokenize(tok, batch: pa.RecordBatch, info: TokenizerInfo, cfg: ExportConfig, path: str, row: int):
    """(flat token ids with an EOD after each document, document lengths) for one batch, in one batched call."""
    texts = batch.column(cfg.text_column)
    if texts.null_count:
        bad = row + int(np.argmax(texts.is_null().to_numpy(zero_copy_only=False)))
        raise InputError(f"{path} row {bad} has no {cfg.text_column!r} value")
    ids = [e.ids for e in tok.encode_batch_fast(texts.to_pylist(), add_special_tokens=False)]
    lengths = np.fromiter((len(d) + 1 for d in ids), dtype=np.int64, count=len(ids))
    flat = np.empty(int(lengths.sum()), dtype=np.int64)
    flat[np.cumsum(lengths) - 1] = info.eod_id
    starts = np.cumsum(lengths) - lengths
    for s, d in zip(starts.tolist(), ids, strict=True):
        flat[s:s + len(d)] = d
    if len(flat) and int(flat.max()) > np.iinfo(info.dtype).max:
        raise IntegrityError(f"token id {int(flat.max())} does not fit {info.dtype}")
    return flat, lengths


def _domains(batch: pa.RecordBatch, cfg: ExportConfig) -> list[str] | None:
    if cfg.domain_column not in batch.schema.names:
        return None
    return [NO_DOMAIN if d is None else str(d) for d in batch.column(cfg.domain_column).to_pylist()]


def _close(out: str, w: _ShardWriter, start: tuple[int, int], next_pos: tuple[int, int], fp: str) -> dict[str, Any]:
    files = w.close()
    shard = {"name": w.name, "documents": len(w.lengths), "tokens": w.tokens, "start": list(start)}
    if w.domains:
        shard["domains"] = {d: {"documents": w.domain_docs[d], "tokens": w.domains[d]} for d in sorted(w.domains)}
    data = json.dumps({"fingerprint": fp, "shard": shard, "files": files, "next": list(next_pos)}, sort_keys=True)
    atomic.write_bytes(_marker_path(out, int(w.name.rsplit("-", 1)[1])), data.encode())
    log.info("wrote %s: %d documents, %d tokens", w.name, shard["documents"], shard["tokens"])
    return json.loads(data)  # as a resumed run reads it back, so both write the same manifest


def _write_manifest(out, inputs, info, cfg, fp, markers) -> dict[str, Any]:
    domains: dict[str, Counter] = {}
    for m in markers:
        for d, c in m["shard"].get("domains", {}).items():
            domains.setdefault(d, Counter()).update(c)
    shards = []
    for m in markers:
        bin_entry, idx_entry = m["files"]
        shards.append({**m["shard"], "bin": {k: bin_entry[k] for k in ("path", "bytes", "sha256")},
                       "idx": {k: idx_entry[k] for k in ("path", "bytes", "sha256")}})
    body = {
        "tokenizer": info.to_dict(),
        "dtype": info.dtype,
        "eod_id": info.eod_id,
        "index_format": INDEX_FORMAT,
        "config": cfg.to_dict(),
        "fingerprint": fp,
        "inputs": inputs,
        "counts": {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": len(shards),
            "domains": {d: dict(sorted(c.items())) for d, c in sorted(domains.items())},
        },
        "shards": shards,
    }
    files = [e for m in markers for e in m["files"]]
    files += [manifest.file_entry(out, TOKENIZER_FILE)]
    files += [manifest.file_entry(out, f"{PROGRESS}/{m['shard']['name']}.json") for m in markers]
    return manifest.write_manifest(out, KIND, FORMAT_VERSION, body, files)


def _finished_export(out: str, fp: str) -> dict[str, Any]:
    found = read_export(out, verify=False)
    if found.get("fingerprint") != fp:
        raise IntegrityError(
            f"{out} holds a finished export made from other inputs or settings",
            hint="choose a new output directory, or delete the old export",
        )
    log.info("%s is already a finished export; nothing to do", out)
    return found


# ---------------------------------------------------------------- reading


def read_export(root: str, verify: bool = True) -> dict[str, Any]:
    """An export's manifest; with `verify`, every file's sha256 is checked (the manifest's own always is)."""
    found = manifest.read_manifest(root, KIND, FORMAT_VERSION, verify=False)
    any_manifest(root)
    if verify:
        manifest.verify_files(root, found)
    return found


def check_tokenizer(export: dict[str, Any], tokenizer_json: str | os.PathLike, root: str = "the export") -> None:
    """Refuse a tokenizer other than the one the export was tokenized with."""
    expected = export["tokenizer"]["sha256"]
    given = tokenizer_sha256(tokenizer_json)
    if given != expected:
        raise IntegrityError(
            f"{tokenizer_json} (sha256 {given[:12]}…) is not the tokenizer {root} was made with "
            f"(sha256 {expected[:12]}…)",
            hint=f"use the tokenizer.json saved in {root}, or export again with yours",
        )


@dataclass
class Shard:
    """One opened shard: its tokens (memory-mapped) and where each document ends."""

    path: str
    tokens: np.ndarray
    ends: np.ndarray  # int64 token offset after each document


def open_shard(root: str, entry: dict[str, Any], verify: bool = True) -> Shard:
    """Open a shard named by a manifest `shards` entry; sizes always, sha256 too with `verify`.

    A file shorter or longer than the manifest says, or an index whose lengths
    do not add up to the .bin, raises IntegrityError naming the file.
    """
    for part in ("idx", "bin"):
        f = entry[part]
        path = os.path.join(root, f["path"])
        if not os.path.isfile(path):
            raise IntegrityError(f"{path} is listed in the manifest but missing", hint="export again")
        size = os.path.getsize(path)
        if size != f["bytes"]:
            what = "truncated" if size < f["bytes"] else "longer than the manifest says"
            raise IntegrityError(f"{path} is {what}: {size} bytes, the manifest says {f['bytes']}",
                                 hint="export again; the file was cut short or changed")
        if verify and atomic.sha256_file(path) != f["sha256"]:
            raise IntegrityError(f"{path} does not match its manifest checksum: the file is corrupt or was changed",
                                 hint="export again, or pass verify=False to skip checksums")
    idx_path = os.path.join(root, entry["idx"]["path"])
    bin_path = os.path.join(root, entry["bin"]["path"])
    with open(idx_path, "rb") as f:
        dtype, lengths = decode_index(f.read(), idx_path)
    itemsize = np.dtype(dtype).itemsize
    total = int(lengths.sum())
    if total * itemsize != os.path.getsize(bin_path):
        raise IntegrityError(f"{bin_path} holds {os.path.getsize(bin_path) // itemsize} tokens; "
                             f"its index {idx_path} counts {total}")
    # a plain ndarray view of the map: slicing it skips np.memmap's Python-level __getitem__
    tokens = np.memmap(bin_path, dtype=_LE[dtype], mode="r").view(np.ndarray) if total else np.zeros(0, _LE[dtype])
    return Shard(bin_path, tokens, np.cumsum(lengths))
