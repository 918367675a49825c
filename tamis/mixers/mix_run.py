"""The mix run directory, and how later stages (the tokenized export, the training loader) read it in blend order.

    RUN/shards/part-JJJJJ-0000.parquet   samples in blend order: shard J holds the positions after shard J-1's
    RUN/_progress/JJJJJ.json             written last for shard J: its fingerprint, file entry and token counts
    RUN/_work/                           scratch while running: per-input token counts and the plan (removed at the end)
    RUN/manifest.json                    written last: targets vs achieved per domain, tokenizer, sha256 of every file

Each row is one sample: `position` (its place in the blend, 0..N-1 across the
run), `sample_id` (`<id>#<repeat>`, stable and distinct for repeats), `id`,
`domain`, `epoch` (the repeat, 0 for a first copy), `tokens`, `text`, `source`, `meta`.
"""

import hashlib
import json
from typing import Any

import pyarrow as pa

from tamis.errors import IntegrityError
from tamis.io import atomic, manifest

KIND = "mix_run"
FORMAT_VERSION = 1
SHARDS = "shards"
PROGRESS = "_progress"
WORK = "_work"

SCHEMA = pa.schema(
    [
        pa.field("position", pa.int64(), nullable=False),
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("id", pa.string(), nullable=False),
        pa.field("domain", pa.string(), nullable=False),
        pa.field("epoch", pa.int32(), nullable=False),
        pa.field("tokens", pa.int32(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("meta", pa.string()),
    ]
)


def shard_rel(index: int) -> str:
    return f"{SHARDS}/part-{index:05d}-0000.parquet"


def marker_path(run: str, index: int) -> str:
    return atomic.join(run, PROGRESS, f"{index:05d}.json")


def write_marker(run: str, index: int, fingerprint: str, body: dict[str, Any]) -> None:
    atomic.write_bytes(marker_path(run, index), json.dumps({"fingerprint": fingerprint, **body}, sort_keys=True).encode())


def read_marker(run: str, index: int, fingerprint: str) -> dict[str, Any] | None:
    """The marker of a finished output shard, or None if the shard must be (re)written."""
    path = marker_path(run, index)
    if not atomic.exists(path):
        return None
    with atomic.open_read(path) as f:
        marker = json.loads(f.read())
    if marker.get("fingerprint") != fingerprint:
        return None
    entry = marker["file"]
    p = atomic.join(run, entry["path"])
    if not atomic.exists(p) or atomic.size(p) != entry["bytes"]:
        return None
    return marker


def fingerprint(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def load(run: str, verify: bool = True) -> dict[str, Any]:
    """The manifest of a finished mix run; with `verify`, every file's sha256 is checked first."""
    return manifest.read_manifest(run, KIND, FORMAT_VERSION, verify=verify)


def shard_paths(run: str, mix_manifest: dict[str, Any]) -> list[str]:
    """The mixture's Parquet shards in blend order: what a tokenized export reads, one after another."""
    return [atomic.join(run, s["path"]) for s in mix_manifest["shards"]]


def export_inputs(run: str, verify: bool = True) -> tuple[list[str], str, dict[str, Any]]:
    """What a tokenized export of a finished mix needs: (shard paths in blend order, tokenizer.json, manifest).

    The tokenizer is the one the budget was counted with, refused if it has
    changed since or if the mix only approximated its counts. The export then
    tokenizes the shards one after another, so its documents keep the blend order:
    `token_shards.export_tokens(paths, out_dir, tokenizer_json)`.
    """
    m = load(run, verify=verify)
    tok = m["tokenizer"]
    if tok.get("kind") != "tokenizer.json":
        raise IntegrityError(
            f"{run} counted tokens with an approximation ({tok}), so it names no tokenizer to export with",
            hint="set tokenizer.path in the mix config, or give the export a tokenizer.json",
        )
    if not atomic.exists(tok["path"]) or atomic.sha256_file(tok["path"]) != tok["sha256"]:
        raise IntegrityError(f"the tokenizer {tok['path']} is missing or changed since {run} was mixed",
                             hint="restore it, or remix with the tokenizer you mean to train with")
    return shard_paths(run, m), tok["path"], m
