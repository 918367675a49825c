"""Near-duplicate clusters from MinHash LSH: the pure steps that the Beam stage and the local run share.

1. `Signer.sign` — a batch → signatures, LSH bucket keys and keep ranks.
2. `candidate_pairs` — (bucket key, id) arrays → candidate pairs, bucket by
   bucket (`bucket_pairs`: every pair in a small bucket; a star around the
   smallest id in a large one, so a bucket of m documents yields at most
   max(C(bucket_pairs, 2), m - 1) pairs).
3. `Signer.verified` — a candidate pair stays if its Jaccard estimate reaches
   the threshold (optional): by default from bottom-k sketches of word
   4-grams (`verify_ngram`, `verify_k`; tamis.dedup.bottomk), else from the
   MinHash signatures (16-bit sketches of them). Each document's evidence is
   a few hundred bytes to 4 × `verify_k` bytes, whatever its length.
4. Clusters (transitive by construction) over the verified pairs, each
   document a `node` (its order key, keep rank and row reference): the
   large-star/small-star rounds of tamis.dedup.components, which scale out,
   or one `UnionFind` (`clustering: union_find`).
5. `drops` / `cluster_drops` — every cluster keeps its best member by the
   keep rule; the others are dropped with the id of the kept one.

Keep rules, all ending in the smallest id so ties never depend on order:
``first`` keeps the smallest id; ``longest`` the longest text; ``score`` the
highest value of `score_column` (then the longest): a batch column, or a field
of the input record (its `meta`), since in `tamis curate` near-dup runs before scoring.
"""

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.dedup.bottomk import bottom_k, similarity
from tamis.dedup.components import UnionFind
from tamis.dedup.minhash import (
    LSHParams,
    MinHasher,
    band_keys,
    choose_bands,
    estimate,
    has_shingles,
    text_groups,
)
from tamis.dedup.shingles import Shingling, shingles
from tamis.errors import ConfigError, InputError
from tamis.validation import Params

Rank = tuple[float, float, str]  # sorts best first: (-score, -length, id)
MAX_VERIFY_K = 1024  # 4 KB of bottom-k sketch per document at most: the shuffled node stays small
Node = tuple[int, Rank, tuple]  # (order key, keep rank, (batch key, row)): a document in the duplicate graph


KeepRule = Literal["first", "longest", "score"]  # which member of a duplicate cluster stays (see the module doc)


class NearDupConfig(Params):
    """MinHash LSH near-duplicate removal; the defaults are justified in docs/dedup.md."""

    enabled: bool = False
    shingle: Literal["word", "char"] = "word"
    ngram: int = 5
    lowercase: bool = True
    punctuation: bool = True  # punctuation and symbols count as spaces
    digits: bool = True  # digits all map to 0
    whitespace: bool = True  # char shingles: a run of spaces counts as one
    num_perm: int = 128
    # verification defaults chosen by 5-fold CV over the judged Webis pairs (benchmarks/neardup_cv.py, docs/dedup.md)
    threshold: float = 0.6  # Jaccard (of the verification shingles) at or above which two documents are near-dups
    verify: bool = True  # keep only candidate pairs whose Jaccard estimate reaches `threshold`
    verify_ngram: int = 4  # n of the verification shingles (same kind as `shingle`); 0: `ngram`
    verify_k: int = 1024  # bottom-k sketch size (4 × k bytes per document; exact below k shingles); 0: signatures
    lsh_threshold: float = 0.0  # target of the bands × rows choice; 0: threshold - 0.15 if verify else threshold
    bands: int = 0  # 0: chosen for lsh_threshold by minimizing false positive + false negative mass
    rows: int = 0
    keep: KeepRule = "first"
    score_column: str = ""  # for keep: score, e.g. "quality.score"
    bucket_pairs: int = 32  # a bucket of more documents links them to its first member only (a star)
    partitions: int = 64  # bucket keys are grouped in this many parts, ~30 bytes × docs × bands / partitions each
    seed: int = 0
    # auto: union_find for local runs under 10 GB of input, star_rounds otherwise (tamis.pipelines.options.clustering)
    clustering: Literal["auto", "star_rounds", "union_find"] = "auto"
    max_rounds: int = 16  # star_rounds: rounds built into the job; a graph not settled by then falls back to union_find

    def check(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"The 'threshold' parameter of near_dedup must be in (0, 1). Got {self.threshold} instead.")
        if bool(self.bands) != bool(self.rows):
            raise ConfigError("near_dedup needs both 'bands' and 'rows', or neither (then they are chosen).")
        if self.keep == "score" and not self.score_column:
            raise ConfigError("near_dedup keep: score needs 'score_column'.", hint='e.g. score_column: "quality.score"')
        if self.partitions < 1:
            raise ConfigError(f"The 'partitions' parameter of near_dedup must be >= 1. Got {self.partitions} instead.")
        if self.verify_ngram < 0:
            raise ConfigError(
                f"The 'verify_ngram' parameter of near_dedup must be >= 0. Got {self.verify_ngram} instead.",
                hint="0 verifies with the LSH shingles",
            )
        if not 0 <= self.verify_k <= MAX_VERIFY_K:
            raise ConfigError(
                f"The 'verify_k' parameter of near_dedup must be in [0, {MAX_VERIFY_K}]. Got {self.verify_k} instead.",
                hint="it bounds the bytes shuffled per document (4 × verify_k); 0 verifies with the MinHash signatures",
            )
        if self.max_rounds < 1:
            raise ConfigError(f"The 'max_rounds' parameter of near_dedup must be >= 1. Got {self.max_rounds} instead.")
        if self.bucket_pairs < 2:
            raise ConfigError(f"The 'bucket_pairs' parameter of near_dedup must be >= 2. Got {self.bucket_pairs} instead.")
        shingling(self).validate()
        lsh_params(self).validate()


def shingling(cfg, n: int = 0) -> Shingling:
    """The LSH shingling, or with n > 0 the same normalization and kind with n-grams (for verification)."""
    return Shingling(cfg.shingle, n or cfg.ngram, cfg.lowercase, cfg.punctuation, cfg.digits, cfg.whitespace)


def lsh_params(cfg) -> LSHParams:
    """The configured bands × rows, or the choice for the LSH target threshold."""
    if cfg.bands and cfg.rows:
        return LSHParams(cfg.num_perm, cfg.bands, cfg.rows)
    target = cfg.lsh_threshold or (max(cfg.threshold - 0.15, 0.05) if cfg.verify else cfg.threshold)
    return LSHParams(cfg.num_perm, *choose_bands(target, cfg.num_perm))


def ranks(batch: pa.RecordBatch, keep: str, score_column: str = "") -> list[Rank]:
    """Keep-rule sort keys of a batch's rows: the smallest key of a cluster stays."""
    ids = batch.column("id").to_pylist()
    n = len(ids)
    length = pc.utf8_length(batch.column("text")).to_numpy(zero_copy_only=False) if keep != "first" else np.zeros(n)
    score = np.nan_to_num(_scores(batch, score_column), nan=-np.inf) if keep == "score" else np.zeros(n)
    return [(-float(s), -float(ln), i) for s, ln, i in zip(score, length, ids, strict=True)]


def _scores(batch: pa.RecordBatch, column: str) -> np.ndarray:
    """A batch column, or else a numeric field of each record's `meta` (a score the input already carries)."""
    if column in batch.schema.names:
        return batch.column(column).to_numpy(zero_copy_only=False).astype(float)
    metas = [json.loads(m) if m else {} for m in batch.column("meta").to_pylist()]
    if not any(column in m for m in metas):
        raise InputError(
            f"Keep rule 'score' needs {column!r} as a column or an input field; these records have neither.",
            hint="near-dup runs before scoring: use a score the input carries, or keep: first or longest",
        )
    try:
        return np.array([np.nan if m.get(column) is None else float(m[column]) for m in metas])
    except (TypeError, ValueError) as e:
        raise InputError(f"Field {column!r} of an input record is not a number ({e}).") from e


@dataclass
class Signed:
    """One batch, signed: which rows have shingles, their bucket keys and verification evidence."""

    rows: np.ndarray  # row indices with at least one shingle
    buckets: np.ndarray  # (len(rows), bands) uint64
    evidence: list[bytes]  # per signed row: what `Signer.verified` compares (bottom-k sketch or 16-bit signature)


class Signer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.shingling = shingling(cfg)
        self.lsh = lsh_params(cfg)
        self.hasher = MinHasher(cfg.num_perm, cfg.seed)
        self.verifying = shingling(cfg, cfg.verify_ngram)

    def sign(self, texts: list[str]) -> Signed:
        sig = self.hasher.of_texts(texts, self.shingling)
        rows = np.flatnonzero(has_shingles(sig))
        sig = sig[rows]
        return Signed(rows, band_keys(sig, self.lsh.bands, self.lsh.rows), self._evidence(texts, rows, sig))

    def _evidence(self, texts: list[str], rows: np.ndarray, sig: np.ndarray) -> list[bytes]:
        if not self.cfg.verify:
            return [b""] * len(rows)
        if not self.cfg.verify_k:
            return [s.tobytes() for s in self.sketch(sig)]
        out: list[bytes] = []
        for group in text_groups([texts[r] for r in rows.tolist()]):
            values, offsets = bottom_k(*shingles(group, self.verifying), self.cfg.verify_k, self.cfg.seed)
            out += [values[a:b].tobytes() for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True)]
        return out

    @staticmethod
    def sketch(sig: np.ndarray) -> np.ndarray:
        """The top 16 bits of each signature entry: what verification compares (2 bytes, not 8, per entry).

        Two different minima agree in 16 bits with chance 2**-16, so the Jaccard
        estimate moves by less than 2e-5.
        """
        return (sig >> np.uint64(48)).astype(np.uint16)

    def similarity(self, evidence_a: bytes, evidence_b: bytes) -> float:
        if self.cfg.verify_k:
            return similarity(
                np.frombuffer(evidence_a, np.uint32), np.frombuffer(evidence_b, np.uint32), self.cfg.verify_k
            )
        return float(estimate(np.frombuffer(evidence_a, np.uint16), np.frombuffer(evidence_b, np.uint16)))

    def verified(self, evidence_a: bytes, evidence_b: bytes) -> bool:
        return not self.cfg.verify or self.similarity(evidence_a, evidence_b) >= self.cfg.threshold


def bucket_pairs(members: Iterable[str], limit: int) -> Iterator[tuple[str, str]]:
    """Candidate pairs (a < b) of one bucket: all pairs up to `limit` members, else a star around the smallest."""
    ms = sorted(set(members))
    if len(ms) <= limit:
        for i, a in enumerate(ms):
            for b in ms[i + 1 :]:
                yield a, b
    else:
        for b in ms[1:]:
            yield ms[0], b


def candidate_pairs(buckets: np.ndarray, ids: Sequence[str], limit: int) -> Iterator[tuple[str, str]]:
    """Candidate pairs of every bucket in parallel arrays (bucket key, id): one sort, single-member buckets skipped."""
    order = np.argsort(buckets, kind="stable")
    keys = buckets[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.empty(0, np.int64)
    sizes = np.diff(np.r_[starts, len(keys)])
    for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
        yield from bucket_pairs([ids[i] for i in order[start : start + size]], limit)


def node(doc_id: str, rank: Rank, ref: tuple) -> Node:
    """A document as a node of the duplicate graph, ordered by a hash of its id.

    The connected-components rounds link nodes towards the smallest one; a
    hash order (not the id order, often the order of a chain of page versions)
    makes long chains settle in fewer rounds. Which member a cluster keeps is
    decided by rank afterwards, so the order changes no decision.
    """
    return int.from_bytes(hashlib.blake2b(doc_id.encode(), digest_size=8).digest(), "little"), rank, ref


def cluster_drops(members: Iterable[Node]) -> Iterator[tuple[Node, Node]]:
    """(dropped node, kept node) for one cluster of nodes: the member with the smallest rank stays."""
    members = list(members)
    kept = min(members, key=lambda m: m[1])
    for m in sorted(members, key=lambda m: m[1]):
        if m != kept:
            yield m, kept


def drops(members: list[str], rank: dict[str, Rank]) -> Iterator[tuple[str, str]]:
    """(dropped id, kept id) for one cluster: the member with the smallest rank stays."""
    kept = min(members, key=lambda m: rank[m])
    for m in sorted(members):
        if m != kept:
            yield m, kept


def near_duplicates(batches: Iterable[pa.RecordBatch], cfg) -> dict[str, str]:
    """In one process: every dropped id → the id it duplicates. For evaluation and small corpora.

    Holds every document's evidence in memory; the Beam stage (tamis.pipelines.neardup) does
    the same steps without that.
    """
    signer = Signer(cfg)
    evidence: dict[str, bytes] = {}
    rank: dict[str, Rank] = {}
    keys: list[np.ndarray] = []
    owners: list[str] = []
    for batch in batches:
        ids = batch.column("id").to_pylist()
        signed = signer.sign(batch.column("text").to_pylist())
        batch_ranks = ranks(batch, cfg.keep, cfg.score_column)
        for j, r in enumerate(signed.rows.tolist()):
            rank[ids[r]] = batch_ranks[r]
            evidence[ids[r]] = signed.evidence[j]
        keys.append(signed.buckets.ravel())
        owners += [ids[r] for r in signed.rows.tolist() for _ in range(signed.buckets.shape[1])]
    uf = UnionFind()
    buckets = np.concatenate(keys) if keys else np.empty(0, np.uint64)
    for a, b in set(candidate_pairs(buckets, owners, cfg.bucket_pairs)):
        if signer.verified(evidence[a], evidence[b]):
            uf.union(a, b)
    return {d: k for members in uf.clusters().values() for d, k in drops(members, rank)}
