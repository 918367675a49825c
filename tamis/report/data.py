"""Everything the run report shows, gathered from a run directory as plain data (no HTML, no plots).

Counts come from the manifest and are carried as `Cell`s that remember where in
the manifest they were read (a JSON Pointer), so the page can tag every such
number and a test can check each one against the manifest. What the manifest
does not hold is computed from the files it lists, reading only the columns
needed, a batch at a time:

- text bytes (UTF-8) of kept and dropped documents, per stage and reason; the
  token figures are bytes / 4, a rule of thumb for BPE tokenizers on English
  text, labelled approximate wherever shown;
- score distributions: kept documents' `<scorer>.<field>` columns from
  shards/, and the scores that decided each drop from dropped/'s `detail`
  (a document dropped by one filter was never scored by the filters after it);
- duplicate clusters from dropped/'s `dup_of` (the kept document of a cluster);
- examples: per drop reason the documents with the smallest hash of (seed, id),
  so the choice does not depend on file order or worker count.
"""

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from tamis.report import runs, thresholds

# The order documents meet the curate stages (tamis.pipelines.curate); a stage not listed here goes last.
FLOW = ("normalize", "exact_dedup", "near_dedup", "semantic_dedup", "decontaminate", "filter")
BYTES_PER_TOKEN = 4
TOKENS_LABEL = "≈ tokens (UTF-8 bytes / 4)"
LANGUAGE_COLUMN = "langid.language"
EXAMPLES = 3
EXAMPLE_CHARS = 600
HIST_BINS = 40
SAMPLE_ROWS = 64  # kept rows offered to the threshold probe
_DOC_COLUMNS = ("id", "text", "source", "offset", "meta")


@dataclass
class Cell:
    """A number shown in the report; `ptr` is its JSON Pointer in the manifest when it was read from there."""

    value: Any
    ptr: str | None = None


def tokens(nbytes: int) -> int:
    return int(round(nbytes / BYTES_PER_TOKEN))


def example_key(seed: int, doc_id: str) -> int:
    h = hashlib.blake2b(f"{seed}\x00{doc_id}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(h, "little")


def component_names(m: dict[str, Any]) -> list[str]:
    """The configured components in chain order ("langid@1" -> "langid")."""
    return [c.split("@", 1)[0] for c in m.get("components", [])]


# --- reading ----------------------------------------------------------------------------------------------------


@dataclass
class Kept:
    """Kept documents (shards/): numeric score columns, the language column, text bytes."""

    rows: int = 0
    text_bytes: int = 0
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    languages: Counter = field(default_factory=Counter)
    sample: list[dict[str, Any]] = field(default_factory=list)  # the first rows' score columns


def read_kept(run: str, m: dict[str, Any]) -> Kept:
    files = runs.parquet_files(m, "shards")
    out = Kept()
    if not files:
        return out
    names = {f.name: None for rel in files for f in runs.schema(run, rel)}
    score_cols = [name for name in names if "." in name and name not in _DOC_COLUMNS]
    table = runs.read_columns(run, files, score_cols)
    out.rows = table.num_rows
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            out.scores[name] = col.to_numpy().astype(np.float64)
    if LANGUAGE_COLUMN in table.column_names:
        counts = pc.value_counts(table.column(LANGUAGE_COLUMN))
        out.languages = Counter({v["values"].as_py() or "": v["counts"].as_py() for v in counts})
    out.sample = table.slice(0, SAMPLE_ROWS).to_pylist()
    for rel in files:
        for batch in runs.batches(run, rel, ["text"]):
            if batch.num_columns:
                out.text_bytes += int(pc.sum(pc.binary_length(batch.column(0))).as_py() or 0)
    return out


@dataclass
class Dropped:
    """Dropped documents (dropped/): one row each, with the component that dropped it and its text bytes."""

    table: pa.Table
    component: np.ndarray  # "" when no score in the detail names one
    text_bytes: np.ndarray
    scores: dict[str, dict[str, np.ndarray]]  # component -> column -> values of the documents it dropped
    run_wide: dict[str, dict[str, Any]]  # component -> values its drops recorded under a field's name
    examples: dict[str, list[dict[str, Any]]]  # reason -> example documents


def _component(detail: str | None) -> str:
    """The scorer named by a detail's first `<scorer>.<field>` key ('' when none)."""
    if not detail or not detail.startswith('{"'):
        return ""
    key = detail[2 : detail.find('"', 2)]
    return key.split(".", 1)[0] if "." in key else ""


def _parse_details(details: list[str]) -> dict[str, np.ndarray]:
    """Columns of JSON objects: float64 (NaN where absent) for numbers, object otherwise. pyarrow's reader
    first; Python's, which accepts the NaN that json.dumps writes, when pyarrow refuses."""
    try:
        table = pajson.read_json(pa.py_buffer("\n".join(details).encode()))
        columns = {name: table.column(name) for name in table.column_names}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        rows: dict[str, list] = defaultdict(lambda: [None] * len(details))
        for i, d in enumerate(details):
            for k, v in json.loads(d).items():
                rows[k][i] = v
        columns = {k: _arrow(v) for k, v in rows.items()}
    out = {}
    for name, col in columns.items():
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
            out[name] = pc.fill_null(pc.cast(col, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
        else:
            out[name] = np.asarray(col.to_pylist(), dtype=object)
    return out


def _arrow(values: list) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: not a score column
        return pa.array([json.dumps(v) for v in values], pa.string())


def read_dropped(run: str, m: dict[str, Any], seed: int = 0, examples: int = EXAMPLES) -> Dropped:
    files = runs.parquet_files(m, "dropped")
    table = runs.read_columns(run, files, ["id", "source", "offset", "stage", "reason", "dup_of", "detail"])
    n = table.num_rows
    details = table.column("detail").to_pylist() if n else []
    component = np.array([_component(d) for d in details], dtype=object)
    scores: dict[str, dict[str, np.ndarray]] = {}
    run_wide: dict[str, dict[str, Any]] = {}
    for comp in sorted(set(component) - {""}):
        idx = np.flatnonzero(component == comp)
        cols = _parse_details([details[i] for i in idx])
        scores[comp] = {k: v for k, v in cols.items() if k.startswith(f"{comp}.") and v.dtype == np.float64}
        if comp == LANGUAGE_COLUMN.split(".")[0] and LANGUAGE_COLUMN in cols:
            scores[comp][LANGUAGE_COLUMN] = cols[LANGUAGE_COLUMN]
        run_wide[comp] = {k: float(v[0]) for k, v in cols.items()
                          if "." not in k and v.dtype == np.float64 and len(np.unique(v)) == 1}

    reasons = table.column("reason").to_pylist() if n else []
    ids = table.column("id").to_pylist() if n else []
    by_reason: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for i, (reason, doc_id) in enumerate(zip(reasons, ids, strict=True)):
        by_reason[reason].append((example_key(seed, doc_id), i))
    chosen_rows = {reason: [i for _, i in sorted(keyed)[:examples]] for reason, keyed in by_reason.items()}
    picked = {i for rows in chosen_rows.values() for i in rows}

    text_bytes = np.zeros(n, dtype=np.int64)
    texts: dict[int, str] = {}
    start = 0
    for rel in files:
        for batch in runs.batches(run, rel, ["text"]):
            lengths = pc.binary_length(batch.column(0)).to_numpy(zero_copy_only=False)
            text_bytes[start : start + len(lengths)] = lengths
            for i in [i for i in picked if start <= i < start + len(lengths)]:
                texts[i] = batch.column(0)[i - start].as_py()
            start += len(lengths)

    rows = {i: {k: table.column(k)[i].as_py() for k in table.column_names} for i in picked}
    chosen = {reason: [{**rows[i], "text": texts.get(i, "")[:EXAMPLE_CHARS], "chars": len(texts.get(i, ""))}
                       for i in idx] for reason, idx in chosen_rows.items()}
    return Dropped(table, component, text_bytes, scores, run_wide, chosen)


def read_errors(run: str, m: dict[str, Any], limit: int = EXAMPLES) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rel in runs.parquet_files(m, "errors"):
        for batch in runs.batches(run, rel, ["source", "offset", "offset_kind", "error", "raw"]):
            for row in batch.slice(0, limit - len(out)).to_pylist():
                raw = row.pop("raw", None) or b""
                row["raw"] = raw[:EXAMPLE_CHARS].decode("utf-8", "replace")
                out.append(row)
            if len(out) >= limit:
                return out
    return out


# --- sections ---------------------------------------------------------------------------------------------------


def summary(run: str, m: dict[str, Any]) -> dict[str, Any]:
    counts = m.get("counts", {})
    sources = [
        {"source": src, **{k: Cell(v, runs.pointer("sources", src, k)) for k, v in s.items() if _is_count(v)},
         "balanced": s.get("balanced")}
        for src, s in m.get("sources", {}).items()
    ]
    return {
        "run": run,
        "kind": m.get("kind"),
        "made_by": m.get("made_by"),
        "format_version": m.get("format_version"),
        "fingerprint": m.get("config_fingerprint"),
        "tamis": m.get("versions", {}).get("tamis"),
        "components": m.get("components", []),
        "seconds": Cell(m["seconds"], "/seconds") if "seconds" in m else None,
        "counts": [(k, Cell(v, runs.pointer("counts", k))) for k, v in counts.items() if _is_count(v)],
        "sources": sources,
    }


def _is_count(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def stage_order(stages) -> list[str]:
    known = [s for s in FLOW if s in stages]
    return known + sorted(set(stages) - set(FLOW))


def funnel(m: dict[str, Any], kept: Kept, dropped: Dropped) -> dict[str, Any] | None:
    counts = m.get("counts")
    if not counts or "read" not in counts:
        return None
    by_stage = counts.get("dropped_by_stage", {})
    stage_col = np.asarray(dropped.table.column("stage").to_pylist() if dropped.table.num_rows else [], dtype=object)
    docs = counts["read"] - counts.get("errors", 0)
    nbytes = kept.text_bytes + int(dropped.text_bytes.sum())
    rows = [
        {"stage": "read", "label": "records read", "out": Cell(counts["read"], "/counts/read"), "dropped": None},
        {"stage": "errors", "label": "unreadable records (errors/)", "in": counts["read"],
         "dropped": Cell(counts.get("errors", 0), "/counts/errors" if "errors" in counts else None),
         "out": docs, "bytes_out": nbytes},
    ]
    order = component_names(m)
    for stage in stage_order(by_stage):
        mask = stage_col == stage
        gone = int(by_stage[stage])
        stage_bytes = int(dropped.text_bytes[mask].sum())
        rows.append({"stage": stage, "label": stage, "in": docs, "bytes_in": nbytes,
                     "dropped": Cell(gone, runs.pointer("counts", "dropped_by_stage", stage)),
                     "bytes_dropped": stage_bytes, "out": docs - gone, "bytes_out": nbytes - stage_bytes})
        if stage == "filter":
            rows += _filter_rows(order, dropped, mask, docs, nbytes)
        docs, nbytes = docs - gone, nbytes - stage_bytes
    rows.append({"stage": "kept", "label": "kept (shards/)", "out": Cell(counts.get("kept", docs), "/counts/kept"),
                 "bytes_out": kept.text_bytes, "dropped": None})
    return {"rows": rows, "tokens_label": TOKENS_LABEL, "kept_bytes": kept.text_bytes,
            "balanced": docs == counts.get("kept")}


def _filter_rows(order: list[str], dropped: Dropped, mask: np.ndarray, docs: int, nbytes: int) -> list[dict]:
    """One row per filter of the chain, in chain order, from dropped/ (the manifest counts only the stage)."""
    comps = dropped.component[mask]
    sizes = dropped.text_bytes[mask]
    names = order + sorted(set(comps) - set(order))
    out = []
    for name in names:
        sel = comps == name
        gone, gone_bytes = int(sel.sum()), int(sizes[sel].sum())
        out.append({"stage": f"filter:{name}" if name else "filter:(no score in detail)", "label": name or "?",
                    "sub": True, "in": docs, "bytes_in": nbytes, "dropped": Cell(gone), "bytes_dropped": gone_bytes,
                    "out": docs - gone, "bytes_out": nbytes - gone_bytes})
        docs, nbytes = docs - gone, nbytes - gone_bytes
    return [r for r in out if r["dropped"].value or r["label"] in order]


def drops(m: dict[str, Any], dropped: Dropped) -> dict[str, Any] | None:
    counts = m.get("counts")
    if not counts or "dropped_by_reason" not in counts:
        return None
    t = dropped.table
    reasons = np.asarray(t.column("reason").to_pylist() if t.num_rows else [], dtype=object)
    stages = np.asarray(t.column("stage").to_pylist() if t.num_rows else [], dtype=object)
    read = counts.get("read") or 0
    rows, mismatches = [], []
    for reason, n in sorted(counts["dropped_by_reason"].items(), key=lambda kv: (-kv[1], kv[0])):
        sel = reasons == reason
        in_files = int(sel.sum())
        if in_files != n:
            mismatches.append(f"{reason}: {n:,} in the manifest, {in_files:,} in dropped/")
        stage = Counter(stages[sel]).most_common(1)[0][0] if in_files else ""
        comps = Counter(dropped.component[sel]).most_common(1)
        rows.append({"reason": reason, "stage": stage, "component": comps[0][0] if comps else "",
                     "docs": Cell(n, runs.pointer("counts", "dropped_by_reason", reason)),
                     "share": n / read if read else 0.0, "bytes": int(dropped.text_bytes[sel].sum())})
    return {"rows": rows, "mismatches": mismatches, "tokens_label": TOKENS_LABEL}


def histogram(kept: np.ndarray, dropped: np.ndarray, marks: list[float], bins: int = HIST_BINS) -> dict[str, Any]:
    """Bin edges over the bulk of the values (a long tail beyond the 99.5th percentile is counted, not drawn),
    widened to show a threshold within the values' range (or a quarter of it beyond); unit bins for small
    integer ranges; `constant` when every value is the same."""
    kept, dropped = np.asarray(kept, dtype=np.float64), np.asarray(dropped, dtype=np.float64)
    values = np.concatenate([kept, dropped])
    finite = values[np.isfinite(values)]
    out: dict[str, Any] = {"missing": int(len(values) - len(finite))}
    if not len(finite):
        return {**out, "edges": [], "kept": [], "dropped": [], "below": 0, "above": 0}
    lo, top = float(finite.min()), float(finite.max())
    if lo == top:
        out["constant"] = lo
    q, hi = float(np.quantile(finite, 0.995)), top
    if top - lo > 4 * (q - lo) and q > lo:
        hi = q
    span = (top - lo) or 1.0
    for mark in marks:
        if lo - 0.25 * span <= mark <= top + 0.25 * span:
            lo, hi = min(lo, mark), max(hi, mark)
    integral = bool(np.all(finite == np.round(finite)))
    if integral and hi - lo + 1 <= bins:
        edges = np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.5)
    elif lo == hi:
        edges = np.array([lo - 0.5, hi + 0.5])
    else:
        edges = np.linspace(lo, hi, bins + 1)

    def count(v: np.ndarray) -> list[int]:
        return np.histogram(v[np.isfinite(v)], bins=edges)[0].tolist()

    return {**out, "edges": edges.tolist(), "kept": count(kept), "dropped": count(dropped),
            "below": int((finite < edges[0]).sum()), "above": int((finite > edges[-1]).sum())}


def scores(m: dict[str, Any], kept: Kept, dropped: Dropped) -> dict[str, Any]:
    order = component_names(m)
    specs = {s["name"]: s.get("params", {}) for s in m.get("config", {}).get("filters", [])}
    marked: list[thresholds.Threshold] = []
    unmarked: list[tuple[str, str, float]] = []
    unprobed: list[tuple[str, str]] = []
    for name in order:
        base = _probe_row(kept.sample, name)
        if not base:
            unprobed.append((name, "no kept document with all its scores to probe its rule with"))
            continue
        found, missing = thresholds.probe(name, specs.get(name, {}), base, dropped.run_wide.get(name))
        marked += found
        unmarked += [(name, path, value) for path, value in missing]
    columns = sorted(set(kept.scores) | {c for comp in dropped.scores.values() for c in comp if c != LANGUAGE_COLUMN},
                     key=lambda c: (_rank(c, order), c))
    out = []
    for col in columns:
        comp = col.split(".", 1)[0]
        k = kept.scores.get(col, np.zeros(0))
        d = dropped.scores.get(comp, {}).get(col, np.zeros(0))
        marks = [t for t in marked if t.column == col]
        finite = k[np.isfinite(k)]
        out.append({
            "column": col, "component": comp, "kept_n": len(k), "dropped_n": len(d),
            "hist": histogram(k, d, [t.value for t in marks]),
            "marks": marks,
            "kept_median": float(np.median(finite)) if len(finite) else None,
        })
    return {"columns": out, "marked": marked, "unmarked": unmarked, "unprobed": unprobed}


def _probe_row(sample: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """A kept document's scores of one component, the first with every value present (not null, not NaN)."""
    for row in sample:
        base = {k: v for k, v in row.items() if k.startswith(f"{component}.")}
        if base and all(v is not None and not (isinstance(v, float) and np.isnan(v)) for v in base.values()):
            return base
    return {}


def _rank(column: str, order: list[str]) -> int:
    comp = column.split(".", 1)[0]
    return order.index(comp) if comp in order else len(order)


def duplicates(m: dict[str, Any], dropped: Dropped) -> dict[str, Any]:
    t = dropped.table
    by_stage = m.get("counts", {}).get("dropped_by_stage", {})
    out = []
    if t.num_rows and "dup_of" in t.column_names:
        has = pc.is_valid(t.column("dup_of"))
        dups = t.filter(has).select(["stage", "dup_of"]).to_pydict()
        per_stage: dict[str, Counter] = defaultdict(Counter)
        for stage, dup_of in zip(dups["stage"], dups["dup_of"], strict=True):
            per_stage[stage][dup_of] += 1
        for stage in stage_order(per_stage):
            members = per_stage[stage]
            sizes = Counter(n + 1 for n in members.values())
            ptr = runs.pointer("counts", "dropped_by_stage", stage) if stage in by_stage else None
            out.append({
                "stage": stage,
                "drops": Cell(by_stage.get(stage, sum(members.values())), ptr),
                "drops_in_files": sum(members.values()),
                "clusters": len(members),
                "sizes": dict(sorted(sizes.items())),
                "largest": [(doc, n + 1) for doc, n in sorted(members.items(), key=lambda kv: (-kv[1], kv[0]))[:5]],
            })
    return {"stages": out}


def languages(kept: Kept, dropped: Dropped) -> dict[str, Any] | None:
    comp = LANGUAGE_COLUMN.split(".")[0]
    gone = Counter(dropped.scores.get(comp, {}).get(LANGUAGE_COLUMN, np.zeros(0, dtype=object)).tolist())
    if not kept.languages and not gone:
        return None
    langs = sorted(set(kept.languages) | set(gone), key=lambda k: (-(kept.languages[k] + gone[k]), k))
    rows = [{"language": lang or "(none)", "kept": kept.languages[lang], "dropped": gone[lang]} for lang in langs]
    return {"column": LANGUAGE_COLUMN, "rows": rows, "kept_total": sum(kept.languages.values()),
            "dropped_total": sum(gone.values())}


def mixture(m: dict[str, Any]) -> dict[str, Any] | None:
    """Target vs achieved shares per domain, from a mix run's manifest (`domains`: name -> {target_share,
    achieved_share, ...}); None for runs without one."""
    domains = m.get("domains")
    if not isinstance(domains, dict) or not all(
        isinstance(d, dict) and "target_share" in d and "achieved_share" in d for d in domains.values()
    ):
        return None
    keys = ("target_share", "achieved_share", "share_error", "target_tokens", "achieved_tokens", "documents",
            "samples", "epochs")
    rows = [{"domain": name, **{k: Cell(d[k], runs.pointer("domains", name, k)) for k in keys if k in d}}
            for name, d in domains.items()]
    totals = [(k, Cell(m[k], runs.pointer(k))) for k in ("budget_tokens", "target_tokens", "achieved_tokens")
              if _is_count(m.get(k))]
    return {"rows": rows, "totals": totals}


def shards(m: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for i, s in enumerate(m.get("shards", [])):
        rows.append({"path": s.get("path", ""),
                     **{k: Cell(v, runs.pointer("shards", i, k)) for k, v in s.items() if _is_count(v)}})
    folders: dict[str, dict[str, int]] = defaultdict(lambda: {"files": 0, "rows": 0, "bytes": 0})
    for e in m.get("files", []):
        folder = e["path"].split("/", 1)[0] if "/" in e["path"] else "."
        folders[folder]["files"] += 1
        folders[folder]["rows"] += int(e.get("rows", 0))
        folders[folder]["bytes"] += int(e.get("bytes", 0))
    return {"rows": rows, "folders": dict(sorted(folders.items())),
            "total_rows": sum(s.get("rows", 0) for s in m.get("shards", [])),
            "total_bytes": sum(s.get("bytes", 0) for s in m.get("shards", []))}


def stages(m: dict[str, Any]) -> dict[str, Any]:
    """Wall time per stage from the manifest's `stages` section ({stage: {seconds, docs, docs_per_s}})."""
    total = Cell(m["seconds"], "/seconds") if "seconds" in m else None
    recorded = m.get("stages")
    if not isinstance(recorded, dict) or not recorded:
        return {"rows": None, "total": total}
    rows = [{"stage": name, **{k: Cell(v, runs.pointer("stages", name, k)) for k, v in s.items() if _is_count(v)}}
            for name, s in recorded.items() if isinstance(s, dict)]
    return {"rows": rows, "total": total}


def examples(m: dict[str, Any], dropped: Dropped, errors: list[dict[str, Any]]) -> dict[str, Any]:
    order = [r for r, _ in sorted(m.get("counts", {}).get("dropped_by_reason", {}).items(), key=lambda kv: -kv[1])]
    order += sorted(set(dropped.examples) - set(order))
    counts = m.get("counts", {})
    return {
        "reasons": [{"reason": r, "docs": Cell(counts["dropped_by_reason"][r],
                                               runs.pointer("counts", "dropped_by_reason", r))
                     if r in counts.get("dropped_by_reason", {}) else Cell(len(dropped.examples.get(r, []))),
                     "examples": dropped.examples.get(r, [])} for r in order],
        "errors": errors,
        "errors_total": Cell(counts["errors"], "/counts/errors") if "errors" in counts else None,
        "chars": EXAMPLE_CHARS,
    }


def collect(run: str, verify: bool = False, seed: int = 0) -> dict[str, Any]:
    """Every section of the report for one run directory, as plain data (sections a run lacks are None)."""
    m = runs.load(run, verify=verify)
    kept = read_kept(run, m)
    dropped = read_dropped(run, m, seed=seed)
    return {
        "manifest": m,
        "summary": summary(run, m),
        "funnel": funnel(m, kept, dropped),
        "drops": drops(m, dropped),
        "scores": scores(m, kept, dropped),
        "duplicates": duplicates(m, dropped),
        "languages": languages(kept, dropped),
        "mixture": mixture(m),
        "shards": shards(m),
        "stages": stages(m),
        "examples": examples(m, dropped, read_errors(run, m)),
    }
