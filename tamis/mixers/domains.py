"""Which domain each document of a batch belongs to: the first whose source, meta and score conditions hold.

Vectorized per batch: a source glob is matched once per distinct source in the
batch, a score condition is one pyarrow comparison, and the `meta` JSON is
parsed only for the rows still unassigned when a domain with meta conditions
is reached.
"""

import fnmatch
import json
import operator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.mixers.spec import DomainSpec

UNASSIGNED = -1
_OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne}


def score_columns(domains: list[DomainSpec]) -> list[str]:
    """The score columns the domains read, in order of first use."""
    out: list[str] = []
    for d in domains:
        out += [col for col, _, _ in d.scores if col not in out]
    return out


def check_columns(domains: list[DomainSpec], schema: pa.Schema, where: str) -> None:
    """Refuse a score condition on a column the input does not have, naming the ones it has."""
    for col in score_columns(domains):
        if col not in schema.names:
            have = [n for n in schema.names if "." in n]
            raise ConfigError(
                f"A domain's score condition reads column {col!r}, which {where} does not have.",
                hint=f"score columns there: {', '.join(have) or 'none'}",
            )


def _source_mask(sources: pa.Array, globs: list[str]) -> np.ndarray:
    values = pc.unique(sources).to_pylist()
    hits = [v for v in values if v is not None and any(fnmatch.fnmatchcase(v, g) for g in globs)]
    return np.asarray(pc.is_in(sources, value_set=pa.array(hits, pa.string())), dtype=bool)


def _lookup(meta: dict[str, Any], dotted: str) -> Any:
    node: Any = meta
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _meta_matches(meta: dict[str, Any], want: dict[str, Any]) -> bool:
    for field, value in want.items():
        got = _lookup(meta, field)
        if isinstance(value, str):
            if got is None or isinstance(got, dict | list) or not fnmatch.fnmatchcase(str(got), value):
                return False
        elif type(got) is not type(value) or got != value:  # 1 is not True, 1.0 is not 1
            return False
    return True


def _score_mask(batch: pa.RecordBatch, col: str, op: str, value: float) -> np.ndarray:
    values = batch.column(col)
    mask = _OPS[op](values.to_numpy(zero_copy_only=False).astype(np.float64), value)
    return np.asarray(mask & np.asarray(values.is_valid()), dtype=bool)


def assign(batch: pa.RecordBatch, domains: list[DomainSpec]) -> np.ndarray:
    """The domain index (int16) of every row; UNASSIGNED where no domain's conditions hold."""
    n = batch.num_rows
    out = np.full(n, UNASSIGNED, dtype=np.int16)
    metas: dict[int, dict[str, Any]] = {}
    raw: list[str | None] | None = None
    for index, d in enumerate(domains):
        mask = out == UNASSIGNED
        if not mask.any():
            break
        if d.sources:
            mask = mask & _source_mask(batch.column("source"), d.sources)
        for col, op, value in d.scores:
            mask = mask & _score_mask(batch, col, op, value)
        if d.meta:
            raw = batch.column("meta").to_pylist() if raw is None else raw
            for row in np.flatnonzero(mask):
                if row not in metas:
                    metas[row] = json.loads(raw[row]) if raw[row] else {}
                mask[row] = _meta_matches(metas[row], d.meta)
        out[mask] = index
    return out
