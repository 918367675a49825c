"""The mixture plan: from every document's domain, tokens and key to each output sample's place in the blend.

Pure numpy over the compact table the counting pass gathers (about 30 bytes a
document), so the whole plan is computed in one place and comes out the same
whatever produced the table: targets per domain (tamis.mixers.budget), copies
per document (tamis.mixers.sampling), the order within each domain (epoch,
then re-mixed key), the Megatron blend across domains (tamis.mixers.blend),
and output shards cut every `target_bytes` of text along the blend.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from tamis.mixers.blend import interleave, prefix_deviation
from tamis.mixers.budget import allocate, domain_weights
from tamis.mixers.sampling import copies, epoch_keys
from tamis.mixers.spec import MixSpec

BLEND_RULE = "megatron-greedy-largest-shortfall"


@dataclass
class Docs:
    """One row per input document: where it is (part, row), its domain (-1: none), tokens, text bytes, key."""

    part: np.ndarray
    row: np.ndarray
    domain: np.ndarray
    tokens: np.ndarray
    nbytes: np.ndarray
    key: np.ndarray

    @classmethod
    def concat(cls, tables: list["Docs"]) -> "Docs":
        fields = ("part", "row", "domain", "tokens", "nbytes", "key")
        dtypes = (np.int32, np.int64, np.int16, np.int64, np.int64, np.uint64)
        if not tables:
            return cls(*(np.zeros(0, dtype=t) for t in dtypes))
        return cls(*(np.concatenate([getattr(t, f) for t in tables]).astype(d) for f, d in zip(fields, dtypes, strict=True)))


@dataclass
class Samples:
    """One row per output sample: the document (index into Docs), its repeat, its blend position and shard."""

    doc: np.ndarray
    epoch: np.ndarray
    position: np.ndarray
    shard: np.ndarray


def _epochs(n_copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    doc = np.repeat(np.arange(len(n_copies), dtype=np.int64), n_copies)
    starts = np.cumsum(n_copies) - n_copies
    epoch = np.arange(len(doc), dtype=np.int64) - np.repeat(starts, n_copies)
    return doc, epoch.astype(np.int32)


def _shards(nbytes_in_order: np.ndarray, target_bytes: int) -> np.ndarray:
    """Shard of each position: a new shard starts once the previous one holds target_bytes of text."""
    before = np.cumsum(nbytes_in_order) - nbytes_in_order
    raw = before // target_bytes
    return np.unique(raw, return_inverse=True)[1].astype(np.int32)  # dense numbering past oversized samples


def build(docs: Docs, spec: MixSpec) -> tuple[Samples, dict[str, Any]]:
    """The samples of the mixture, and the report of targets and what was achieved per domain."""
    names = [d.name for d in spec.domains]
    n_dom = len(names)
    member = docs.domain >= 0
    dom = docs.domain[member].astype(np.int64)
    tokens_d = np.bincount(dom, weights=docs.tokens[member], minlength=n_dom).astype(np.int64)
    docs_d = np.bincount(dom, minlength=n_dom)
    weights = domain_weights(spec.weights, names, tokens_d)
    alloc = allocate(weights, tokens_d, spec.budget_tokens, spec.epochs_cap(), names)

    n_copies = np.zeros(len(docs.key), dtype=np.int32)
    for d in range(n_dom):
        idx = np.flatnonzero(docs.domain == d)
        n_copies[idx] = copies(docs.key[idx], docs.tokens[idx], float(alloc.target[d]))
    doc, epoch = _epochs(n_copies)
    s_dom = docs.domain[doc].astype(np.int64)
    ranked = np.lexsort((docs.row[doc], docs.part[doc], epoch_keys(docs.key[doc], epoch), epoch, s_dom))
    counts = np.bincount(s_dom, minlength=n_dom)
    lengths = docs.tokens[doc[ranked]] if spec.blend == "tokens" else None  # grouped by domain, in use order
    order = interleave(counts, lengths)
    position = np.empty(len(doc), dtype=np.int64)
    position[ranked] = np.argsort(order, kind="stable")  # the k-th sample of domain d takes d's k-th slot
    by_position = np.argsort(position)
    shard = np.empty(len(doc), dtype=np.int32)
    shard[by_position] = _shards(docs.nbytes[doc][by_position], spec.shards.target_bytes)

    achieved = np.bincount(s_dom, weights=docs.tokens[doc], minlength=n_dom)
    target_share = alloc.target / max(alloc.target.sum(), 1)
    achieved_share = achieved / max(achieved.sum(), 1)
    ahead, behind = prefix_deviation(order, counts, lengths)
    domains = {}
    for d, name in enumerate(names):
        domains[name] = {
            "documents": int(docs_d[d]),
            "tokens": int(tokens_d[d]),
            "weight": round(float(weights[d]), 6),
            "requested_tokens": round(float(alloc.requested[d])),
            "target_tokens": round(float(alloc.target[d])),
            "target_share": round(float(target_share[d]), 6),
            "achieved_tokens": int(achieved[d]),
            "achieved_share": round(float(achieved_share[d]), 6),
            "share_error": round(float(achieved_share[d] - target_share[d]), 6),
            "samples": int(counts[d]),
            "epochs": round(float(achieved[d] / tokens_d[d]), 4) if tokens_d[d] else 0.0,
            "max_epochs": spec.epochs_cap()[d],
            "capped": bool(alloc.capped[d]),
        }
    report = {
        "weights_from": spec.weights.kind,
        "budget_tokens": spec.budget_tokens,
        "target_tokens": round(float(alloc.target.sum())),
        "achieved_tokens": int(achieved.sum()),
        "budget_shortfall_tokens": round(alloc.short),
        "redistributed": alloc.moved,
        "documents": int(len(docs.key)),
        "unassigned_documents": int((~member).sum()),
        "samples": int(len(doc)),
        "repeated_samples": int((epoch > 0).sum()),
        "duplicate_ids": int(len(docs.key[member]) - len(np.unique(docs.key[member]))),
        "domains": domains,
        "blend": {"rule": BLEND_RULE, "unit": spec.blend, "max_ahead": round(ahead, 4), "max_behind": round(behind, 4),
                  "longest_sample_tokens": int(docs.tokens[doc].max()) if len(doc) else 0},
    }
    return Samples(doc, epoch, position, shard), report
