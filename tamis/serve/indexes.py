"""The indexes a service holds: opened by the kind their manifest names, verified, and picked per request.

Each index is served under its folder name. Opening reads the manifest's
`kind` and calls that kind's loader with full verification (every file's
sha256), so a damaged index stops the service at start-up, not mid-request.
Loaders memory-map read-only; nothing here writes. A request names an index
only by its served name (never a path), and a retriever kind.

A BM25 and a dense index that hold the same document ids form a hybrid pair
(tamis.retrievers.hybrid); with one pair served, `retriever: hybrid` needs no
index name.

Each served index searches on its own thread, one search at a time, and the
requests for it queue there (bounded by the service's max_inflight). A BM25
search holds the GIL for most of its time, so two searches of one index at
once only interleave, evict each other's cache and pay for thread switches
(measured: 8 threads on one retriever answer about half the queries/s of 1);
one thread per index keeps its memory warm, and different indexes still
search in parallel. The dense lock also covers a hybrid search, which runs
on its BM25 index's thread and uses the dense encoder.
"""

import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tamis.embeddings import Device
from tamis.errors import ConfigError, IntegrityError
from tamis.io import manifest
from tamis.retrievers.hybrid import HybridConfig, HybridRetriever, doc_ids, ids_digest

log = logging.getLogger(__name__)

SEARCH_KINDS = ("bm25", "dense")


class RequestError(Exception):
    """A request the catalog cannot answer as asked (unknown index, retriever not served): a 4xx, never a 500."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class Served:
    name: str  # the folder name, how requests pick it
    kind: str  # bm25 | dense | code
    path: str
    handle: Any  # BM25Retriever, DenseRetriever or CodeIndex
    docs: int
    digest: str = ""  # sha256 of the sorted document ids (search indexes)
    filter_fields: frozenset[str] = frozenset()  # BM25: docstore string columns and meta keys
    # dense: one encoder and one FAISS search at a time, from its own thread or a hybrid's (GPU FAISS is not thread-safe)
    lock: Any = field(default_factory=threading.Lock)
    runner: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="tamis-search"))
    manifest_sha256: str = ""

    def describe(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "docs": self.docs, "manifest_sha256": self.manifest_sha256}
        if self.kind == "bm25":
            out["filter_fields"] = sorted(self.filter_fields)
        return out


def _open(path: str, kind: str, device: Device) -> Any:
    """A code index, or the retriever the registry opens for a search index; every file verified."""
    if kind == "code-index":
        from tamis.code import store

        return store.load(path, verify=True)
    from tamis.retrievers.registry import open_retriever

    return open_retriever(path, verify=True, device=device)


SERVED_KINDS = {"bm25-index": "bm25", "dense-index": "dense", "code-index": "code"}  # manifest kind -> served kind


def _filter_fields(retriever) -> frozenset[str]:
    """What a BM25 request may filter on: the docstore's string columns (not text) and every key of `meta`.

    Fixed at start-up, so a request cannot make the retriever cache a column per invented field name.
    """
    fields: set[str] = set()
    for shard in retriever.index.shards:
        docs = shard.docs
        fields |= {f.name for f in docs.schema if f.name not in ("text", "meta") and str(f.type) in ("string", "large_string")}
        if "meta" in docs.column_names:
            for m in docs["meta"].to_pylist():
                if m:
                    found = json.loads(m)
                    if isinstance(found, dict):
                        fields |= set(found)
    return frozenset(fields)


def open_index(path: str, device: Device = "auto") -> Served:
    """Open one index folder by its manifest's kind, verifying every file."""
    path = path.rstrip("/") or "/"
    found = manifest.read_any(path)
    kind = found.get("kind")
    if kind not in SERVED_KINDS:
        raise ConfigError(f"{path} holds a {kind!r}; the service serves {', '.join(SERVED_KINDS)}.",
                          hint="give an index folder built by `tamis index bm25|dense|code`")
    served_kind, handle = SERVED_KINDS[kind], _open(path, kind, device)
    s = Served(path.rsplit("/", 1)[-1], served_kind, path, handle, 0, manifest_sha256=found.get(manifest.SELF_SHA, ""))
    if served_kind == "code":
        s.docs = sum(len(r.paths) for r in handle.repos.values())
        return s
    ids = doc_ids(handle)
    s.docs, s.digest = len(ids), ids_digest(ids)
    if served_kind == "bm25":
        s.filter_fields = _filter_fields(handle)
    return s


@dataclass
class Catalog:
    """The served indexes by name, the hybrid pairs among them, and how a request picks one."""

    indexes: dict[str, Served]
    hybrid: HybridConfig = field(default_factory=HybridConfig)
    pairs: list[tuple[str, str, HybridRetriever]] = field(default_factory=list)  # (bm25 name, dense name, fused)

    @classmethod
    def open(cls, paths: list[str], device: Device = "auto", hybrid: HybridConfig | None = None) -> "Catalog":
        if not paths:
            raise ConfigError("serve needs at least one index.", hint="pass --index DIR")
        served = [open_index(p, device) for p in paths]
        return cls.of(served, hybrid)

    @classmethod
    def of(cls, served: list[Served], hybrid: HybridConfig | None = None) -> "Catalog":
        names = [s.name for s in served]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"Two served indexes have the folder name {twice[0]!r}; requests pick indexes by it.",
                              hint="serve folders with distinct names (rename or link one)")
        cat = cls({s.name: s for s in served}, hybrid or HybridConfig())
        for a in served:
            for b in served:
                if a.kind == "bm25" and b.kind == "dense" and a.digest == b.digest:
                    try:
                        cat.pairs.append((a.name, b.name, HybridRetriever(a.handle, b.handle, cat.hybrid)))
                    except IntegrityError:  # cannot happen with equal digests; keep them unpaired if it does
                        continue
        for a_name, b_name, _ in cat.pairs:
            log.info("serving hybrid of %s (bm25) and %s (dense)", a_name, b_name)
        return cat

    def search_indexes(self) -> list[Served]:
        return [s for s in self.indexes.values() if s.kind in SEARCH_KINDS]

    def retrievers(self) -> list[str]:
        kinds = {s.kind for s in self.search_indexes()}
        return [k for k in ("bm25", "dense") if k in kinds] + (["hybrid"] if self.pairs else [])

    def _named(self, index: str) -> Served:
        if index not in self.indexes:
            raise RequestError(f"No index named {index!r} is served; served: {', '.join(sorted(self.indexes))}.", 404)
        return self.indexes[index]

    def _pair(self, index: str | None) -> tuple[str, Callable, ThreadPoolExecutor]:
        pairs = [p for p in self.pairs if index is None or index in p[:2]]
        if not self.pairs:
            raise RequestError("The hybrid retriever needs a BM25 and a dense index over the same documents; "
                               f"none is served (served: {', '.join(sorted(self.indexes))}).")
        if not pairs:
            raise RequestError(f"Index {index!r} is not part of a BM25 + dense pair; pairs: "
                               f"{', '.join(f'{a}+{b}' for a, b, _ in self.pairs)}.")
        if len(pairs) > 1:
            raise RequestError("Several hybrid pairs are served; name one of its indexes in 'index' "
                               f"({', '.join(f'{a}+{b}' for a, b, _ in pairs)}).")
        a, b, fused = pairs[0]
        lock = self.indexes[b].lock

        def search(queries, k, where):
            if where:
                raise RequestError("'filter' is supported by the bm25 retriever only.")
            with lock:
                return fused.search(queries, k)

        return f"{a}+{b}", search, self.indexes[a].runner

    def searcher(self, retriever: str | None, index: str | None) -> tuple[str, str, Callable, ThreadPoolExecutor]:
        """(index name, retriever kind, search(queries, k, where) -> (ids, scores), the thread to run it on)."""
        if retriever == "hybrid" or (retriever is None and index is None and self._only_a_pair()):
            name, fn, runner = self._pair(index)
            return name, "hybrid", fn, runner
        if index is not None:
            s = self._named(index)
            if s.kind not in SEARCH_KINDS:
                raise RequestError(f"Index {index!r} is a {s.kind} index; search needs a bm25 or dense index.")
            if retriever is not None and retriever != s.kind:
                raise RequestError(f"Index {index!r} is a {s.kind} index, not {retriever}.")
        else:
            found = [s for s in self.search_indexes() if retriever is None or s.kind == retriever]
            if len(found) != 1:
                what = f"{retriever} index" if retriever else "search index"
                names = ", ".join(sorted(s.name for s in found)) or "none"
                raise RequestError(f"{'No' if not found else 'More than one'} {what} is served ({names}); "
                                   "name one in 'index'" + (" or choose 'retriever'" if not retriever else "") + ".")
            s = found[0]
        return s.name, s.kind, self._search_fn(s), s.runner

    def _only_a_pair(self) -> bool:
        search = self.search_indexes()
        return len(self.pairs) == 1 and len(search) == 2

    def _search_fn(self, s: Served) -> Callable:
        if s.kind == "bm25":
            def search(queries, k, where):
                if where:
                    unknown = sorted(set(where) - s.filter_fields)
                    if unknown:
                        raise RequestError(f"Index {s.name!r} cannot filter on {unknown[0]!r}; its fields: "
                                           f"{', '.join(sorted(s.filter_fields)) or 'none'}.")
                return s.handle.search(queries, k, where=where)
            return search

        def dense_search(queries, k, where):
            if where:
                raise RequestError("'filter' is supported by the bm25 retriever only.")
            with s.lock:
                return s.handle.search(queries, k)
        return dense_search

    def code_index(self, index: str | None) -> Served:
        if index is not None:
            s = self._named(index)
            if s.kind != "code":
                raise RequestError(f"Index {index!r} is a {s.kind} index, not a code index.")
            return s
        found = [s for s in self.indexes.values() if s.kind == "code"]
        if len(found) != 1:
            raise RequestError("No code index is served." if not found else
                               f"More than one code index is served ({', '.join(s.name for s in found)}); "
                               "name one in 'index'.", 404 if not found else 400)
        return found[0]

    def describe(self) -> dict[str, Any]:
        return {"indexes": [s.describe() for s in self.indexes.values()], "retrievers": self.retrievers(),
                "hybrid_pairs": [{"bm25": a, "dense": b} for a, b, _ in self.pairs]}
