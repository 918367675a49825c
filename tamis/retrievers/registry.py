"""Open any index folder as a retriever, chosen by the `kind` its manifest records.

Each index kind is one entry of OPENERS: the manifest kind -> "module:Class",
a class whose `open(root, verify=True)` returns a Retriever (see base.py).
Modules are imported only when their kind is opened, so opening a BM25 index
never loads FAISS or torch. A dense or hybrid index plugs into `tamis search`
and everything else that opens indexes by adding its line here.
"""

import importlib
import json
import os

from tamis.errors import InputError, IntegrityError
from tamis.io.manifest import MANIFEST
from tamis.retrievers.base import Retriever

OPENERS = {
    "bm25-index": "tamis.retrievers.bm25:BM25Retriever",
    "dense-index": "tamis.retrievers.dense:DenseRetriever",
}
ON_DEVICE = {"dense-index"}  # kinds whose retriever runs a model, placed by the `device` option


def index_kind(root: str) -> str:
    """The kind recorded in `root`'s manifest (read, not verified: the opener verifies)."""
    if not os.path.isdir(root):
        raise InputError(f"Index directory {root} does not exist.", hint="check the --index path")
    path = os.path.join(root, MANIFEST)
    if not os.path.isfile(path):
        raise InputError(
            f"{root} has no {MANIFEST}: it is not a finished index.",
            hint="build one with `tamis index bm25`, or rerun an interrupted build",
        )
    try:
        with open(path, encoding="utf-8") as f:
            found = json.load(f)
    except (OSError, ValueError) as e:
        raise IntegrityError(f"{path} is not readable JSON ({e})", hint="rebuild the index") from e
    kind = found.get("kind") if isinstance(found, dict) else None
    if not isinstance(kind, str):
        raise IntegrityError(f"{path} records no index kind", hint="rebuild the index")
    return kind


def open_retriever(root: str, verify: bool = True, device: str = "auto") -> Retriever:
    """The retriever for the index at `root`; by default every file's checksum is verified first."""
    kind = index_kind(root)
    if kind not in OPENERS:
        raise InputError(
            f"{root} holds a {kind!r}, which no retriever opens (known kinds: {', '.join(sorted(OPENERS))}).",
            hint="point --index at an index folder",
        )
    module_name, _, class_name = OPENERS[kind].partition(":")
    options = {"device": device} if kind in ON_DEVICE else {}
    return getattr(importlib.import_module(module_name), class_name).open(root, verify=verify, **options)
