"""DSIR: data selection by importance resampling over hashed n-gram features (Xie et al., 2023).

A document's features are the counts of its word n-grams hashed into a fixed
number of buckets. Fitting sums those counts over a raw corpus and a target
corpus; the log importance weight of a document is its counts dotted with
`log(p_target + eps) - log(p_raw + eps)`. Selecting k documents draws without
replacement in proportion to the weights by Gumbel top-k: add Gumbel noise to
the log weights and keep the k largest.

Features match the reference implementation (`data-selection` 1.0.3,
`HashedNgramDSIR`) exactly: nltk's WordPunct pattern `\\w+|[^\\w\\s]+` run by
the `regex` engine on the lower-cased text, the unigrams plus every k-gram
(k = 2..n) joined by one space, each bucketed by `int(sha256(utf8)) % buckets`.

The fitted model is an artifact directory (counts and log ratios as .npy, a
manifest with parameters and checksums, no pickle). Counts add, so fitting
can run over any number of batches or workers and be summed.
"""

import hashlib
import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import regex

from tamis.errors import ConfigError, InputError, IntegrityError, ResourceError
from tamis.io import atomic
from tamis.io.manifest import MANIFEST, read_manifest, write_manifest
from tamis.validation import Params

log = logging.getLogger(__name__)

KIND = "dsir"
FORMAT_VERSION = 1
EPS = 1e-8  # the reference's additive constant inside both logs
_WORDPUNCT = regex.compile(r"\w+|[^\w\s]+", regex.UNICODE | regex.MULTILINE | regex.DOTALL)
_FILES = {"raw_counts": "raw_counts.npy", "target_counts": "target_counts.npy", "log_diff": "log_diff.npy"}
_CACHE_MAX = 1 << 20  # n-gram -> bucket memo entries before the memo is cleared


def tokenize(text: str) -> list[str]:
    """WordPunct tokens of the lower-cased text (the reference's `wpt.tokenize(text.lower())`)."""
    return _WORDPUNCT.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[str]:
    """Unigrams, then the k-grams for k = 2..n, joined by one space."""
    out = list(tokens)
    for k in range(2, n + 1):
        out.extend(" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1))
    return out


def bucket(gram: str, num_buckets: int) -> int:
    """`int(sha256(gram).hexdigest(), 16) % num_buckets`; lone surrogates pass through instead of raising."""
    digest = hashlib.sha256(gram.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest, "big") % num_buckets


@dataclass
class HashedNgrams:
    """Maps texts to hashed n-gram bucket ids, memoizing frequent n-grams (sha256 dominates the cost)."""

    n: int = 2
    num_buckets: int = 10000
    _memo: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def ids(self, text: str) -> np.ndarray:
        grams = ngrams(tokenize(text), self.n)
        memo = self._memo
        if len(memo) > _CACHE_MAX:
            memo.clear()
        ids = list(map(memo.get, grams))  # one C-level pass; None marks n-grams not hashed yet
        if None in ids:
            for i, b in enumerate(ids):
                if b is None:
                    ids[i] = memo[grams[i]] = bucket(grams[i], self.num_buckets)
        return np.array(ids, dtype=np.int64)

    def counts(self, texts: Iterable[str]) -> np.ndarray:
        """Summed bucket counts over all texts (the fit statistic)."""
        total = np.zeros(self.num_buckets, dtype=np.int64)
        for t in texts:
            total += np.bincount(self.ids(t), minlength=self.num_buckets)
        return total

    def length(self, num_features: np.ndarray) -> np.ndarray:
        """The reference's per-document length: (feature count + n(n-1)/2) // n, the token count when >= n."""
        return (num_features + self.n * (self.n - 1) // 2) // self.n


class DSIRParams(Params):
    ngrams: int = 2
    num_buckets: int = 10000
    min_example_length: int = 100  # documents shorter than this (in tokens) are never selected
    target_proportions: list[float] | None = None  # separate targets: share of k per target; None = by target size

    def check(self) -> None:
        if self.ngrams < 1:
            raise ConfigError(f"The 'ngrams' parameter of dsir must be >= 1. Got {self.ngrams} instead.")
        if self.num_buckets < 1:
            raise ConfigError(f"The 'num_buckets' parameter of dsir must be >= 1. Got {self.num_buckets} instead.")


class DSIRModel:
    """Fitted DSIR state: raw and target bucket counts and the per-bucket log ratio.

    `target_counts` has one row per target. With several rows, each target has
    its own log weights and selection takes a share of k from each in turn
    (the reference's `separate_targets=True`); pool the targets into one row
    to select for their union instead.
    """

    def __init__(self, params: DSIRParams, raw_counts: np.ndarray, target_counts: np.ndarray):
        params.check()
        target_counts = np.atleast_2d(target_counts)
        if raw_counts.shape != (params.num_buckets,) or target_counts.shape[1] != params.num_buckets:
            raise IntegrityError(
                f"dsir counts have shapes {raw_counts.shape} and {target_counts.shape}; "
                f"expected ({params.num_buckets},) and (targets, {params.num_buckets})"
            )
        if raw_counts.sum() == 0 or (target_counts.sum(axis=1) == 0).any():
            raise InputError("DSIR needs at least one token in the raw data and in every target")
        self.params = params
        self.raw_counts = raw_counts.astype(np.int64)
        self.target_counts = target_counts.astype(np.int64)
        raw_p = self.raw_counts / self.raw_counts.sum()
        target_p = self.target_counts / self.target_counts.sum(axis=1, keepdims=True)
        self.log_diff = np.log(target_p + EPS) - np.log(raw_p + EPS)  # (targets, buckets)
        self.features = HashedNgrams(params.ngrams, params.num_buckets)

    @classmethod
    def fit(cls, params: DSIRParams, raw_texts: Iterable[str], targets: list[Iterable[str]]) -> "DSIRModel":
        """Fit on all tokens of the raw texts and of each target (one iterable per separate target)."""
        params.check()
        feats = HashedNgrams(params.ngrams, params.num_buckets)
        raw = feats.counts(raw_texts)
        target = np.stack([feats.counts(t) for t in targets])
        return cls(params, raw, target)

    @property
    def num_targets(self) -> int:
        return self.log_diff.shape[0]

    def proportions(self) -> np.ndarray:
        if self.params.target_proportions is not None:
            p = np.asarray(self.params.target_proportions, dtype=np.float64)
            if p.shape != (self.num_targets,):
                raise ConfigError(
                    f"The 'target_proportions' parameter of dsir must have {self.num_targets} values. "
                    f"Got {self.params.target_proportions} instead."
                )
            return p
        sizes = self.target_counts.sum(axis=1).astype(np.float64)
        return sizes / sizes.sum()

    def weigh(self, texts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """(log importance weights of shape (docs, targets), lengths) for the texts."""
        weights, lengths = [], []
        for t in texts:
            ids = self.features.ids(t)
            weights.append(self.log_diff[:, ids].sum(axis=1))
            lengths.append(len(ids))
        w = np.array(weights, dtype=np.float64).reshape(-1, self.num_targets)
        return w, self.features.length(np.asarray(lengths, dtype=np.int64))

    def save(self, root: str) -> dict:
        """Write the counts and log ratios as .npy, then the manifest (last)."""
        atomic.makedirs(root)
        arrays = {"raw_counts": self.raw_counts, "target_counts": self.target_counts, "log_diff": self.log_diff}
        for key, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            atomic.write_bytes(atomic.join(root, _FILES[key]), buf.getvalue())
        body = {
            "params": {
                "ngrams": self.params.ngrams,
                "num_buckets": self.params.num_buckets,
                "min_example_length": self.params.min_example_length,
                "target_proportions": self.params.target_proportions,
            },
            "features": "wordpunct(regex, lowercase) n-grams, sha256 % num_buckets",
            "eps": EPS,
            "raw_tokens": int(self.raw_counts.sum()),
            "target_tokens": self.target_counts.sum(axis=1).tolist(),
        }
        return write_manifest(root, KIND, FORMAT_VERSION, body, list(_FILES.values()))

    @classmethod
    def load(cls, root: str) -> "DSIRModel":
        """Load a saved model, verifying checksums; ResourceError when there is none at `root`."""
        if not atomic.exists(atomic.join(root, MANIFEST)):
            raise ResourceError(
                f"no DSIR model at {root} (no {MANIFEST})", hint="fit one first, e.g. DSIRModel.fit(...).save(path)"
            )
        manifest = read_manifest(root, KIND, FORMAT_VERSION)
        arrays = {}
        for key, name in _FILES.items():
            with atomic.open_read(atomic.join(root, name)) as f:
                arrays[key] = np.load(io.BytesIO(f.read()), allow_pickle=False)
        model = cls(DSIRParams(**manifest["params"]), arrays["raw_counts"], arrays["target_counts"])
        if not np.allclose(model.log_diff, arrays["log_diff"], rtol=0, atol=1e-12):
            raise IntegrityError(f"{root}: log_diff.npy does not match its counts", hint="refit the DSIR model")
        return model


def gumbel_reference(n: int, seed: int) -> np.ndarray:
    """Gumbel noise as the reference draws it: `np.random.seed(seed); np.random.gumbel(size=n)`."""
    return np.random.RandomState(seed).gumbel(size=n)


def gumbel_hashed(ids: list[str], seed: int) -> np.ndarray:
    """Gumbel noise from a hash of (seed, id): the same for a document whatever the order or sharding."""
    u = np.empty(len(ids), dtype=np.float64)
    prefix = f"{seed}\x00".encode()
    for i, doc_id in enumerate(ids):
        h = hashlib.blake2b(prefix + doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        u[i] = (int.from_bytes(h, "big") + 0.5) / 2.0**64  # in (0, 1)
    return -np.log(-np.log(u))


def share_of_k(k: int, proportions: np.ndarray) -> list[int]:
    """Per-target counts: floor of k * p, the remainder to the last target (as the reference does)."""
    per = [int(k * p) for p in proportions]
    per[-1] += k - sum(per)
    return per


def resample(
    log_weights: np.ndarray,
    lengths: np.ndarray,
    k: int,
    seed: int = 42,
    min_length: int = 100,
    proportions: np.ndarray | None = None,
    noise: str = "reference",
    ids: list[str] | None = None,
) -> np.ndarray:
    """Indices (sorted) of k documents drawn without replacement by Gumbel top-k; pure.

    `log_weights` is (docs,) or (docs, targets). Documents shorter than
    `min_length` are never drawn. With several targets, target t draws its
    share of k from the documents no earlier target took. `noise` is
    "reference" (numpy's legacy stream seeded once, draws in document order:
    identical to the reference implementation, but only for one in-memory
    array), "hashed" (a hash of (seed, id): order- and shard-independent, as
    the Beam selection uses) or "none" (plain top-k by weight).
    """
    w = np.asarray(log_weights, dtype=np.float64)
    w = w[:, None] if w.ndim == 1 else w
    if noise not in ("reference", "hashed", "none"):
        raise ConfigError(
            f"The 'noise' parameter of dsir resample must be one of reference, hashed, none. Got {noise!r} instead."
        )
    if noise == "hashed" and (ids is None or len(ids) != len(w)):
        raise ConfigError("dsir resample with noise='hashed' needs one id per document")
    available = np.asarray(lengths) >= min_length
    if k > int(available.sum()):
        raise ConfigError(
            f"cannot select {k} documents: only {int(available.sum())} are at least {min_length} tokens long"
        )
    if w.shape[1] == 1:
        per_target = [k]
    else:
        p = np.full(w.shape[1], 1 / w.shape[1]) if proportions is None else np.asarray(proportions, dtype=np.float64)
        per_target = share_of_k(k, p)
    rng = np.random.RandomState(seed) if noise == "reference" else None
    hashed = gumbel_hashed(ids, seed) if noise == "hashed" else None
    chosen = np.zeros(len(w), dtype=bool)
    for t, kt in enumerate(per_target):
        if kt == 0:
            continue
        idx = np.flatnonzero(available)
        keys = w[idx, t].copy()
        if rng is not None:
            keys += rng.gumbel(size=len(keys))
        elif hashed is not None:
            keys += hashed[idx]
        top = idx[np.argpartition(-keys, kt - 1)[:kt]] if kt < len(idx) else idx
        chosen[top] = True
        available[top] = False
    return np.flatnonzero(chosen)
