"""Which configured threshold bounds which score column, found by asking each filter's own rule.

Filters name their thresholds in their own words: `min_doc_words` bounds
`word_count`, `max_symbol_word_ratio` bounds both `hash_ratio` and
`ellipsis_ratio`, `top_n_grams.3` bounds `top_3_gram_char_frac`. Names alone
cannot be matched, and a table kept here would drift from the filters. So the
report probes the rule: from the scores of a document the filter kept, it sets
one column just below and just above a numeric parameter's value; where the
rule's decision flips, that parameter may bound that column. It confirms by
building the filter with the parameter moved and seeing the flip move with it
(two parameters of equal value, such as Gopher's 0.3 for paragraphs and lines,
are told apart this way). What cannot be confirmed is not marked, and the
report lists it.

A run-wide filter's rule needs values computed over the whole run (the
`quality` filter's `cutoff` for a top fraction). Its drops record them in
their detail under the field's own name, and the caller passes them in.
"""

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamis.errors import ConfigError
from tamis.filters import registry
from tamis.filters.base import Filter

_PROBE_ERRORS = (ConfigError, KeyError, ValueError, TypeError, IndexError)


@dataclass(frozen=True)
class Threshold:
    component: str  # "gopher_quality"
    param: str  # "min_doc_words", or "top_n_grams.3" inside a mapping
    value: float
    column: str  # "gopher_quality.word_count"
    drops: str  # "below" or "above": the side of `value` the rule drops


def numeric_params(params: dict[str, Any], prefix: str = "") -> list[tuple[str, float]]:
    """(dotted path, value) of every number in the parameters, nested mappings and lists included; not booleans."""
    out = []
    for key, value in params.items():
        path = f"{prefix}{key}"
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            out.append((path, value))
        elif isinstance(value, dict):
            out += numeric_params(value, f"{path}.")
        elif isinstance(value, list | tuple):
            out += numeric_params(dict(enumerate(value)), f"{path}.")
    return out


def _with_param(params: dict[str, Any], path: str, value: float) -> dict[str, Any]:
    out = copy.deepcopy(params)
    node: Any = out
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[_key(node, key)]
    node[_key(node, keys[-1])] = value
    return out


def _key(node: Any, key: str) -> Any:
    """A dotted-path segment as the container's own key: list index or a mapping's int key."""
    if isinstance(node, list):
        return int(key)
    if key not in node and key.lstrip("-").isdigit():
        return int(key)
    return key


def _moved(value: float) -> float:
    """A different valid-looking value for the confirmation probe (ints stay ints)."""
    if isinstance(value, int):
        return value - 1 if value >= 1 else value + 1
    return value * 0.9 if value else 1e-3


def _keeps(filt: Filter, base: dict[str, np.ndarray], column: str, value: float) -> bool:
    scores = dict(base)
    scores[column] = np.array([value], dtype=np.float64)
    keep, _ = filt.rule(scores)
    return bool(np.asarray(keep)[0])


def _flip(filt: Filter, base: dict[str, np.ndarray], column: str, value: float) -> str | None:
    """"below"/"above" when the rule keeps on one side of `value` and drops on the other, else None."""
    delta = max(abs(float(value)), 1.0) * 1e-6
    below, above = _keeps(filt, base, column, value - delta), _keeps(filt, base, column, value + delta)
    if below == above:
        return None
    return "above" if below else "below"


def probe(
    name: str, params: dict[str, Any], base: dict[str, Any], recorded: dict[str, Any] | None = None
) -> tuple[list[Threshold], list[tuple[str, float]]]:
    """(thresholds marked, numeric parameters (path, value) not matched to a column) of one component.

    `params`: the component's parameters as configured (defaults are filled in by building it);
    `recorded`: values its drops' detail recorded, of which those named like one of its fields are run-wide
    parameters; `base`: one kept document's scores (column -> value), which the rule must keep. A scorer
    without a rule has no thresholds.
    """
    cls = registry.available().get(name)
    if cls is None:
        return [], []
    params = {**params, **{k: v for k, v in (recorded or {}).items() if k in cls.model_fields}}
    try:
        filt = registry.build(name, params)
    except ConfigError:
        return [], []
    if not isinstance(filt, Filter):
        return [], []
    full = filt.params()
    candidates = numeric_params(full)
    columns = sorted(c for c in base if c.startswith(f"{name}.") and _is_number(base[c]))
    scores = {k: np.array([v]) for k, v in base.items()}
    try:
        if not bool(np.asarray(filt.rule(scores)[0])[0]):
            return [], candidates
    except _PROBE_ERRORS:
        return [], candidates
    found = []
    for path, value in candidates:
        for column in columns:
            try:
                side = _flip(filt, scores, column, value)
                if side is None or not _confirmed(name, full, path, value, scores, column):
                    continue
            except _PROBE_ERRORS:
                continue
            found.append(Threshold(name, path, value, column, side))
    marked = {t.param for t in found}
    return found, [(path, value) for path, value in candidates if path not in marked]


def _confirmed(name: str, full: dict[str, Any], path: str, value: float, scores: dict, column: str) -> bool:
    moved = _moved(value)
    try:
        other = registry.build(name, _with_param(full, path, moved))
    except ConfigError:
        return False
    return _flip(other, scores, column, moved) is not None and _flip(other, scores, column, value) is None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)
