"""The run directory: per-input progress markers for resume, and the final manifest.

    RUN/shards/part-FFFFF-NNNN.parquet    kept documents, by input file F
    RUN/dropped/part-FFFFF-NNNN.parquet   dropped documents with stage and reason
    RUN/errors/part-FFFFF-NNNN.parquet    unreadable records with source, offset, error, raw bytes
    RUN/_progress/FFFFF.KIND.arrow        input F's dedup signatures (exact and near dedup on), before its marker
    RUN/_progress/FFFFF.json              written last for input F: its counts and files
    RUN/manifest.json                     written last for the run

An input file is finished once its marker exists with the same config
fingerprint and input size and every file it lists still has its sha256; a
rerun skips writing it. Before a rerun writes anything, `clean` removes what a
killed attempt left (temporary files, outputs no valid marker lists, spilled
batches). A directory holding another config's work, finished or not, is
refused. With exact or near dedup, a marker also names the input's kept dedup
signatures (tamis.dedup.signatures), listed with their sha256 like any file,
which a resume joins instead of rereading the input (docs/run_dir.md).
The manifest is written only when every input is finished, the error
fraction is within bounds and no input was cut short (unless the config
accepts truncated inputs); a finished run is never rewritten.
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
FORMAT_VERSION = 2  # 2: error rows say what their offset counts; truncated and empty inputs counted
# Fields that change how a run is executed, or whether it may finish, but not what it outputs.
_EXECUTION_ONLY = ("output", "runner", "fail_after_shards", "max_error_fraction", "accept_truncated")
OUTPUT_FOLDERS = ("shards", "dropped", "errors", "_progress")
SCRATCH = "_spill"  # a local run's scratch space (tamis.pipelines.spill)


@dataclass(frozen=True)
class InputFile:
    index: int
    path: str
    input_index: int  # which entry of config.inputs named it
    size: int


@dataclass(frozen=True)
class RunShard:
    """One shard of a finished curate run as its manifest lists it: what the pipelines that read runs (mix,
    augment) take as their units of work."""

    index: int
    run: str
    path: str
    rows: int
    bytes: int
    sha256: str

    @property
    def file(self) -> str:
        return atomic.join(self.run, self.path)

    @property
    def input(self) -> InputFile:
        return InputFile(self.index, self.file, 0, self.bytes)


def run_shards(run: str, found: dict[str, Any], start: int = 0) -> list[RunShard]:
    """The shards of `run` (its loaded manifest `found`), numbered from `start`."""
    entries = {e["path"]: e for e in found["files"]}
    return [RunShard(start + i, run, s["path"], s["rows"], entries[s["path"]]["bytes"], entries[s["path"]]["sha256"])
            for i, s in enumerate(found["shards"])]


def fingerprint(config: dict[str, Any]) -> str:
    """What a run's outputs depend on: the config (as a dict) without the fields of how it is executed."""
    body = {k: v for k, v in config.items() if k not in _EXECUTION_ONLY}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def marker_path(run: str, index: int) -> str:
    return atomic.join(run, "_progress", f"{index:05d}.json")


def write_marker(run: str, f: InputFile, fp: str, counts: dict[str, Any], files: list[dict[str, Any]],
                 signatures: dict[str, str] | None = None) -> None:
    """`signatures`: kind → path of the input's kept dedup signatures (also listed, with checksums, in `files`)."""
    body = {"index": f.index, "input": f.path, "input_size": f.size, "fingerprint": fp, "counts": counts,
            "files": files}
    if signatures:
        body["signatures"] = signatures
    atomic.write_bytes(marker_path(run, f.index), json.dumps(body, sort_keys=True).encode())


def _markers(run: str) -> dict[str, dict[str, Any]]:
    """Every progress marker in the run, by path; an unreadable one maps to {}."""
    out = {}
    for path in atomic.glob(atomic.join(run, "_progress", "*.json")):
        try:
            with atomic.open_read(path) as fh:
                out[path] = json.loads(fh.read())
        except ValueError:
            out[path] = {}
    return out


def read_marker(run: str, f: InputFile, fp: str, verify: bool = True) -> dict[str, Any] | None:
    """The marker of a finished input, or None if the input must be (re)done.

    With `verify`, every file the marker lists must still match its sha256: a
    rerun reuses nothing it has not checked. Without, sizes only (for markers
    this process just wrote).
    """
    path = marker_path(run, f.index)
    if not atomic.exists(path):
        return None
    with atomic.open_read(path) as fh:
        try:
            marker = json.loads(fh.read())
        except ValueError:
            log.warning("%s is not valid JSON: input %s is redone", path, f.path)
            return None
    if marker.get("fingerprint") != fp:
        return None
    if marker.get("input") != f.path or marker.get("input_size") != f.size:
        return None
    for entry in marker["files"]:
        p = atomic.join(run, entry["path"])
        if not atomic.exists(p) or atomic.size(p) != entry["bytes"] or (
            verify and atomic.sha256_file(p) != entry["sha256"]
        ):
            log.warning("%s is missing or fails its checksum: input %s is redone", p, f.path)
            return None
    return marker


def markers_fingerprints(run: str) -> set[str]:
    """The config fingerprints of a run directory's progress markers (empty when it has none)."""
    return {m.get("fingerprint") for m in _markers(run).values()}


def finished(run: str, fp: str) -> dict[str, Any] | None:
    """The verified manifest of a finished run made with this config, or None when the run is not finished.

    Refuses (IntegrityError) a directory holding another config's work, finished
    or not, and a finished run whose files fail their checksums: a rerun never
    hides damage by rewriting the manifest.
    """
    path = atomic.join(run, manifest.MANIFEST)
    if atomic.exists(path):
        with atomic.open_read(path) as fh:
            try:
                old = json.loads(fh.read())
            except ValueError:
                old = {}
        if old.get("config_fingerprint") != fp:
            raise IntegrityError(
                f"{run} holds a finished run made with another config.",
                hint="choose a new output directory, or delete the old run",
            )
        problems = manifest.problems(run, old)
        if problems:
            raise IntegrityError(
                f"{run} is a finished run, but {len(problems)} of its files fail verification: {'; '.join(problems[:5])}",
                hint=f"see `tamis verify {run}`; delete the damaged files and manifest.json to redo their inputs",
            )
        return old
    others = markers_fingerprints(run) - {fp}
    if others:
        raise IntegrityError(
            f"{run} holds an unfinished run made with another config.",
            hint="rerun it with its own config, choose a new output directory, or delete the old run",
        )
    return None


def clean(run: str, done: list[dict[str, Any]]) -> None:
    """Remove what a killed attempt left: temporary files, outputs and markers that no finished input's
    marker lists (they are rewritten), and the scratch folder. Only ever called with this config's markers."""
    keep = {atomic.join(run, e["path"]) for m in done for e in m["files"]}
    keep |= {marker_path(run, int(m["index"])) for m in done}
    for folder in OUTPUT_FOLDERS:
        for path in atomic.glob(atomic.join(run, folder, "*")):
            if path not in keep:
                log.info("removing %s, left by an interrupted attempt", path)
                atomic.delete(path)
    for path in atomic.glob(atomic.join(run, "*.tmp-*")):
        atomic.delete(path)
    scratch = atomic.join(run, SCRATCH)
    if not atomic.is_remote(run) and atomic.exists(scratch):
        atomic.remove_tree(scratch)


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
        if c.get("truncated"):
            sources[f.path].update(truncated=True, unread_bytes=c["unread_bytes"])
        if c.get("empty"):
            sources[f.path]["empty"] = True
        totals.update({"read": c["read"], "kept": c["kept"], "dropped": dropped, "errors": c["errors"],
                       "skipped_non_document": c.get("skipped", 0), "empty_inputs": int(bool(c.get("empty"))),
                       "truncated_inputs": int(bool(c.get("truncated"))), "unread_bytes": c.get("unread_bytes", 0)})
        by_reason.update(c["dropped_by_reason"])
        by_stage.update(c["dropped_by_stage"])
    out = {
        "counts": {**{k: totals[k] for k in ("read", "kept", "dropped", "errors", "skipped_non_document",
                                             "empty_inputs", "truncated_inputs", "unread_bytes")},
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
        m = read_marker(run, f, fp, verify=False)  # reused markers were verified at plan time
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
    cut = {path: s["unread_bytes"] for path, s in summary["sources"].items() if s.get("truncated")}
    if cut and not config.get("accept_truncated", False):
        first = next(iter(cut))
        raise InputError(
            f"{len(cut)} input(s) could not be read to their end (truncated or corrupt), e.g. {first} "
            f"({cut[first]:,} bytes unread); the documents after the damage are lost and cannot be counted, "
            f"so the run is not marked complete.",
            hint="repair or re-download those files, or set accept_truncated: true to accept what could be read",
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


def verify_inputs(paths: list[str]) -> list[str]:
    """Before a command reads files of a curate run (RUN/shards/*.parquet), verify each such run once.

    A file inside a run directory must be listed in the run's manifest and the
    whole run must verify (IntegrityError otherwise): a stale shard left by an
    older attempt, or a damaged one, is never read. Returns the runs verified;
    files outside any run pass through unchecked.
    """
    runs: dict[str, set[str]] = {}
    for path in paths:
        folder = path.rsplit("/", 2)
        if len(folder) == 3 and folder[1] in ("shards", "dropped", "errors"):
            run = folder[0] or "/"
            if atomic.exists(atomic.join(run, manifest.MANIFEST)) or atomic.exists(atomic.join(run, "_progress")):
                runs.setdefault(run, set()).add(f"{folder[1]}/{folder[2]}")
    for run, wanted in runs.items():
        found = load(run, verify=True)
        listed = {e["path"] for e in found["files"]}
        stale = sorted(wanted - listed)
        if stale:
            raise IntegrityError(
                f"{atomic.join(run, stale[0])} is not part of the finished run {run} (not in its manifest)",
                hint="it was left by an earlier attempt: delete it, or read the run's shards by its manifest",
            )
    return sorted(runs)
