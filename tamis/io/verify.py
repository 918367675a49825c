"""Verify any directory tamis wrote: its manifest's own checksum, every listed file, nothing unlisted.

All artifact directories share one manifest layout (tamis.io.manifest), so one
verifier covers curate runs, BM25 and dense indexes, exports and mixes. The
format version is checked against `readable` (kind -> the newest version this
tamis reads), which the caller assembles from the parts that own the kinds.
"""

import os
from typing import Any

from tamis.errors import InputError
from tamis.io import atomic, manifest


def verify(root: str, readable: dict[str, int] | None = None) -> dict[str, Any]:
    """{kind, format_version, files, problems}: problems is empty when the directory verifies."""
    if not atomic.is_remote(root) and not os.path.isdir(root):
        raise InputError(f"{root} is not a directory.", hint="give a run or index directory")
    found = manifest.read_any(root, check_self=False)  # a wrong self-checksum is listed with the other problems
    kind, version = found.get("kind"), found.get("format_version")
    problems = []
    newest = (readable or {}).get(kind)
    if newest is not None and (not isinstance(version, int) or version > newest):
        problems.append(f"{manifest.MANIFEST}: format version {version} of {kind}; this tamis reads up to {newest}")
    problems += manifest.problems(root, found)
    return {"directory": root, "kind": kind, "format_version": version, "files": len(found["files"]),
            "problems": problems}
