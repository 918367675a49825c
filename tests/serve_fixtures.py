"""Indexes and fakes the service tests share: a real BM25 index, a code index, a blocking retriever."""

import threading
from pathlib import Path

import numpy as np
from bm25_fixtures import real_corpus
from code_fixtures import FILES

from tamis.code.index import build as build_code
from tamis.code.ingest import IngestConfig, from_items
from tamis.code.store import save as save_code
from tamis.indexes import bm25
from tamis.serve.indexes import Served

TOKEN = "s3cret-token-for-tests-0123456789"


def bm25_dir(shared_data: Path, root: Path, name: str = "web") -> Path:
    """300 real documents (web pages and source files; `source` is web or code), saved as a BM25 index."""
    out = root / name
    if not (out / "manifest.json").exists():
        bm25.save(bm25.build(real_corpus(shared_data), bm25.BM25Config(shard_docs=120)), str(out))
    return out


def code_dir(root: Path, name: str = "code") -> Path:
    out = root / name
    if not (out / "manifest.json").exists():
        repo = from_items("proj", [(p, t.encode()) for p, t in FILES.items()], IngestConfig())
        index = build_code(repo)
        save_code(str(out), [index], index.config)
    return out


class Blocking:
    """A retriever whose searches wait until `release` is set: requests stay in flight as long as a test wants."""

    def __init__(self):
        self.release = threading.Event()
        self.started = threading.Semaphore(0)
        self.index = type("I", (), {"ids": ["a", "b"]})()

    def search(self, queries, k=10, where=None):
        self.started.release()
        self.release.wait(timeout=30)
        return [["a"] for _ in queries], [np.asarray([1.0]) for _ in queries]


def blocking_served(name: str = "slow") -> tuple[Served, Blocking]:
    fake = Blocking()
    return Served(name, "bm25", "-", fake, 2, digest="x"), fake
