"""Compare two runs (`tamis diff`): what changed in the config, the counts, the drops per reason, and which
documents moved between kept and dropped.

Typical use: rerun with one threshold moved and see its whole effect, including
documents another filter now catches. Counts come from the two manifests;
movements join the two runs' ids (shards/ and dropped/, id and reason columns
only) with pyarrow, so a run of millions of documents diffs without reading text.
"""

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tamis.errors import ConfigError
from tamis.filters import registry
from tamis.report import runs

KEPT = "kept"
ABSENT = "(not in run)"
_COUNTS = ("read", "kept", "dropped", "errors", "skipped_non_document")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a config; a list of named entries (the filter chain) is keyed by name, not position."""
    if isinstance(value, dict) and (value or not prefix):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "name" in v for v in value):
        out = {}
        for v in value:
            rest = {k: x for k, x in v.items() if k != "name"}
            out |= flatten(rest, f"{prefix}{v['name']}.") if rest else {f"{prefix}{v['name']}": "(on)"}
        return out
    return {prefix.rstrip("."): value}


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """The config with each filter's parameters as it ran (defaults filled in), without the output path,
    so a changed default reads as a change and the two runs' own paths do not."""
    out = {k: v for k, v in config.items() if k != "output"}
    chain = []
    for spec in config.get("filters", []):
        try:
            params = registry.build(spec["name"], spec.get("params", {})).params()
        except ConfigError:
            params = spec.get("params", {})
        chain.append({**spec, "params": params})
    if chain:
        out["filters"] = chain
    return out


def _delta(a: dict[str, int], b: dict[str, int], order: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows (key, a, b, delta): in `order` when given, else largest change first."""
    keys = [k for k in order if k in a or k in b] or sorted(
        set(a) | set(b), key=lambda k: (-abs(b.get(k, 0) - a.get(k, 0)), k))
    return [{"key": k, "a": a.get(k, 0), "b": b.get(k, 0), "delta": b.get(k, 0) - a.get(k, 0)} for k in keys]


def statuses(run: str, m: dict[str, Any]) -> pa.Table:
    """(id, status) of every document of a run: "kept" or the reason it was dropped."""
    kept = runs.read_columns(run, runs.parquet_files(m, "shards"), ["id"])
    gone = runs.read_columns(run, runs.parquet_files(m, "dropped"), ["id", "reason"])
    parts = []
    if kept.num_rows:
        parts.append(pa.table({"id": kept.column("id").cast(pa.string()),
                               "status": pa.array([KEPT] * kept.num_rows, pa.string())}))
    if gone.num_rows:
        parts.append(pa.table({"id": gone.column("id").cast(pa.string()),
                               "status": gone.column("reason").cast(pa.string())}))
    if not parts:
        return pa.table({"id": pa.array([], pa.string()), "status": pa.array([], pa.string())})
    return pa.concat_tables(parts)


def compare(run_a: str, run_b: str, examples: int = 5) -> dict[str, Any]:
    """Config changes, counts, stages and reasons (A, B, delta), and the documents whose fate changed."""
    ma, mb = runs.load(run_a), runs.load(run_b)
    ca, cb = ma.get("counts", {}), mb.get("counts", {})
    fa, fb = flatten(effective(ma.get("config", {}))), flatten(effective(mb.get("config", {})))
    config = [{"key": k, "a": fa.get(k, ABSENT), "b": fb.get(k, ABSENT)}
              for k in sorted(set(fa) | set(fb)) if fa.get(k, ABSENT) != fb.get(k, ABSENT)]
    sa, sb = statuses(run_a, ma), statuses(run_b, mb)
    joined = sa.join(sb, keys="id", join_type="full outer", left_suffix="_a", right_suffix="_b")
    a = pc.fill_null(joined.column("status_a"), ABSENT)
    b = pc.fill_null(joined.column("status_b"), ABSENT)
    changed = pc.not_equal(a, b)
    moved_table = pa.table({"id": joined.column("id"), "a": a, "b": b}).filter(changed)
    groups = moved_table.group_by(["a", "b"]).aggregate([("id", "count")])
    moves = []
    for g in sorted(groups.to_pylist(), key=lambda g: (-g["id_count"], g["a"], g["b"])):
        sel = moved_table.filter(pc.and_(pc.equal(moved_table.column("a"), g["a"]),
                                         pc.equal(moved_table.column("b"), g["b"])))
        ids = sorted(sel.column("id").to_pylist())[:examples]
        moves.append({"a": g["a"], "b": g["b"], "documents": g["id_count"], "examples": ids})
    summary = {
        "kept_to_dropped": sum(x["documents"] for x in moves if x["a"] == KEPT and x["b"] not in (KEPT, ABSENT)),
        "dropped_to_kept": sum(x["documents"] for x in moves if x["b"] == KEPT and x["a"] not in (KEPT, ABSENT)),
        "other_reason": sum(x["documents"] for x in moves if ABSENT not in (x["a"], x["b"]) and KEPT not in (
            x["a"], x["b"])),
        "only_in_a": sum(x["documents"] for x in moves if x["b"] == ABSENT),
        "only_in_b": sum(x["documents"] for x in moves if x["a"] == ABSENT),
    }
    return {
        "a": run_a,
        "b": run_b,
        "config": config,
        "counts": _delta(ca, cb, _COUNTS),
        "stages": _delta(ca.get("dropped_by_stage", {}), cb.get("dropped_by_stage", {})),
        "reasons": _delta(ca.get("dropped_by_reason", {}), cb.get("dropped_by_reason", {})),
        "moved": summary,
        "moves": moves,
    }
