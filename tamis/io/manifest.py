"""Self-describing artifact directories: a manifest.json written last, verified on load.

Every run or index directory holds `manifest.json` with its kind, format version,
the versions of the software that wrote it and the size and sha256 of every file.
The directory counts as complete only once the manifest exists.
"""

import hashlib
import json
import platform
from importlib import metadata
from typing import Any

from tamis import __version__
from tamis.errors import IntegrityError
from tamis.io import atomic

MANIFEST = "manifest.json"
SELF_SHA = "manifest_sha256"  # of the manifest's own content, so a changed byte in it is refused too
# Views made from a finished directory after its manifest (the HTML run report, tamis.report): nothing reads
# them back, and they can be rewritten at any time, so they are neither listed nor reported as stale.
REPORT = "report.html"
DERIVED = (REPORT,)
_PACKAGES = ("apache-beam", "pyarrow", "numpy", "faiss-cpu", "faiss-gpu", "sentence-transformers")


def versions() -> dict[str, str]:
    """Versions of tamis, Python and the packages whose behaviour shapes an artifact."""
    found = {"tamis": __version__, "python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def file_entry(root: str, rel: str) -> dict[str, Any]:
    path = atomic.join(root, rel)
    return {"path": rel, "bytes": atomic.size(path), "sha256": atomic.sha256_file(path)}


def write_manifest(
    root: str, kind: str, format_version: int, body: dict[str, Any], files: list[str] | list[dict]
) -> dict[str, Any]:
    """Checksum `files` (paths relative to root, or entries already computed) and write the manifest last."""
    entries = [f if isinstance(f, dict) else file_entry(root, f) for f in files]
    manifest = {
        "kind": kind,
        "format_version": format_version,
        "versions": versions(),
        **body,
        "files": sorted(entries, key=lambda e: e["path"]),
    }
    manifest[SELF_SHA] = _self_sha256(manifest)
    atomic.write_bytes(atomic.join(root, MANIFEST), json.dumps(manifest, indent=1, sort_keys=False).encode())
    return manifest


def read_any(root: str, check_self: bool = True) -> dict[str, Any]:
    """The manifest of a directory of any kind, parsed; with `check_self`, its own checksum is checked
    (its files are not: `problems` or `verify_files` do that)."""
    path = atomic.join(root, MANIFEST)
    if not atomic.exists(path):
        raise IntegrityError(
            f"{root} has no {MANIFEST}: it is not a finished tamis run, index or export",
            hint="an interrupted command is finished by running it again",
        )
    with atomic.open_read(path) as f:
        try:
            found = json.loads(f.read())
        except ValueError as e:  # JSONDecodeError, or UnicodeDecodeError for bytes that are not UTF-8
            raise IntegrityError(f"{path} is not valid JSON ({e})") from e
    if not isinstance(found, dict) or "files" not in found:
        raise IntegrityError(f"{path} is not a tamis manifest")
    if check_self:
        _check_self(root, found)
    return found


def _check_self(root: str, manifest: dict[str, Any]) -> None:
    if SELF_SHA in manifest and manifest[SELF_SHA] != _self_sha256(manifest):
        raise IntegrityError(f"{atomic.join(root, MANIFEST)} does not match its own checksum: it is corrupt or was edited")


def read_manifest(root: str, kind: str, max_format_version: int, verify: bool = True) -> dict[str, Any]:
    """Load and check a manifest: right kind, a format this code can read, and (by default) every checksum."""
    manifest = read_any(root, check_self=False)  # kind and version first: their message says the most
    if manifest.get("kind") != kind:
        raise IntegrityError(f"{root} holds a {manifest.get('kind')!r}, not a {kind!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > max_format_version:
        raise IntegrityError(
            f"{root} has format version {version}; this tamis reads up to {max_format_version}",
            hint="upgrade tamis to read it",
        )
    if verify:
        _check_self(root, manifest)
        verify_files(root, manifest)
    return manifest


def _self_sha256(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != SELF_SHA}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def verify_files(root: str, manifest: dict[str, Any]) -> None:
    for entry in manifest["files"]:
        path = atomic.join(root, entry["path"])
        if not atomic.exists(path):
            raise IntegrityError(f"{path} is listed in the manifest but missing")
        if atomic.size(path) != entry["bytes"] or atomic.sha256_file(path) != entry["sha256"]:
            raise IntegrityError(
                f"{path} does not match its manifest checksum: the file is corrupt or was changed",
                hint="rebuild the artifact",
            )


def derived(rel: str) -> bool:
    """A DERIVED view, or the temporary file of one whose writing was cut short (its next write removes it)."""
    return rel in DERIVED or any(rel.startswith(f"{name}.tmp-") for name in DERIVED)


def problems(root: str, manifest: dict[str, Any]) -> list[str]:
    """Every way the directory differs from its manifest ("path: what"), empty when it verifies.

    Checks the manifest's own checksum, then every listed file (missing, size,
    sha256), then files present but not listed (a stale file a glob would pick up), except DERIVED views
    and nested artifacts: a first-level folder with a manifest of its own and none of this one's files
    (a mix's token export, the demo's mix inside its run) is verified by its own manifest, not this one.
    """
    out = []
    if SELF_SHA in manifest and manifest[SELF_SHA] != _self_sha256(manifest):
        out.append(f"{MANIFEST}: does not match its own checksum (edited or corrupt)")
    listed = set()
    for entry in manifest.get("files", []):
        listed.add(entry["path"])
        path = atomic.join(root, entry["path"])
        if not atomic.exists(path):
            out.append(f"{entry['path']}: missing")
        elif atomic.size(path) != entry["bytes"]:
            out.append(f"{entry['path']}: {atomic.size(path)} bytes, the manifest says {entry['bytes']}")
        elif atomic.sha256_file(path) != entry["sha256"]:
            out.append(f"{entry['path']}: sha256 differs from the manifest's")
    prefix = atomic.join(root, "")
    present = [path[len(prefix):] if path.startswith(prefix) else path for path in atomic.glob(atomic.join(root, "**", "*"))]
    folders_listed = {p.split("/", 1)[0] for p in listed if "/" in p}
    nested = {p.split("/", 1)[0] for p in present if p.count("/") == 1 and p.endswith(f"/{MANIFEST}")} - folders_listed
    for rel in present:
        if rel != MANIFEST and rel not in listed and not derived(rel) and rel.split("/", 1)[0] not in nested:
            out.append(f"{rel}: not in the manifest")
    return out
