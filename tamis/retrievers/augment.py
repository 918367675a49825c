"""Retrieval augmentation, the pure part: chunk documents, retrieve each chunk's neighbours, drop the ones that leak.

A training example of retrieval-augmented pretraining (RETRO and its kin) is
a chunk of a document plus the k passages retrieved for it. A neighbour must
not hand the model its own answer, so four kinds of candidates are excluded,
checked in this order and counted by the first reason that applies:

- `self`: the chunk's own document;
- `near_dup`: a document in the same duplicate cluster as the chunk's
  document, from a curate run's dropped/ rows (exact, near and semantic dedup
  record `dup_of`, the kept document), joined transitively;
- `contaminated`: a document sharing a word n-gram with a benchmark test item
  (tamis.dedup.decontam, the decontamination stage's own matcher);
- `overlap`: a document whose word n-gram shingles cover at least `threshold`
  of the chunk's (`containment`, the default: a neighbour that quotes the chunk
  verbatim is caught however long it is) or whose shingle set's Jaccard
  similarity with the chunk's reaches `threshold` (`jaccard`).

Retrieval over-fetches: each chunk first asks for k × `overfetch` candidates
and, when exclusions leave fewer than k, asks again with twice the depth, up to
`max_depth`; a chunk that still has fewer keeps what it has (counted as
`short_chunks`). Exclusions are counted among the candidates walked until the
k-th kept one, so the counts say how many candidates were displaced.
Queries go to the retriever in batches of `query_batch` chunks.
"""

import json
import logging
from collections import Counter, OrderedDict
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.dedup import decontam
from tamis.dedup.decontam import DecontamConfig
from tamis.dedup.shingles import Shingling, shingles
from tamis.embeddings import Device
from tamis.errors import ConfigError
from tamis.indexes import bm25, dense
from tamis.io import atomic, manifest, run_dir
from tamis.io.shards import ShardConfig
from tamis.retrievers.chunking import ChunkConfig, Chunker
from tamis.retrievers.hybrid import HybridConfig
from tamis.validation import Params

log = logging.getLogger(__name__)

KIND = "augment_run"
FORMAT_VERSION = 1
REASONS = ("self", "near_dup", "contaminated", "overlap")
_CACHE_DOCS = 20_000  # neighbour documents whose shingles and contamination verdict a worker keeps


class RetrieverSpec(Params):
    """Which index answers the chunks: a BM25 or dense index folder, or both fused (hybrid)."""

    kind: Literal["bm25", "dense", "hybrid"] = "bm25"
    bm25: str | None = None
    dense: str | None = None
    hybrid: HybridConfig = HybridConfig()
    device: Device = "auto"  # dense: where queries are encoded and FAISS searches

    def check(self) -> None:
        needed = {"bm25": ("bm25",), "dense": ("dense",), "hybrid": ("bm25", "dense")}[self.kind]
        for name in needed:
            if not getattr(self, name):
                raise ConfigError(f"The retriever of kind {self.kind!r} needs the {name!r} index folder.",
                                  hint=f"set retriever.{name} to the folder `tamis index {name}` wrote")

    def folders(self) -> dict[str, str]:
        """{"bm25": DIR, "dense": DIR} of the indexes this retriever opens."""
        return {n: getattr(self, n) for n in ("bm25", "dense") if self.kind in (n, "hybrid")}


class NeighbourConfig(Params):
    k: int = 2  # neighbours per chunk (RETRO's k is 2)
    overfetch: int = 4  # first ask for k * overfetch candidates
    max_depth: int = 256  # deepest candidate list asked for before a chunk keeps fewer than k
    text: bool = True  # store the neighbours' texts (from the index's docstore: build it with store_text)
    text_chars: int = 2048  # characters of each neighbour's text kept; 0 keeps the whole document
    query_batch: int = 256  # chunks per retriever call

    def check(self) -> None:
        for name, least in (("k", 1), ("overfetch", 1), ("max_depth", 1), ("text_chars", 0), ("query_batch", 1)):
            if getattr(self, name) < least:
                raise ConfigError(f"The {name!r} parameter of neighbours must be >= {least}. "
                                  f"Got {getattr(self, name)} instead.")
        if self.max_depth < self.k:
            raise ConfigError(f"The 'max_depth' parameter of neighbours must be >= k ({self.k}). Got {self.max_depth} instead.")


class OverlapConfig(Params):
    ngram: int = 5  # words per shingle
    measure: Literal["containment", "jaccard"] = "containment"
    threshold: float = 0.5

    def check(self) -> None:
        if self.ngram < 1:
            raise ConfigError(f"The 'ngram' parameter of overlap must be >= 1. Got {self.ngram} instead.")
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"The 'threshold' parameter of overlap must be in (0, 1]. Got {self.threshold} instead.")


class ExcludeConfig(Params):
    """Neighbours that are never kept besides the chunk's own document."""

    dup_runs: list[str] | None = None  # curate runs whose dropped/ dup_of links form clusters; None: the inputs
    overlap: OverlapConfig | None = OverlapConfig()  # null: no overlap check
    decontaminate: DecontamConfig = DecontamConfig()  # enabled + benchmarks: drop neighbours that match a test item


class AugmentSpec(Params):
    """What `tamis augment` makes: the pipeline's config without how it runs (tamis.pipelines.augment adds that)."""

    inputs: list[str]  # curate run directories: their shards (as listed in the manifest) are augmented
    output: str
    retriever: RetrieverSpec
    chunking: ChunkConfig = ChunkConfig()
    neighbours: NeighbourConfig = NeighbourConfig()
    exclude: ExcludeConfig = ExcludeConfig()
    shards: ShardConfig = ShardConfig()
    batch_rows: int = 256  # documents read and chunked at a time

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("augment needs at least one input curate run.", hint="list run folders under 'inputs'")
        if self.batch_rows < 1:
            raise ConfigError(f"The 'batch_rows' parameter of augment must be >= 1. Got {self.batch_rows} instead.")

    @property
    def needs_text(self) -> bool:
        return self.neighbours.text or self.exclude.overlap is not None or self.exclude.decontaminate.enabled

    @property
    def dup_runs(self) -> list[str]:
        return self.inputs if self.exclude.dup_runs is None else self.exclude.dup_runs


def schema(with_text: bool) -> pa.Schema:
    fields = [
        ("id", pa.string()), ("doc_id", pa.string()), ("chunk", pa.int32()), ("start", pa.int64()),
        ("end", pa.int64()), ("text", pa.large_string()), ("neighbour_ids", pa.list_(pa.string())),
        ("neighbour_scores", pa.list_(pa.float32())),
    ]  # fmt: skip
    if with_text:
        fields.append(("neighbour_text", pa.list_(pa.large_string())))
    return pa.schema(fields)


# --- the indexes -------------------------------------------------------------------------------------------------


def index_manifests(spec: RetrieverSpec) -> dict[str, dict[str, Any]]:
    """The manifests of the retriever's indexes (own checksum only; workers verify every file when loading)."""
    kinds = {"bm25": (bm25.KIND, bm25.FORMAT_VERSION), "dense": (dense.KIND, dense.FORMAT_VERSION)}
    out = {}
    for name, folder in spec.folders().items():
        kind, version = kinds[name]
        found = manifest.read_manifest(folder, kind, version, verify=False)
        manifest.read_any(folder)  # its own checksum
        out[name] = found
    return out


def check_texts(spec: "AugmentSpec", manifests: dict[str, dict[str, Any]]) -> None:
    """Refuse, before any work, a config that needs neighbour texts from indexes that did not store them."""
    if spec.needs_text and not any(m["config"].get("store_text") for m in manifests.values()):
        what = [w for w, on in (("neighbours.text", spec.neighbours.text), ("exclude.overlap", spec.exclude.overlap),
                                ("exclude.decontaminate", spec.exclude.decontaminate.enabled)) if on]
        raise ConfigError(
            f"{', '.join(what)} need the neighbours' texts, but the index ({', '.join(spec.retriever.folders().values())}) "
            f"was built without store_text.",
            hint="rebuild the index with store_text: true, or set neighbours.text: false, exclude.overlap: null "
            "and leave exclude.decontaminate off",
        )


def open_retriever(spec: RetrieverSpec):
    """The configured retriever, every index file verified."""
    from tamis.retrievers.bm25 import BM25Retriever

    if spec.kind == "bm25":
        return BM25Retriever.open(spec.bm25)
    from tamis.retrievers.dense import DenseRetriever

    if spec.kind == "dense":
        return DenseRetriever.open(spec.dense, device=spec.device)
    from tamis.retrievers.hybrid import HybridRetriever

    return HybridRetriever(BM25Retriever.open(spec.bm25), DenseRetriever.open(spec.dense, device=spec.device), spec.hybrid)


class DocTexts:
    """Document id -> text from the docstores of a retriever's index (the first one that stored texts)."""

    def __init__(self, retriever):
        parts = [retriever] if not hasattr(retriever, "sparse") else [retriever.sparse, retriever.dense]
        shards = next((p.index.shards for p in parts if all("text" in s.docs.column_names for s in p.index.shards)), None)
        if shards is None:
            raise ConfigError("The index has no stored texts.", hint="rebuild it with store_text: true")
        self._texts = [s.docs["text"] for s in shards]
        self._where: dict[str, tuple[int, int]] = {}
        for si, s in enumerate(shards):
            for row, doc_id in enumerate(s.docs["id"].to_pylist()):
                self._where.setdefault(doc_id, (si, row))

    def get(self, doc_id: str) -> str:
        s, row = self._where[doc_id]
        return self._texts[s][row].as_py()


# --- duplicate clusters ------------------------------------------------------------------------------------------


def clusters_from_links(links) -> dict[str, str]:
    """Document id -> its cluster's representative (the smallest id), from (id, dup_of) links, joined transitively."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    for a, b in links:
        if b is None or a == b:
            continue
        ra, rb = find(a), find(b)
        if ra != rb:  # the larger root joins the smaller, so a root is its cluster's smallest id
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def load_clusters(runs: list[str], verify: bool = True) -> dict[str, str]:
    """Duplicate clusters from the dropped/ rows with a `dup_of` of curate runs (exact, near and semantic dedup).

    A document dropped as a copy of one that was itself dropped elsewhere ends in
    the same cluster; the map is the same whatever the order of runs and files.
    Documents in no cluster are absent (their cluster is themselves).
    """
    links = []
    for run in runs:
        found = run_dir.load(run, verify=verify)
        for entry in found["files"]:
            if not (entry["path"].startswith("dropped/") and entry["path"].endswith(".parquet")):
                continue
            with atomic.open_read(atomic.join(run, entry["path"])) as f:
                table = pq.read_table(f, columns=["id", "dup_of"])
            links += zip(table["id"].to_pylist(), table["dup_of"].to_pylist(), strict=True)
    return clusters_from_links(links)


# --- exclusion ---------------------------------------------------------------------------------------------------


class Excluder:
    """Decides, per (chunk, candidate document), whether the candidate may be a neighbour, and why not."""

    def __init__(self, clusters: dict[str, str], texts: DocTexts | None, overlap: OverlapConfig | None,
                 benchmarks: decontam.BenchmarkIndex | None):
        self.clusters, self.texts, self.overlap, self.benchmarks = clusters, texts, overlap, benchmarks
        self._shingling = Shingling("word", overlap.ngram) if overlap else None
        self._checks_text = texts is not None and (overlap is not None or benchmarks is not None)
        self._cache: OrderedDict[str, tuple[bool, np.ndarray | None]] = OrderedDict()

    def prepare(self, candidate_ids: set[str]) -> None:
        """Compute contamination verdicts and shingles of the candidates not yet cached, in one batch."""
        if not self._checks_text:
            return
        new = sorted(i for i in candidate_ids if i not in self._cache)
        if not new:
            for i in candidate_ids:
                self._cache.move_to_end(i)
            return
        texts = [self.texts.get(i) for i in new]
        contaminated = np.zeros(len(new), bool)
        if self.benchmarks is not None:
            m = decontam.match(self.benchmarks, texts)
            contaminated[np.unique(m.grams.text[m.gram])] = True
        sets: list[np.ndarray | None] = [None] * len(new)
        if self._shingling is not None:
            hashes, offsets = shingles(texts, self._shingling)
            sets = [np.unique(hashes[offsets[j]:offsets[j + 1]]) for j in range(len(new))]
        for i in candidate_ids - set(new):
            self._cache.move_to_end(i)
        for j, doc_id in enumerate(new):
            self._cache[doc_id] = (bool(contaminated[j]), sets[j])
        while len(self._cache) > max(_CACHE_DOCS, len(candidate_ids)):
            self._cache.popitem(last=False)

    def chunk_shingles(self, texts: list[str]) -> list[np.ndarray | None]:
        if self._shingling is None:
            return [None] * len(texts)
        hashes, offsets = shingles(texts, self._shingling)
        return [np.unique(hashes[offsets[j]:offsets[j + 1]]) for j in range(len(texts))]

    def reason(self, doc_id: str, chunk_set: np.ndarray | None, candidate: str) -> str | None:
        if candidate == doc_id:
            return "self"
        if self.clusters and self.clusters.get(candidate, candidate) == self.clusters.get(doc_id, doc_id):
            return "near_dup"
        if not self._checks_text:
            return None
        contaminated, cand_set = self._cache[candidate]
        if contaminated:
            return "contaminated"
        if chunk_set is not None and len(chunk_set) and cand_set is not None:
            shared = int(np.isin(chunk_set, cand_set, assume_unique=True).sum())
            if self.overlap.measure == "containment":
                value = shared / len(chunk_set)
            else:
                value = shared / (len(chunk_set) + len(cand_set) - shared)
            if value >= self.overlap.threshold:
                return "overlap"
        return None


# --- the augmenter -----------------------------------------------------------------------------------------------


class Augmenter:
    """Chunks a batch of documents and finds each chunk's k neighbours; holds the loaded index and exclusion data.

    Made once per worker process (the index and the clusters are the costly part) and reused for every batch.
    """

    def __init__(self, spec: AugmentSpec, retriever=None, clusters: dict[str, str] | None = None,
                 benchmarks: decontam.BenchmarkIndex | None = None, texts=None):
        self.spec = spec
        self.retriever = retriever if retriever is not None else open_retriever(spec.retriever)
        self.chunker = Chunker(spec.chunking)
        if clusters is None:
            clusters = load_clusters(spec.dup_runs, verify=False) if spec.dup_runs else {}
        if benchmarks is None and spec.exclude.decontaminate.enabled:
            benchmarks = decontam.build_index(spec.exclude.decontaminate)
        if texts is None and spec.needs_text:
            texts = DocTexts(self.retriever)
        self.excluder = Excluder(clusters, texts, spec.exclude.overlap, benchmarks)
        self.texts = texts
        self.schema = schema(spec.neighbours.text)

    def augment(self, batch: pa.RecordBatch | pa.Table) -> tuple[pa.RecordBatch, Counter]:
        """One output row per chunk of the batch's documents (columns id, text), and the batch's counts."""
        doc_ids = batch.column("id").to_pylist()
        texts = batch.column("text").to_pylist()
        chunks = self.chunker.chunk(texts)
        counts: Counter = Counter(documents=len(texts), chunks=len(chunks))
        cfg = self.spec.neighbours
        chunk_docs = [doc_ids[d] for d in chunks.doc.tolist()]
        chunk_texts = [texts[d][a:b] for d, a, b in zip(chunks.doc.tolist(), chunks.start.tolist(), chunks.end.tolist(),
                                                        strict=True)]
        found_ids: list[list[str]] = []
        found_scores: list[list[float]] = []
        for first in range(0, len(chunks), cfg.query_batch):
            part = slice(first, first + cfg.query_batch)
            ids, scores = self._neighbours(chunk_docs[part], chunk_texts[part], counts)
            found_ids += ids
            found_scores += scores
        counts["neighbours"] = sum(map(len, found_ids))
        columns: dict[str, Any] = {
            "id": [f"{d}#{n}" for d, n in zip(chunk_docs, chunks.number.tolist(), strict=True)],
            "doc_id": chunk_docs, "chunk": chunks.number, "start": chunks.start, "end": chunks.end,
            "text": chunk_texts, "neighbour_ids": found_ids, "neighbour_scores": found_scores,
        }  # fmt: skip
        if cfg.text:
            limit = cfg.text_chars or None
            columns["neighbour_text"] = [[self.texts.get(i)[:limit] for i in ids] for ids in found_ids]
        arrays = [pa.array(columns[f.name], f.type) for f in self.schema]
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema), counts

    def _neighbours(self, docs: list[str], texts: list[str], counts: Counter) -> tuple[list[list[str]], list[list[float]]]:
        """Kept neighbour ids and scores of a batch of chunks, re-asking deeper for chunks that fall short."""
        cfg = self.spec.neighbours
        sets = self.excluder.chunk_shingles(texts)
        out_ids: list[list[str]] = [[] for _ in docs]
        out_scores: list[list[float]] = [[] for _ in docs]
        pending = list(range(len(docs)))
        depth = min(cfg.k * cfg.overfetch, cfg.max_depth)
        while pending:
            ids, scores = self.retriever.search([texts[i] for i in pending], depth)
            counts["retrieval_calls"] += 1
            self.excluder.prepare({c for row in ids for c in row})
            again = []
            for i, cand, sc in zip(pending, ids, scores, strict=True):
                kept, kept_scores, excluded = [], [], Counter()
                for c, s in zip(cand, np.asarray(sc, dtype=np.float64).tolist(), strict=True):
                    why = self.excluder.reason(docs[i], sets[i], c)
                    if why is not None:
                        excluded[why] += 1
                        continue
                    kept.append(c)
                    kept_scores.append(s)
                    if len(kept) == cfg.k:
                        break
                if len(kept) < cfg.k and len(cand) >= depth and depth < cfg.max_depth:
                    again.append(i)  # the list was full: deeper candidates may exist
                    continue
                out_ids[i], out_scores[i] = kept, kept_scores
                counts.update({f"excluded_{r}": n for r, n in excluded.items()})
                if len(kept) < cfg.k:
                    counts["short_chunks"] += 1
            pending = again
            if pending:
                counts["requeried_chunks"] += len(pending)
            depth = min(depth * 2, cfg.max_depth)
        return out_ids, out_scores


def merge_counts(parts: list[dict[str, int]]) -> dict[str, Any]:
    """The manifest's counts: totals, and the exclusions by reason."""
    total: Counter = Counter()
    for p in parts:
        total.update(p)
    excluded = {r: int(total.pop(f"excluded_{r}", 0)) for r in REASONS}
    keys = ("documents", "chunks", "neighbours", "short_chunks", "requeried_chunks", "retrieval_calls")
    return {**{k: int(total.get(k, 0)) for k in keys}, "excluded_by_reason": excluded}


def fingerprint_inputs(spec: AugmentSpec) -> dict[str, Any]:
    """What the output depends on besides the config: the input runs, indexes, tokenizer and benchmark files."""
    from tamis.retrievers.chunking import tokenizer_identity

    inputs = []
    for run in spec.inputs:
        found = run_dir.load(run, verify=True)
        inputs.append({"run": run, "manifest_sha256": found[manifest.SELF_SHA], "shards": len(found["shards"])})
    dup_runs = [{"run": r, "manifest_sha256": run_dir.load(r, verify=True)[manifest.SELF_SHA]}
                for r in spec.dup_runs if r not in spec.inputs]
    indexes = {name: m[manifest.SELF_SHA] for name, m in index_manifests(spec.retriever).items()}
    benchmarks = {b.name: atomic.sha256_file(b.path) for b in spec.exclude.decontaminate.benchmarks} \
        if spec.exclude.decontaminate.enabled else {}
    return {"inputs": inputs, "dup_runs": dup_runs, "indexes": indexes,
            "tokenizer": tokenizer_identity(spec.chunking), "benchmarks": benchmarks}


def load_manifest(root: str, verify: bool = True) -> dict[str, Any]:
    """The manifest of a finished augmentation, every file checked by default."""
    return manifest.read_manifest(root, KIND, FORMAT_VERSION, verify=verify)


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True)
