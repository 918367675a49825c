"""BM25 index: build (term statistics -> global idf -> per-term contributions), save, load and verify.

All BM25 arithmetic happens at build time, as in bm25s: each (term, document)
pair stores its finished contribution idf(t) * tfc(tf, |d|), laid out
token-major (CSC: `indptr[t]:indptr[t+1]` slices the documents of term t), so a
query only sums a few slices. A build is three pure steps, shared by the
in-memory build and the Beam pipeline:

1. `count(analyzer, texts)`: per-shard term frequencies and document lengths;
2. `merge_stats(...)` / `Vocabulary.from_stats`: global document frequencies,
   the sorted vocabulary and idf (idf is global, so every shard scores with it);
3. `score_shard(counts, vocab, config)`: the shard's contribution matrix.

Each term's postings are also cut into blocks of `BLOCK` postings, and the
index keeps every block's largest contribution and last document
(`posting_blocks`): the upper bounds that let a query skip documents that
cannot reach its top k (block-max MaxScore, tamis/retrievers/bm25_kernel.py).

On disk (no pickle): `vocab.arrow` (term, df, idf, shift), and per shard
`shards/<name>/{data,indices,indptr,block_max,block_last}.npy` plus `docs.arrow`
(id, source, offset, meta and optionally text), then `manifest.json` last with
sha256 of every file. Format 1 (no block files) still loads: its blocks are
computed on load.
"""

import dataclasses
import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.indexes import shard_name
from tamis.indexes.analysis import AnalysisConfig, Analyzer, TermIds
from tamis.io import arrays, atomic, manifest
from tamis.io.side_files import read_yaml
from tamis.validation import Params, parse

log = logging.getLogger(__name__)

KIND = "bm25-index"
FORMAT_VERSION = 2
VOCAB = "vocab.arrow"
SHARD_FILES = ("data.npy", "indices.npy", "indptr.npy", "block_max.npy", "block_last.npy", "docs.arrow")
BLOCK = 64  # postings per block of the block-max bounds; part of the format (a new value is a new format version)
Variant = Literal["lucene", "robertson", "atire", "bm25l", "bm25+", "okapi"]


class BM25Config(Params):
    """Index parameters; `delta` is used by bm25l and bm25+, `epsilon` (the idf floor) by okapi."""

    analysis: AnalysisConfig = AnalysisConfig()
    variant: Variant = "lucene"
    k1: float = 1.5
    b: float = 0.75
    delta: float = 0.5
    epsilon: float = 0.25
    dtype: Literal["float32", "float64"] = "float32"
    store_text: bool = False
    shard_docs: int = 100_000  # documents per index shard: the unit of build memory

    def check(self) -> None:
        self.analysis.check()
        for name, low in (("k1", 0.0), ("delta", 0.0), ("epsilon", 0.0)):
            if getattr(self, name) < low:
                raise ConfigError(
                    f"The {name!r} parameter of bm25 must be >= {low}. Got {getattr(self, name)} instead."
                )
        if not 0.0 <= self.b <= 1.0:
            raise ConfigError(f"The 'b' parameter of bm25 must be in [0, 1]. Got {self.b} instead.")
        if self.shard_docs < 1:
            raise ConfigError(f"The 'shard_docs' parameter of bm25 must be >= 1. Got {self.shard_docs} instead.")



def config_from_dict(raw: dict[str, Any] | None) -> BM25Config:
    return parse(BM25Config, raw or {}, owner="bm25")


def load_config(path: str | None) -> BM25Config:
    """A BM25Config from a YAML file (its top level, or its `bm25:` mapping); defaults when `path` is None."""
    if path is None:
        return BM25Config()
    raw = read_yaml(path, "Index config")
    if isinstance(raw.get("bm25"), dict):
        raw = raw["bm25"]
    return config_from_dict(raw)


# --- scoring variants: idf(df, N) and the term-frequency component, picked by name ---------------------------


def idf(variant: str, df: np.ndarray, n_docs: int, epsilon: float = 0.25) -> np.ndarray:
    """Inverse document frequency per term (Kamphuis et al. 2020; okapi as rank-bm25's BM25Okapi)."""
    df = df.astype(np.float64)
    if variant == "lucene":
        return np.log1p((n_docs - df + 0.5) / (df + 0.5))
    if variant == "robertson":  # clamped at 0 so very common terms never count against a document
        return np.log(np.maximum((n_docs - df + 0.5) / (df + 0.5), 1.0))
    if variant == "atire":
        return np.log(n_docs / df)
    if variant == "bm25l":
        return np.log((n_docs + 1) / (df + 0.5))
    if variant == "bm25+":
        return np.log((n_docs + 1) / df)
    if variant == "okapi":  # negative idf is floored at epsilon * mean idf, as rank-bm25 does
        raw = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        floor = epsilon * raw.mean() if raw.size else 0.0
        return np.where(raw < 0, floor, raw)
    raise ConfigError(f"Unknown bm25 variant {variant!r}.")


def tfc(variant: str, tf: np.ndarray, norm: np.ndarray, k1: float, delta: float) -> np.ndarray:
    """Term-frequency component; `norm` is 1 - b + b * |d| / avgdl for each entry."""
    if variant in ("lucene", "robertson"):
        return tf / (tf + k1 * norm)
    if variant in ("atire", "okapi"):
        return tf * (k1 + 1) / (tf + k1 * norm)
    if variant == "bm25l":
        c = tf / norm
        return (k1 + 1) * (c + delta) / (k1 + c + delta)
    if variant == "bm25+":
        return tf * (k1 + 1) / (tf + k1 * norm) + delta
    raise ConfigError(f"Unknown bm25 variant {variant!r}.")


def absent_tfc(variant: str, k1: float, delta: float) -> float:
    """tfc of a term absent from a document: non-zero only for bm25l and bm25+, and the same for every document."""
    if variant == "bm25l":
        return (k1 + 1) * delta / (k1 + delta)
    if variant == "bm25+":
        return delta
    return 0.0


# --- step 1: per-shard counts --------------------------------------------------------------------------------


@dataclass
class ShardCounts:
    """Term frequencies of one shard in shard-local term ids, sorted by (doc, term)."""

    terms: list[str]  # local vocabulary
    doc: np.ndarray  # int32, document index within the shard, per (doc, term) pair
    term: np.ndarray  # int32, local term id, per pair
    tf: np.ndarray  # int32, occurrences, per pair
    doc_len: np.ndarray  # int64, analyzed tokens per document

    @property
    def n_docs(self) -> int:
        return len(self.doc_len)

    def df(self) -> pa.Table:
        """Document frequency of each local term, the shard's share of the global statistics."""
        counts = np.bincount(self.term, minlength=len(self.terms)).astype(np.int64)
        return pa.table({"term": pa.array(self.terms, pa.string()), "df": counts})


def count(analyzer: Analyzer, texts: list[str] | pa.Array, chunk_docs: int = 2048) -> ShardCounts:
    """Term frequencies of a shard, analyzed `chunk_docs` texts at a time so strings never pile up.

    `texts` may be an Arrow string array: then only one chunk at a time becomes Python strings.
    """
    term_ids = TermIds(analyzer)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(texts), chunk_docs):
        chunk = texts[start : start + chunk_docs]
        token_terms, doc_len = term_ids(chunk.to_pylist() if isinstance(chunk, pa.Array) else chunk)
        n_terms = max(len(term_ids.terms), 1)
        doc_of_token = np.repeat(np.arange(len(doc_len), dtype=np.int64), doc_len)
        pairs, tf = np.unique(doc_of_token * n_terms + token_terms, return_counts=True)
        parts.append(
            (
                (pairs // n_terms + start).astype(np.int32),
                (pairs % n_terms).astype(np.int32),
                tf.astype(np.int32),
                doc_len,
            )
        )
    if not parts:
        return ShardCounts(
            [], np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
        )
    doc, term, tf, doc_len = (np.concatenate(arrays) for arrays in zip(*parts, strict=True))
    return ShardCounts(list(term_ids.terms), doc, term, tf, doc_len.astype(np.int64))


# --- step 2: global statistics ---------------------------------------------------------------------------------


@dataclass
class Stats:
    """Corpus-wide statistics; they add up across shards (`+`), so a combine can merge them in any order."""

    docs: int = 0
    tokens: int = 0
    df: pa.Table = dataclasses.field(
        default_factory=lambda: pa.table({"term": pa.array([], pa.string()), "df": pa.array([], pa.int64())})
    )

    def __add__(self, other: "Stats") -> "Stats":
        return Stats(self.docs + other.docs, self.tokens + other.tokens, _sum_df([self.df, other.df]))


def _sum_df(tables: list[pa.Table]) -> pa.Table:
    merged = pa.concat_tables(tables).group_by("term").aggregate([("df", "sum")])
    return merged.rename_columns(["term", "df"])


def shard_stats(counts: ShardCounts) -> Stats:
    return Stats(counts.n_docs, int(counts.doc_len.sum()), counts.df())


def merge_stats(parts: list[Stats]) -> Stats:
    """Sum many shards' statistics in one group-by (cheaper than pairwise `+`)."""
    parts = list(parts)
    if not parts:
        return Stats()
    return Stats(sum(p.docs for p in parts), sum(p.tokens for p in parts), _sum_df([p.df for p in parts]))


@dataclass
class Vocabulary:
    """The sorted global vocabulary with df, idf and the per-term score shift of bm25l/bm25+."""

    terms: pa.StringArray
    df: np.ndarray
    idf: np.ndarray
    shift: np.ndarray  # added to every document's score for each query term (0 except bm25l/bm25+)
    docs: int
    tokens: int
    _ids: dict[str, int] | None = None

    @classmethod
    def from_stats(cls, stats: Stats, config: BM25Config) -> "Vocabulary":
        if stats.docs == 0:
            raise InputError("The corpus has no documents: there is nothing to index.", hint="check the input paths")
        table = stats.df.sort_by("term")
        df = table["df"].to_numpy().astype(np.int64)
        weights = idf(config.variant, df, stats.docs, config.epsilon)
        shift = weights * absent_tfc(config.variant, config.k1, config.delta)
        return cls(table["term"].combine_chunks(), df, weights, shift, stats.docs, stats.tokens)

    @property
    def avgdl(self) -> float:
        return self.tokens / self.docs if self.docs else 0.0

    def __len__(self) -> int:
        return len(self.terms)

    def ids(self) -> dict[str, int]:
        """term -> id, built on first use (queries); builds never need it."""
        if self._ids is None:
            self._ids = {t: i for i, t in enumerate(self.terms.to_pylist())}
        return self._ids

    def table(self) -> pa.Table:
        return pa.table({"term": self.terms, "df": self.df, "idf": self.idf, "shift": self.shift})


# --- step 3: per-shard contributions ---------------------------------------------------------------------------


@dataclass
class Shard:
    """One shard's contribution matrix (token-major CSC), its block-max bounds and its docstore."""

    name: str
    data: np.ndarray  # contribution of each (term, doc) posting
    indices: np.ndarray  # int32 document index within the shard
    indptr: np.ndarray  # int64, len(vocab) + 1
    docs: pa.Table  # id, source, offset, meta (, text)
    block_max: np.ndarray | None = None  # float32, largest contribution of each block of BLOCK postings
    block_last: np.ndarray | None = None  # int32, last (largest) document of each block

    def __post_init__(self) -> None:
        if self.block_max is None:
            self.block_max, self.block_last = posting_blocks(self.data, self.indices, self.indptr)

    @property
    def n_docs(self) -> int:
        return self.docs.num_rows


def posting_blocks(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each term's postings cut into blocks of BLOCK (the last one shorter): every block's max contribution and last doc.

    Blocks tile the postings array in order (term by term, a term's blocks
    contiguous), so block b of the whole shard is the b-th `BLOCK`-run of a
    term; a term with df postings owns ceil(df / BLOCK) blocks.
    """
    counts = (np.diff(indptr) + BLOCK - 1) // BLOCK
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int32)
    term = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    starts = indptr[:-1][term] + (np.arange(total) - first[term]) * BLOCK
    ends = np.minimum(starts + BLOCK, indptr[1:][term])
    block_max = np.maximum.reduceat(np.asarray(data), starts).astype(np.float32)
    return block_max, np.asarray(indices)[ends - 1].astype(np.int32)


def score_shard(name: str, counts: ShardCounts, docs: pa.Table, vocab: Vocabulary, config: BM25Config) -> Shard:
    """Finish every (term, doc) contribution with global idf and avgdl; lay them out by term."""
    if len(counts.terms):
        local_to_global = pc.index_in(pa.array(counts.terms, pa.string()), value_set=vocab.terms).to_numpy()
    else:
        local_to_global = np.zeros(0, dtype=np.int32)
    gid = local_to_global.astype(np.int32)[counts.term]  # 4 bytes per pair: build memory is per pair
    doc_norm = 1.0 - config.b + config.b * counts.doc_len / max(vocab.avgdl, 1e-12)
    norm = doc_norm[counts.doc]
    weight = vocab.idf[gid] * tfc(config.variant, counts.tf.astype(np.float64), norm, config.k1, config.delta)
    weight -= vocab.shift[gid]
    indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
    np.cumsum(np.bincount(gid, minlength=len(vocab)), out=indptr[1:])
    order = _group_by_term(gid, indptr)  # pairs are doc-sorted, so each term's postings stay doc-sorted
    return Shard(name, weight[order].astype(config.dtype), counts.doc[order], indptr, docs)


@njit(cache=True)
def _group_by_term(gid: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The stable order that groups pairs by term: a counting sort, one pass (argsort would sort, O(n log n))."""
    slot = indptr[:-1].copy()
    order = np.empty(len(gid), np.int64)
    for i in range(len(gid)):
        g = gid[i]
        order[slot[g]] = i
        slot[g] += 1
    return order


# --- in-memory build --------------------------------------------------------------------------------------------


@dataclass
class BM25Index:
    config: BM25Config
    vocab: Vocabulary
    shards: list[Shard]
    manifest: dict[str, Any] | None = None

    @property
    def n_docs(self) -> int:
        return sum(s.n_docs for s in self.shards)


def docstore(batch: pa.RecordBatch | pa.Table, store_text: bool) -> pa.Table:
    """The docstore columns kept from a document batch: where each document lives, its text on request."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    cols = [c for c in ("id", "source", "offset", "meta") if c in table.column_names]
    if store_text:
        cols.append("text")
    return table.select(cols)


def build(documents: pa.Table, config: BM25Config | None = None) -> BM25Index:
    """Build in memory from a document table (id, text, ...), in shards of `config.shard_docs` documents."""
    config = config or BM25Config()
    config.check()
    if documents.num_rows == 0:
        raise InputError("The corpus has no documents: there is nothing to index.", hint="check the input")
    analyzer = Analyzer(config.analysis)
    parts = []
    for j, start in enumerate(range(0, documents.num_rows, config.shard_docs)):
        chunk = documents.slice(start, config.shard_docs)
        text = chunk["text"].combine_chunks()
        parts.append((shard_name(0, j), count(analyzer, text), docstore(chunk, config.store_text)))
    vocab = Vocabulary.from_stats(merge_stats([shard_stats(c) for _, c, _ in parts]), config)
    return BM25Index(config, vocab, [score_shard(n, c, d, vocab, config) for n, c, d in parts])


# --- save / load ------------------------------------------------------------------------------------------------






def write_vocab(root: str, vocab: Vocabulary) -> str:
    arrays.write_arrow(atomic.join(root, VOCAB), vocab.table())
    return VOCAB


def write_shard(root: str, shard: Shard, write_docs: bool = True) -> list[str]:
    """Write a shard's files; returns their paths relative to root."""
    rel = f"shards/{shard.name}"
    arrays.write_npy(atomic.join(root, rel, "data.npy"), shard.data)
    arrays.write_npy(atomic.join(root, rel, "indices.npy"), shard.indices)
    arrays.write_npy(atomic.join(root, rel, "indptr.npy"), shard.indptr)
    arrays.write_npy(atomic.join(root, rel, "block_max.npy"), shard.block_max)
    arrays.write_npy(atomic.join(root, rel, "block_last.npy"), shard.block_last)
    if write_docs:
        write_docs_file(root, shard.name, shard.docs)
    return [f"{rel}/{f}" for f in SHARD_FILES]


def write_docs_file(root: str, name: str, docs: pa.Table) -> None:
    arrays.write_arrow(atomic.join(root, "shards", name, "docs.arrow"), docs)


def write_manifest(
    root: str,
    config: BM25Config,
    vocab: Vocabulary,
    shards: list[dict[str, Any]],
    extra_files: list[str] | None = None,
    **extra,
) -> dict:
    """Checksum every file and write the manifest last: the index exists once this returns."""
    shards = sorted(shards, key=lambda s: s["name"])
    files = [VOCAB] + [f"shards/{s['name']}/{f}" for s in shards for f in SHARD_FILES] + list(extra_files or [])
    body = {
        "config": config.to_dict(),
        "counts": {
            "docs": vocab.docs,
            "terms": len(vocab),
            "tokens": vocab.tokens,
            "avgdl": vocab.avgdl,
            "postings": sum(s["postings"] for s in shards),
        },
        "block": BLOCK,
        "shards": shards,
        **extra,
    }
    return manifest.write_manifest(root, KIND, FORMAT_VERSION, body, files)


def save(index: BM25Index, root: str, **extra) -> dict[str, Any]:
    atomic.makedirs(root)
    write_vocab(root, index.vocab)
    for shard in index.shards:
        write_shard(root, shard)
    entries = [{"name": s.name, "docs": s.n_docs, "postings": len(s.data)} for s in index.shards]
    index.manifest = write_manifest(root, index.config, index.vocab, entries, **extra)
    return index.manifest






def load(root: str, verify: bool = True, mmap: bool = True) -> BM25Index:
    """Open an index memory-mapped; by default first verify every file's sha256 against the manifest.

    A format-1 index (before block-max bounds) loads too: its blocks are computed from the postings.
    """
    if not os.path.isdir(root):
        raise InputError(f"Index directory {root} does not exist.", hint="check the --index path")
    found = manifest.read_manifest(root, KIND, FORMAT_VERSION, verify=verify)
    if found.get("format_version", 0) >= 2 and found.get("block") != BLOCK:
        raise IntegrityError(f"{root} has posting blocks of {found.get('block')}; this tamis uses {BLOCK}")
    config = config_from_dict(found["config"])
    table = arrays.read_arrow(atomic.join(root, VOCAB), mmap)
    counts = found["counts"]
    vocab = Vocabulary(
        table["term"].combine_chunks(),
        table["df"].to_numpy(),
        table["idf"].to_numpy(),
        table["shift"].to_numpy(),
        counts["docs"],
        counts["tokens"],
    )
    shards = []
    for entry in found["shards"]:
        base = atomic.join(root, "shards", entry["name"])
        blocks = [None, None]
        if found["format_version"] >= 2:
            blocks = [arrays.read_npy(os.path.join(base, f), mmap) for f in ("block_max.npy", "block_last.npy")]
        shard = Shard(
            entry["name"],
            arrays.read_npy(os.path.join(base, "data.npy"), mmap),
            arrays.read_npy(os.path.join(base, "indices.npy"), mmap),
            arrays.read_npy(os.path.join(base, "indptr.npy"), mmap),
            arrays.read_arrow(os.path.join(base, "docs.arrow"), mmap),
            *blocks,
        )
        n_blocks = int(((np.diff(shard.indptr) + BLOCK - 1) // BLOCK).sum()) if len(shard.indptr) else -1
        ok = len(shard.indptr) == len(vocab) + 1 and shard.indptr[-1] == len(shard.data) == len(shard.indices)
        ok = ok and len(shard.block_max) == len(shard.block_last) == n_blocks
        if not ok:
            raise IntegrityError(f"shard {entry['name']} of {root} does not match its vocabulary")
        shards.append(shard)
    return BM25Index(config, vocab, shards, found)


def index_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
