"""The run directory: per-input progress markers for resume, and the final manifest.

    RUN/shards/part-FFFFF-NNNN.parquet    kept documents, by input file F
    RUN/dropped/part-FFFFF-NNNN.parquet   dropped documents with stage and reason
    RUN/errors/part-FFFFF-NNNN.parquet    unreadable records with source, offset, error, raw bytes
    RUN/_progress/FFFFF.json              written last for input F: its counts and files
    RUN/manifest.json                     written last for the run

An input file is finished once its marker exists with the same config
fingerprint and input size; a rerun skips writing it. The manifest is written
only when every input is finished and the error fraction is within bounds.
"""

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tamis.errors import InputError, IntegrityError
from tamis.io import atomic, manifest

log = logging.getLogger(__name__)

KIND = "curate_run"
FORMAT_VERSION = 1
# Fields that change how a run is executed but not what it outputs.
_EXECUTION_ONLY = ("output", "runner", "fail_after_shards")


@dataclass(frozen=True)
class InputFile:
    index: int
    path: str
    input_index: int  # which entry of config.inputs named it
    size: int


def fingerprint(config: dict[str, Any]) -> str:
    """What a run's outputs depend on: the config (as a dict) without the fields of how it is executed."""
    body = {k: v for k, v in config.items() if k not in _EXECUTION_ONLY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def marker_path(run: str, index: int) -> str:
    return atomic.join(run, "_progress", f"{index:05d}.json")


def write_marker(run: str, f: InputFile, fp: str, counts: dict[str, Any], files: list[dict[str, Any]]) -> None:
    body = {"input": f.path, "input_size": f.size, "fingerprint": fp, "counts": counts, "files": files}
    atomic.write_bytes(marker_path(run, f.index), json.dumps(body, sort_keys=True).encode())


def read_marker(run: str, f: InputFile, fp: str) -> dict[str, Any] | None:
    """The marker of a finished input, or None if the input must be (re)done."""
    path = marker_path(run, f.index)
    if not atomic.exists(path):
        return None
    with atomic.open_read(path) as fh:
        marker = json.loads(fh.read())
    if marker.get("fingerprint") != fp:
        return None
    if marker.get("input") != f.path or marker.get("input_size") != f.size:
        return None
    for entry in marker["files"]:
        p = atomic.join(run, entry["path"])
        if not atomic.exists(p) or atomic.size(p) != entry["bytes"]:
            return None
    return marker


def markers_fingerprints(run: str) -> set[str]:
    """The config fingerprints of a local run directory's progress markers (empty when it has none)."""
    import glob

    found = set()
    for path in glob.glob(atomic.join(run, "_progress", "*.json")):
        with open(path, "rb") as fh:
            found.add(json.loads(fh.read()).get("fingerprint"))
    return found


def check_reusable(run: str, fp: str) -> None:
    """Refuse to mix outputs of two different configs in one run directory."""
    path = atomic.join(run, manifest.MANIFEST)
    if atomic.exists(path):
        with atomic.open_read(path) as fh:
            old = json.loads(fh.read())
        if old.get("config_fingerprint") != fp:
            raise IntegrityError(
                f"{run} holds a finished run made with another config.",
                hint="choose a new output directory, or delete the old run",
            )


def summarize(markers: dict[int, dict[str, Any]], inputs: list[InputFile]) -> dict[str, Any]:
    """Totals, per-source balance and per-stage/per-reason counts from the input markers."""
    totals: Counter = Counter()
    by_reason: Counter = Counter()
    by_stage: Counter = Counter()
    sources = {}
    for f in inputs:
        c = markers[f.index]["counts"]
        dropped = sum(c["dropped_by_reason"].values())
        balanced = c["read"] == c["kept"] + dropped + c["errors"]
        if not balanced:
            raise IntegrityError(f"counts of {f.path} do not balance: {c}")
        sources[f.path] = {"read": c["read"], "kept": c["kept"], "dropped": dropped, "errors": c["errors"],
                           "skipped_non_document": c.get("skipped", 0), "balanced": balanced}
        totals.update({"read": c["read"], "kept": c["kept"], "dropped": dropped, "errors": c["errors"],
                       "skipped_non_document": c.get("skipped", 0)})
        by_reason.update(c["dropped_by_reason"])
        by_stage.update(c["dropped_by_stage"])
    out = {
        "counts": {**{k: totals[k] for k in ("read", "kept", "dropped", "errors", "skipped_non_document")},
                   "dropped_by_stage": dict(sorted(by_stage.items())),
                   "dropped_by_reason": dict(sorted(by_reason.items()))},
        "sources": sources,
    }
    return out


def finish(
    run: str,
    config: dict[str, Any],
    inputs: list[InputFile],
    seconds: float,
    components: list[str],
    sections: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    made_by: str = "tamis curate",
) -> dict:
    """Check every input is done and errors are within bounds, then write the manifest last.

    `sections` maps the input markers to extra manifest sections (a stage's own report, e.g. decontamination).
    """
    fp = fingerprint(config)
    max_error_fraction = config["max_error_fraction"]
    markers = {}
    for f in inputs:
        m = read_marker(run, f, fp)
        if m is None:
            raise IntegrityError(f"input {f.path} has no finished output in {run}", hint="rerun to resume")
        markers[f.index] = m
    summary = summarize(markers, inputs)
    counts = summary["counts"]
    if counts["read"] and counts["errors"] / counts["read"] > max_error_fraction:
        raise InputError(
            f"{counts['errors']} of {counts['read']} records were unreadable "
            f"({counts['errors'] / counts['read']:.2%} > max_error_fraction {max_error_fraction:.2%}); "
            f"the run is not marked complete.",
            hint=f"see {atomic.join(run, 'errors')} for each bad record, or raise max_error_fraction",
        )
    files = [e for f in inputs for e in markers[f.index]["files"]]
    files += [manifest.file_entry(run, f"_progress/{f.index:05d}.json") for f in inputs]
    shards = [e for e in files if e["path"].startswith("shards/")]
    body = {
        "made_by": made_by,
        "config": config,
        "config_fingerprint": fp,
        "components": components,
        "seconds": round(seconds, 3),
        **summary,
        **(sections([markers[f.index] for f in inputs]) if sections else {}),
        "shards": [{k: e[k] for k in ("path", "rows", "bytes")} for e in shards],
    }
    log.info("writing manifest for %d inputs, %d shards", len(inputs), len(shards))
    return manifest.write_manifest(run, KIND, FORMAT_VERSION, body, files)


def load(run: str, verify: bool = True) -> dict[str, Any]:
    return manifest.read_manifest(run, KIND, FORMAT_VERSION, verify=verify)
