"""The run report: one self-contained HTML file (inline CSS, charts as SVG data URIs, no script, no network).

Every number read from the manifest is wrapped in an element carrying
`data-m="<JSON Pointer>"`, so anyone (and the browser test) can check the page
against the manifest. Figures the manifest does not hold are computed from the
files it lists and labelled so (approximate tokens, per-filter drops, score
distributions, clusters). Each section is present in every report; one whose
data the run lacks says so in a line.
"""

import html
import logging
import time
from typing import Any

from tamis.io import atomic, manifest
from tamis.report import data, plots

log = logging.getLogger(__name__)

SECTIONS = (
    ("summary", "Run"),
    ("funnel", "Funnel"),
    ("drops", "Drops by reason"),
    ("scores", "Scores"),
    ("duplicates", "Duplicate clusters"),
    ("languages", "Languages"),
    ("mixture", "Mixture"),
    ("shards", "Shards"),
    ("timing", "Time per stage"),
    ("examples", "Examples"),
)
MAX_BARS = 30
SCROLL_ROWS = 25

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2328;
background:#f6f8fa}
header{background:#24292f;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:20px}header p{margin:4px 0 0;color:#d0d7de;word-break:break-all}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #d0d7de;padding:6px 28px;z-index:1}
nav a{margin-right:14px;color:#0969da;text-decoration:none}
main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #d0d7de;border-radius:6px;padding:10px 18px 14px;margin:16px 0}
h2{font-size:17px;margin:6px 0 8px}h3{font-size:14px;margin:12px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
tr.sub td:first-child{padding-left:26px;color:#57606a}
.note{color:#57606a;font-size:12.5px;margin:4px 0}
.absent{color:#57606a;font-style:italic}
.warn{color:#9a6700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}
.card{border:1px solid #eaeef2;border-radius:6px;padding:6px 8px}
.card h4{margin:0 0 2px;font-size:12.5px;word-break:break-all}.card p{margin:2px 0;font-size:12px;color:#57606a}
img{max-width:100%;height:auto;display:block}
pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;border:1px solid #eaeef2;border-radius:4px;
padding:6px 8px;font-size:12px;margin:4px 0 10px;max-height:220px;overflow:auto}
details{margin:4px 0}summary{cursor:pointer}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px;vertical-align:middle}
.row{display:flex;gap:28px;align-items:flex-start;flex-wrap:wrap}.row>*{flex:0 1 auto;min-width:0}
.scroll{max-height:430px;overflow:auto;border-bottom:1px solid #eaeef2}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any) -> str:
    """A number as the page shows it: thousands separators for integers, full precision for floats."""
    if isinstance(value, bool) or value is None:
        return _e(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,}" if value.is_integer() and abs(value) < 1e15 else repr(value)
    return _e(value)


def cell(c: data.Cell | Any) -> str:
    """A number, tagged with its manifest pointer when it came from the manifest."""
    if isinstance(c, data.Cell):
        if c.ptr is not None:
            return f'<span data-m="{_e(c.ptr)}">{fmt(c.value)}</span>'
        return fmt(c.value)
    return fmt(c)


def _table(header: list[str], rows: list[list[str]], numeric: set[int] = frozenset(), classes: list[str] | None = None
           ) -> str:
    head = "".join(f'<th class="n">{_e(h)}</th>' if i in numeric else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{classes[r]}"' if classes and classes[r] else ""
        tds = "".join(f'<td class="n">{v}</td>' if i in numeric else f"<td>{v}</td>" for i, v in enumerate(row))
        body.append(f"<tr{cls}>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _row(*parts: str) -> str:
    """Side by side where the page is wide enough (a table and its chart)."""
    return '<div class="row">' + "".join(f"<div>{p}</div>" for p in parts) + "</div>"


def _long(table: str, rows: int) -> str:
    """A table of many rows scrolls in place rather than pushing the next section down."""
    return f'<div class="scroll">{table}</div>' if rows > SCROLL_ROWS else table


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{_e(alt)}">'


def _absent(text: str) -> str:
    return f'<p class="absent">{_e(text)}</p>'


def _pct(x: float) -> str:
    return f"{x:.2%}"


# --- sections ---------------------------------------------------------------------------------------------------


def _summary(s: dict[str, Any]) -> str:
    facts = [["kind", _e(s["kind"])], ["made by", _e(s["made_by"])], ["format version", _e(s["format_version"])],
             ["config fingerprint", _e(s["fingerprint"])], ["tamis", _e(s["tamis"])],
             ["components", _e(", ".join(s["components"]) or "—")]]
    if s["seconds"] is not None:
        facts.append(["wall time (s)", cell(s["seconds"])])
    out = [_table(["", ""], facts)]
    if s["counts"]:
        out.append("<h3>Counts</h3>" + _table(["", "count"], [[_e(k), cell(c)] for k, c in s["counts"]], {1}))
    if s["sources"]:
        keys = [k for k in ("read", "kept", "dropped", "errors", "skipped_non_document") if k in s["sources"][0]]
        rows = [[_e(src["source"]), *[cell(src[k]) for k in keys], "yes" if src.get("balanced") else "no"]
                for src in s["sources"]]
        out.append("<h3>Inputs</h3>" + _table(["input", *keys, "balanced"], rows, set(range(1, len(keys) + 1))))
    return "".join(out)


def _funnel(f: dict[str, Any] | None) -> str:
    if f is None:
        return _absent("This run's manifest has no document counts, so there is no funnel.")
    header = ["stage", "documents in", "dropped", "documents out", "≈ tokens dropped", "≈ tokens out"]
    rows, classes = [], []
    for r in f["rows"]:
        rows.append([
            _e(r["label"]),
            fmt(r["in"]) if "in" in r else "",
            cell(r["dropped"]) if r["dropped"] is not None else "",
            cell(r["out"]),
            fmt(data.tokens(r["bytes_dropped"])) if "bytes_dropped" in r else "",
            fmt(data.tokens(r["bytes_out"])) if "bytes_out" in r else "",
        ])
        classes.append("sub" if r.get("sub") else "")
    steps = _funnel_steps(f["rows"])
    labels = [label for label, _, _ in steps]
    docs = [n for _, n, _ in steps]
    toks = [data.tokens(b) for _, _, b in steps]
    note = (f'<p class="note">Documents: from the manifest (tagged numbers), except the rows per filter, which '
            f"count dropped/ by the filter whose scores decided each drop. Tokens are approximate: "
            f"{_e(f['tokens_label'])}, counted over the text of kept (shards/) and dropped (dropped/) documents; "
            f"a filter that rewrites text (C4 line removal) is counted after the rewrite.</p>")
    if not f["balanced"]:
        note += '<p class="warn">The stage counts do not add up to the kept count: the manifest is inconsistent.</p>'
    chart = _img(plots.funnel(labels, docs, toks, f["tokens_label"]), "documents and tokens after each stage")
    return _table(header, rows, {1, 2, 3, 4, 5}, classes) + note + chart


def _funnel_steps(rows: list[dict[str, Any]]) -> list[tuple[str, int, int]]:
    """(label, documents, text bytes) after each step for the chart: each filter of the chain in place of the
    filter stage's total, when the chain's rows are there."""
    subs = {r["stage"] for r in rows if r.get("sub")}
    out = []
    for r in rows:
        if r["stage"] in ("read", "kept") or (r["stage"] == "filter" and subs):
            continue
        label = "readable documents" if r["stage"] == "errors" else r["stage"]
        out.append((label, r["out"].value if isinstance(r["out"], data.Cell) else r["out"], r.get("bytes_out", 0)))
    return out


def _drops(d: dict[str, Any] | None) -> str:
    if d is None:
        return _absent("This run's manifest has no drop counts.")
    if not d["rows"]:
        return _absent("Nothing was dropped.")
    rows = [[_e(r["reason"]), _e(r["stage"]), _e(r["component"]), cell(r["docs"]), _pct(r["share"]),
             fmt(data.tokens(r["bytes"]))] for r in d["rows"]]
    table = _long(_table(["reason", "stage", "by", "documents", "of read", "≈ tokens"], rows, {3, 4, 5}), len(rows))
    warn = "".join(f'<p class="warn">{_e(m)}</p>' for m in d["mismatches"])
    top = d["rows"][:MAX_BARS]
    chart = plots.hbars([r["reason"] for r in top], {"documents": [r["docs"].value for r in top]}, [plots.DROPPED],
                        "documents dropped")
    more = f'<p class="note">The chart shows the {MAX_BARS} largest reasons.</p>' if len(d["rows"]) > MAX_BARS else ""
    return _row(table, _img(chart, "documents dropped per reason") + more) + warn


def _scores(s: dict[str, Any]) -> str:
    if not s["columns"]:
        return _absent("No score columns in this run.")
    legend = (f'<p class="legend note">Each chart stacks<span style="background:{plots.KEPT}"></span>kept documents '
              f'and<span style="background:{plots.DROPPED}"></span>documents dropped by that column\'s own filter '
              f'(their scores are in dropped/ detail); dashed<span style="background:{plots.MARK}"></span>lines mark '
              f"thresholds. Documents dropped before a filter ran were never scored by it.</p>")
    cards = []
    paint = plots.Histograms()
    for c in s["columns"]:
        h = c["hist"]
        lines = [f"kept {fmt(c['kept_n'])}, dropped here {fmt(c['dropped_n'])}"]
        if c["kept_median"] is not None:
            lines[0] += f", kept median {c['kept_median']:.4g}"
        for t in c["marks"]:
            drawn = bool(h["edges"]) and "constant" not in h and h["edges"][0] <= t.value <= h["edges"][-1]
            lines.append(f"threshold {_e(t.param)} = {fmt(t.value)} (drops {t.drops})"
                         + ("" if drawn else ", beyond the drawn range"))
        if h["below"] or h["above"]:
            lines.append(f"not drawn: {fmt(h['below'])} below, {fmt(h['above'])} above the range")
        if h["missing"]:
            lines.append(f"{fmt(h['missing'])} missing (NaN)")
        if not h["edges"]:
            img = _absent("no values")
        elif "constant" in h:
            img = f'<p class="absent">every value is {fmt(h["constant"])}</p>'
        else:
            img = _img(paint(h["edges"], h["kept"], h["dropped"], [t.value for t in c["marks"]]),
                       f"histogram of {c['column']}")
        text = "".join(f"<p>{x}</p>" for x in lines)
        cards.append(f'<div class="card" data-column="{_e(c["column"])}"><h4>{_e(c["column"])}</h4>{img}{text}</div>')
    marked = [[_e(t.component), _e(t.param), fmt(t.value), _e(t.column), f"drops {t.drops}"] for t in s["marked"]]
    out = legend + f'<div class="grid">{"".join(cards)}</div><h3>Thresholds marked</h3>'
    out += _table(["filter", "parameter", "value", "column", "rule"], marked, {2}) if marked else _absent("none")
    out += ('<p class="note">Found by probing each configured filter\'s rule on a kept document\'s scores: a '
            "parameter is marked on the column where moving the value across it flips the decision, confirmed by "
            "moving the parameter.</p>")
    if s["unmarked"]:
        rows = [[_e(c), _e(p), fmt(v)] for c, p, v in s["unmarked"]]
        out += "<h3>Numeric parameters not marked</h3>" + _table(["filter", "parameter", "value"], rows, {2})
        out += '<p class="note">No score column\'s decision flips at these values: they shape scoring, not a cut.</p>'
    for comp, why in s["unprobed"]:
        out += f'<p class="note">{_e(comp)}: thresholds not probed ({_e(why)}).</p>'
    return out


def _duplicates(d: dict[str, Any]) -> str:
    if not d["stages"]:
        return _absent("No documents were dropped as duplicates (no dup_of in dropped/).")
    out = []
    for st in d["stages"]:
        sizes = st["sizes"]
        rows = [[fmt(size), fmt(n), fmt(n * (size - 1))] for size, n in sizes.items()]
        out.append(f"<h3>{_e(st['stage'])}</h3><p>{cell(st['drops'])} documents dropped as duplicates of "
                   f"{fmt(st['clusters'])} kept documents (cluster = the kept document and its dropped copies).</p>")
        if st["drops_in_files"] != st["drops"].value:
            out.append(f'<p class="warn">dropped/ holds {fmt(st["drops_in_files"])} such rows.</p>')
        largest = [[_e(doc), fmt(n)] for doc, n in st["largest"]]
        out.append(_row(
            _long(_table(["cluster size", "clusters", "documents dropped"], rows, {0, 1, 2}), len(rows))
            + "<details><summary>largest clusters</summary>" + _table(["kept document", "size"], largest, {1})
            + "</details>",
            _img(plots.bars([str(k) for k in sizes], {"clusters": list(sizes.values())}, [plots.KEPT], "clusters"),
                 f"{st['stage']} cluster sizes")))
    return "".join(out)


def _languages(lang: dict[str, Any] | None) -> str:
    if lang is None:
        return _absent("No language scores in this run (the langid scorer was not configured).")
    rows = [[_e(r["language"]), fmt(r["kept"]), fmt(r["dropped"])] for r in lang["rows"]]
    top = lang["rows"][:MAX_BARS]
    chart = plots.hbars([r["language"] for r in top], {"kept": [r["kept"] for r in top],
                                                       "dropped by langid": [r["dropped"] for r in top]},
                        [plots.KEPT, plots.DROPPED], "documents")
    note = (f'<p class="note">From the {_e(lang["column"])} column: {fmt(lang["kept_total"])} kept documents '
            f"(shards/) and {fmt(lang['dropped_total'])} documents the langid filter dropped (dropped/ detail). "
            f"Documents dropped by other stages have no language recorded.</p>")
    table = _long(_table(["language", "kept", "dropped by langid"], rows, {1, 2}), len(rows))
    return note + _row(table, _img(chart, "documents per language"))


def _mixture(mx: dict[str, Any] | None) -> str:
    if mx is None:
        return _absent("Not a mix run: this manifest has no per-domain target and achieved shares.")
    keys = [k for k in ("target_share", "achieved_share", "share_error", "target_tokens", "achieved_tokens",
                        "documents", "samples", "epochs") if any(k in r for r in mx["rows"])]
    rows = [[_e(r["domain"]), *[cell(r[k]) if k in r else "" for k in keys]] for r in mx["rows"]]
    out = _table(["domain", *keys], rows, set(range(1, len(keys) + 1)))
    if mx["totals"]:
        out += _table(["", "tokens"], [[_e(k), cell(c)] for k, c in mx["totals"]], {1})
    chart = plots.bars([r["domain"] for r in mx["rows"]],
                       {"target": [r["target_share"].value for r in mx["rows"]],
                        "achieved": [r["achieved_share"].value for r in mx["rows"]]},
                       [plots.NEUTRAL, plots.KEPT], "token share", integer=False)
    return out + _img(chart, "target and achieved token share per domain")


def _shards(s: dict[str, Any]) -> str:
    if not s["rows"]:
        return _absent("This run lists no shards.")
    keys = [k for k in s["rows"][0] if k != "path"]
    rows = [[_e(r["path"]), *[cell(r[k]) if k in r else "" for k in keys]] for r in s["rows"]]
    out = (f"<p>{fmt(len(s['rows']))} shards, {fmt(s['total_rows'])} rows, {fmt(s['total_bytes'])} bytes.</p>"
           + _img(plots.bars([r["path"].rsplit("/", 1)[-1].removesuffix(".parquet") for r in s["rows"][:60]],
                             {"bytes": [r["bytes"].value if "bytes" in r else 0 for r in s["rows"][:60]]},
                             [plots.KEPT], "bytes"), "bytes per shard"))
    out += "<details open><summary>every shard</summary>" + _table(["shard", *keys], rows, set(range(1, len(keys) + 1)))
    out += "</details>"
    folders = [[_e(k), fmt(v["files"]), fmt(v["rows"]), fmt(v["bytes"])] for k, v in s["folders"].items()]
    out += "<h3>Files by folder</h3>" + _table(["folder", "files", "rows", "bytes"], folders, {1, 2, 3})
    return out


def _timing(t: dict[str, Any]) -> str:
    total = f"<p>Whole run: {cell(t['total'])} s wall time.</p>" if t["total"] is not None else ""
    if t["rows"] is None:
        return total + _absent("Time per stage: not recorded in this run's manifest.")
    keys = [k for k in ("seconds", "docs", "docs_per_s") if any(k in r for r in t["rows"])]
    rows = [[_e(r["stage"]), *[cell(r[k]) if k in r else "" for k in keys]] for r in t["rows"]]
    chart = plots.hbars([r["stage"] for r in t["rows"]],
                        {"seconds": [r["seconds"].value if "seconds" in r else 0 for r in t["rows"]]},
                        [plots.KEPT], "seconds")
    return total + _table(["stage", *keys], rows, set(range(1, len(keys) + 1))) + _img(chart, "seconds per stage")


def _examples(x: dict[str, Any]) -> str:
    out = [f'<p class="note">Up to {data.EXAMPLES} documents per reason, chosen by a hash of their id; text cut at '
           f"{fmt(x['chars'])} characters. <code>tamis inspect RUN --reason R</code> shows more.</p>"]
    for i, r in enumerate(x["reasons"]):
        docs = []
        for d in r["examples"]:
            extra = f" · duplicate of {_e(d['dup_of'])}" if d.get("dup_of") else ""
            cut = f" (first {fmt(len(d['text']))} of {fmt(d['chars'])} characters)" if d["chars"] > len(d["text"]) else ""
            detail = f"<pre>{_e(d['detail'])}</pre>" if d.get("detail") else ""
            docs.append(f"<p><b>{_e(d['id'])}</b> · {_e(d['source'])}:{fmt(d['offset'])}{extra}{cut}</p>"
                        f"<pre>{_e(d['text'])}</pre>{detail}")
        out.append(f'<details data-reason="{_e(r["reason"])}"{" open" if i < 2 else ""}><summary><b>{_e(r["reason"])}</b> '
                   f"({cell(r['docs'])} document{'' if r['docs'].value == 1 else 's'})</summary>{''.join(docs)}</details>")
    if x["errors_total"] is not None:
        errs = "".join(f"<p>{_e(e['source'])}:{fmt(e['offset'])} ({_e(e['offset_kind'])}): {_e(e['error'])}</p>"
                       f"<pre>{_e(e['raw'])}</pre>" for e in x["errors"])
        out.append(f"<details><summary><b>unreadable records</b> ({cell(x['errors_total'])} in errors/)</summary>"
                   f"{errs}</details>")
    if not x["reasons"] and not x["errors"]:
        out.append(_absent("Nothing was dropped and nothing was unreadable."))
    return "".join(out)


def render(report: dict[str, Any]) -> str:
    """The page for data gathered by `tamis.report.data.collect`."""
    s = report["summary"]
    body = {
        "summary": _summary(s),
        "funnel": _funnel(report["funnel"]),
        "drops": _drops(report["drops"]),
        "scores": _scores(report["scores"]),
        "duplicates": _duplicates(report["duplicates"]),
        "languages": _languages(report["languages"]),
        "mixture": _mixture(report["mixture"]),
        "shards": _shards(report["shards"]),
        "timing": _timing(report["stages"]),
        "examples": _examples(report["examples"]),
    }
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
    sections = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{body[key]}</section>' for key, title in SECTIONS)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>tamis report: {_e(s['run'])}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>tamis run report</h1><p>{_e(s['run'])}</p></header><nav>{nav}</nav>"
        f"<main>{sections}</main></body></html>"
    )


def write_report(run: str, output: str | None = None, verify: bool = False) -> str:
    """Write the HTML report of a finished run directory (RUN/report.html unless `output`); return its path.

    `verify` checks every file against the manifest first (the CLI's default; a command that has just written
    the run skips it). The file is written atomically, and what a killed earlier write left is removed; inside
    the run, tamis verify ignores it (`tamis.io.manifest.DERIVED`).
    """
    start = time.perf_counter()
    page = render(data.collect(run, verify=verify))
    path = output or atomic.join(run, manifest.REPORT)
    for stale in atomic.glob(f"{path}.tmp-*"):  # left by a write that was killed
        atomic.delete(stale)
    atomic.write_bytes(path, page.encode("utf-8"))
    log.debug("wrote %s (%d bytes) in %.2f s", path, len(page), time.perf_counter() - start)
    return path
