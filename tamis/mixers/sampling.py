"""Deterministic sampling: which documents a domain takes, and how often, decided by a hash of (seed, id).

Every document gets a 64-bit key from a hash of (seed, document id). A domain
whose target is `r` times its tokens takes every document `floor(r)` times and,
for the fractional part, the documents with the smallest keys until their
tokens are closest to what is left of the target. That lands within half a
document of the target, and depends only on the documents (ids, token
counts), never on their order, the runner, the worker count or the sharding.

Within a domain, samples are ordered epoch by epoch (all first copies, then
all second copies, ...), each epoch in the order of a key re-mixed with the
epoch number, so repeats of a document are an epoch apart and each epoch is a
fresh permutation.
"""

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def doc_keys(ids: list[str], seed: int) -> np.ndarray:
    """uint64 keys from blake2b(seed, id): the same for a document wherever and whenever it is read."""
    prefix = f"{seed}\x00".encode()
    out = np.empty(len(ids), dtype=np.uint64)
    for i, doc_id in enumerate(ids):
        digest = hashlib.blake2b(prefix + doc_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "big")
    return out


def epoch_keys(keys: np.ndarray, epoch: np.ndarray | int) -> np.ndarray:
    """A fresh permutation key per epoch: splitmix64's finalizer of key + (epoch + 1) * golden ratio."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) + (np.asarray(epoch, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def copies(keys: np.ndarray, tokens: np.ndarray, target: float) -> np.ndarray:
    """How many times (int32) each document of one domain is taken so the tokens come closest to `target`.

    Ties between equal keys (the same id twice) are broken by position, so the input order matters only then.
    """
    tokens = np.asarray(tokens, dtype=np.int64)
    total = int(tokens.sum())
    out = np.zeros(len(tokens), dtype=np.int32)
    if total == 0 or target <= 0:
        return out
    full = int(target // total)
    out[:] = full
    rest = target - full * total
    order = np.argsort(keys, kind="stable")
    cum = np.concatenate([[0], np.cumsum(tokens[order])])
    k = int(np.searchsorted(cum, rest, side="right"))  # cum[k - 1] <= rest < cum[k]
    if k < len(cum) and cum[k] - rest < rest - cum[k - 1]:
        k += 1  # one more document comes closer
    out[order[: k - 1]] += 1
    return out
