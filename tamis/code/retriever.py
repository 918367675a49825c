"""Cross-file context for a cursor: gather candidates from the repository's other files, rank them, assemble.

Candidates (never from the cursor's own file):
- `imported`: definitions of names the prefix imports (or reaches as `module.name`), resolved through
  the import graph and `__init__.py` re-exports;
- `module`: other top-level definitions of modules the prefix imports;
- `neighbour`: definitions in files within two import hops of the prefix's imports;
- `window`: RepoCoder sliding windows of every other file, by BM25 against the code before the cursor.

Each candidate gets a feature vector (`FEATURES`: how the prefix uses its name, BM25 similarity of its
lines to the code before the cursor, import-graph distance, what it is) and a linear score with
`RetrieverConfig.weights`, fitted by logistic regression and chosen by leave-one-repository-out
cross-validation (tamis.eval.code_context). The ranked list keeps no two snippets that overlap and
no duplicate text. Only the prefix of the cursor's file is read (its imports, its names, its last
lines); the index's copy of that file, suffix included, is never read at query time.
"""

import hashlib
import logging
import math
import re
from dataclasses import dataclass

import numpy as np

from tamis.code.graph import Binding
from tamis.code.index import RepoIndex
from tamis.code.prefix import PrefixView, read_prefix, uses
from tamis.errors import ConfigError, InputError
from tamis.validation import Params

log = logging.getLogger(__name__)

FEATURES = (
    "imported", "module", "neighbour", "window", "uses", "unused", "recent", "recent20", "local_import",
    "import_near", "sim", "sim_rank", "graph1", "graph2", "hops", "class", "function", "assignment", "length",
    "same_dir", "popularity", "sibling", "module_recent", "use_sim",
)  # fmt: skip
# Fitted on all seven dev repositories of ../shared/data/code_context (tamis.eval.code_context.fit_all);
# figures with them on those tasks are dev figures, the out-of-fold ones are in docs/code_context.md.
DEFAULT_WEIGHTS: dict[str, float] = {
    "imported": -0.0453, "module": 0.4528, "neighbour": -1.6705, "window": 1.263, "uses": 1.1857, "unused": 2.2494,
    "recent": 1.557, "recent20": 0.0134, "local_import": -0.1352, "import_near": 0.696, "sim": -0.9159,
    "sim_rank": 1.215, "graph1": 4.869, "graph2": 1.4571, "hops": 1.7749, "class": -0.489, "function": -0.4156,
    "assignment": -0.3584, "length": -0.1799, "same_dir": 0.165, "popularity": -0.1322, "sibling": 0.4623,
    "module_recent": 0.5582, "use_sim": 2.477,
}  # fmt: skip
_TOKEN = re.compile(r"\w+|[^\w\s]")
_COMMENT = {"Python": "#", "Shell": "#", "Ruby": "#", "Perl": "#", "R": "#"}


class RetrieverConfig(Params):
    """Query-time parameters. `query_lines`: lines before the cursor used as the BM25 query."""

    query_lines: int = 20
    windows: int = 30  # best BM25 windows kept as candidates
    module_definitions: int = 30  # per imported module, best by similarity
    neighbour_definitions: int = 30
    max_snippet_lines: int = 60  # a long definition is cut to its first lines
    k1: float = 1.2
    b: float = 0.75
    weights: dict[str, float] = DEFAULT_WEIGHTS

    def check(self) -> None:
        unknown = sorted(set(self.weights) - set(FEATURES))
        if unknown:
            raise ConfigError(
                f"The 'weights' parameter of retriever has unknown features {unknown}.",
                hint=f"known features: {', '.join(FEATURES)}",
            )
        for name in ("query_lines", "max_snippet_lines"):
            if getattr(self, name) < 1:
                raise ConfigError(f"The {name!r} parameter of retriever must be >= 1. Got {getattr(self, name)} instead.")


@dataclass(frozen=True)
class Cursor:
    """A position in a file of the repository: before 1-based `line`. `prefix` overrides the indexed text
    before it (an editor's unsaved buffer); by default it is the indexed file's first `line - 1` lines."""

    path: str
    line: int
    prefix: str | None = None


@dataclass
class Snippet:
    path: str
    start: int  # 1-based, inclusive
    end: int
    text: str
    source: str  # imported | module | neighbour | window
    symbol: str
    score: float

    def header(self, language: str = "Python") -> str:
        mark = _COMMENT.get(language, "//")
        return f"{mark} {self.path} (lines {self.start}-{self.end})"

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("path", "start", "end", "source", "symbol", "score", "text")}


@dataclass
class Candidates:
    """Candidates of one cursor: their spans, sources and feature matrix (rows follow `spans`)."""

    spans: list[tuple[int, int, int]]  # (file, start, end), 1-based inclusive
    sources: list[str]
    symbols: list[str]
    features: np.ndarray  # float64, (n, len(FEATURES))


def prefix_of(index: RepoIndex, cursor: Cursor) -> tuple[int, str]:
    """(file id or -1, the text before the cursor); InputError for a line outside the file."""
    file = index.file_id(cursor.path)
    if cursor.line < 1:
        raise InputError(f"Cursor line {cursor.line} is before the start of {cursor.path} (lines are 1-based).")
    if cursor.prefix is not None:
        return (-1 if file is None else file), cursor.prefix
    if file is None:
        raise InputError(
            f"{cursor.path} is not a file of the indexed repository {index.name}.",
            hint="pass the file's path relative to the repository root, or the text before the cursor",
        )
    lines = index.lines(file)
    if cursor.line > len(lines) + 1:
        raise InputError(
            f"Cursor line {cursor.line} is past the end of {cursor.path} ({len(lines)} lines).",
            hint=f"use a line between 1 and {len(lines) + 1}",
        )
    return file, "".join(line + "\n" for line in lines[: cursor.line - 1])


class ContextRetriever:
    def __init__(self, index: RepoIndex, config: RetrieverConfig | None = None):
        self.index = index
        self.config = config or RetrieverConfig()
        self.config.check()
        self.weights = np.array([self.config.weights.get(f, 0.0) for f in FEATURES], np.float64)

    # --- candidates ---------------------------------------------------------------------------------------------

    def candidates(self, cursor: Cursor) -> Candidates:
        idx, cfg, graph = self.index, self.config, self.index.graph
        file, prefix = prefix_of(idx, cursor)
        language = idx.languages[file] if file >= 0 else _language(cursor.path)
        view = read_prefix(prefix, language, cursor.path)
        scores = idx.bm25("\n".join(view.lines[-cfg.query_lines :]), exclude=file, k1=cfg.k1, b=cfg.b)
        if language:
            scores[idx.other_languages(language)] = 0.0  # windows of another language are no context
        ctx = _Context(idx, file, cursor.path, view, scores)
        bindings = self._prefix_bindings(file, cursor.path, language, view)
        used = uses(view, [local for local, *_ in bindings])
        rows: dict[int, dict] = {}  # definition id -> candidate

        def add(d_id: int, source: str, extra: dict) -> None:
            if idx.def_file[d_id] == file:
                return
            old = rows.get(d_id)
            if old is None or (source == "imported" and old["source"] != "imported"):
                rows[d_id] = {"def": d_id, "source": source, **extra}

        first_ring: set[int] = set()
        for local, b, imp_line, top_level in bindings:
            first_ring.update(f for f in graph.module_files(b.module) if f != file)
            extra = {"import_line": imp_line, "top_level": top_level, **_usage(used, local)}
            if b.kind == "import" and b.name:
                for d_id, hops in graph.resolve(b.module, b.name, exclude=file):
                    add(d_id, "imported", {**extra, "hops": hops})
                continue
            if b.kind != "module":
                continue
            attrs = sorted({name[len(local) + 1 :] for name in used if name.startswith(local + ".")})
            for attr in attrs:
                for d_id, hops in graph.resolve(b.module, attr, exclude=file):
                    add(d_id, "imported", {**extra, **_usage(used, f"{local}.{attr}"), "hops": hops})
            offered = graph.module_definitions(b.module, exclude=file)
            hops_of = dict(offered)
            module_use = _usage(used, local)
            for d_id in ctx.best_definitions([d for d, _ in offered], cfg.module_definitions):
                add(d_id, "module", {"hops": hops_of[d_id], "module_last_use": module_use["last_use"]})
        dist = graph.neighbours(sorted(first_ring), exclude=file)
        if file >= 0:
            for g in graph.importers(file):
                dist.setdefault(g, 1)
        if dist:
            near = np.flatnonzero(np.isin(idx.def_file, np.fromiter(dist, np.int64)) & idx.def_top)
            for d_id in ctx.best_definitions(near, cfg.neighbour_definitions):
                add(int(d_id), "neighbour", {})
        defs = list(rows.values())
        def_ids = np.array([r["def"] for r in defs], np.int64)
        best, _ = idx.definition_windows(def_ids, scores)
        popular = graph.popularity(def_ids.tolist(), exclude=file)
        use_sim = idx.usage_similarity(def_ids, scores, exclude=file) / ctx.top if ctx.top > 0 else np.zeros(len(defs))
        recent = [(idx.def_file[r["def"]], graph.definitions[r["def"]][1].start, r["def"]) for r in defs
                  if r["source"] == "imported" and r.get("uses") and view.cursor - r["last_use"] <= 10]
        n_windows = min(cfg.windows, int((scores > 0).sum()))
        top_windows = np.argpartition(-scores, n_windows - 1)[:n_windows] if n_windows else np.zeros(0, np.int64)
        top_windows = top_windows[np.lexsort((top_windows, -scores[top_windows]))]
        spans, sources, symbols, feats = [], [], [], []
        for r, w, pop, use in zip(defs, best, popular, use_sim, strict=True):
            f, d = graph.definitions[r["def"]]
            r["popularity"], r["use_sim"] = pop, use
            gaps = [abs(d.start - s0) for f0, s0, d0 in recent if f0 == f and d0 != r["def"]]
            r["sibling_gap"] = min(gaps) if gaps else None
            spans.append((int(f), d.start, d.end))
            sources.append(r["source"])
            symbols.append(d.name)
            feats.append(ctx.features(r, int(f), d.kind, d.start, d.end, int(w), dist))
        for w in top_windows:
            f = int(idx.win_file[w])
            spans.append((f, int(idx.win_start[w]) + 1, int(idx.win_end[w])))
            sources.append("window")
            symbols.append("")
            feats.append(ctx.features({"source": "window"}, f, "window", spans[-1][1], spans[-1][2], int(w), dist))
        matrix = np.array(feats, np.float64) if feats else np.zeros((0, len(FEATURES)), np.float64)
        return Candidates(spans, sources, symbols, matrix)

    def _prefix_bindings(
        self, file: int, path: str, language: str, view: PrefixView
    ) -> list[tuple[str, Binding, int, bool]]:
        out = []
        graph = self.index.graph
        for imp in view.imports:
            src = None if file < 0 else file
            for local, b in graph.import_bindings(src, imp, path, language):
                if local != "*" and local not in view.local_defs:
                    out.append((local, b, imp.line, imp.top_level))
        return out

    def _binding_files(self, b: Binding, exclude: int) -> list[int]:
        return [f for f in self.index.graph.module_files(b.module) if f != exclude]

    # --- ranking ------------------------------------------------------------------------------------------------

    def rank(self, cursor: Cursor, k: int | None = None, weights: np.ndarray | None = None) -> list[Snippet]:
        """The best snippets, best first, no two overlapping, no duplicate text; `k` of them at most."""
        cands = self.candidates(cursor)
        w = self.weights if weights is None else weights
        scores = cands.features @ w if len(cands.spans) else np.zeros(0)
        return self.select(cands, scores, k)

    def select(self, cands: Candidates, scores: np.ndarray, k: int | None = None) -> list[Snippet]:
        idx, cap = self.index, self.config.max_snippet_lines
        taken: dict[int, list[tuple[int, int]]] = {}
        texts: set[str] = set()
        out: list[Snippet] = []
        for i in np.argsort(-scores, kind="stable"):
            f, s, e = cands.spans[i]
            e = min(e, s + cap - 1)
            if any(s <= e2 and s2 <= e for s2, e2 in taken.get(f, ())):
                continue
            text = "\n".join(idx.lines(f)[s - 1 : e])
            digest = hashlib.sha1(text.strip().encode()).hexdigest()
            if digest in texts:
                continue
            texts.add(digest)
            taken.setdefault(f, []).append((s, e))
            out.append(Snippet(idx.paths[f], s, e, text, cands.sources[i], cands.symbols[i], float(scores[i])))
            if k is not None and len(out) >= k:
                break
        return out

    def context(self, cursor: Cursor, budget: int = 2048) -> "Context":
        """The top snippets that fit in `budget` tokens, each under a header with its path."""
        file = self.index.file_id(cursor.path)
        language = self.index.languages[file] if file is not None else _language(cursor.path)
        return assemble(self.rank(cursor), budget, language)


@dataclass
class Context:
    snippets: list[Snippet]
    text: str
    tokens: int
    budget: int

    def to_dict(self) -> dict:
        return {"text": self.text, "tokens": self.tokens, "budget": self.budget,
                "snippets": [s.to_dict() for s in self.snippets]}


def count_tokens(text: str) -> int:
    """Words and punctuation marks: a stand-in for a code tokenizer's count (BPE gives about as many)."""
    return len(_TOKEN.findall(text))


def assemble(snippets: list[Snippet], budget: int, language: str = "Python") -> Context:
    """Snippets in rank order while they fit; a snippet that does not fit is skipped, smaller ones may follow."""
    if budget < 0:
        raise ConfigError(f"The 'budget' parameter must be >= 0. Got {budget} instead.")
    kept, parts, used = [], [], 0
    for s in snippets:
        block = f"{s.header(language)}\n{s.text}\n"
        cost = count_tokens(block)
        if used + cost > budget:
            continue
        kept.append(s)
        parts.append(block)
        used += cost
    return Context(kept, "\n".join(parts), used, budget)


def _language(path: str) -> str:
    from tamis.filters.code_lang import language_of

    return language_of(path, "")[0]


def _usage(used: dict[str, list[int]], name: str) -> dict:
    lines = used.get(name, [])
    return {"uses": len(lines), "last_use": lines[-1] if lines else 0}


class _Context:
    """Per-query state the features read: BM25 scores of every window, their ranks, the cursor."""

    def __init__(self, idx: RepoIndex, file: int, path: str, view: PrefixView, scores: np.ndarray):
        self.idx, self.file, self.scores = idx, file, scores
        self.top = float(scores.max()) if len(scores) else 0.0
        self.ranked = -np.sort(-scores[scores > 0])  # descending positive scores, for a window's rank
        self.dir = path.rsplit("/", 1)[0] if "/" in path else ""
        self.cursor = view.cursor

    def best_definitions(self, defs, k: int) -> list[int]:
        """The `k` definitions whose lines are most similar to the query (ties: definition order)."""
        defs = np.asarray(defs, np.int64)
        if len(defs) <= k:
            return defs.tolist()
        _, sims = self.idx.definition_windows(defs, self.scores)
        order = np.argsort(-sims, kind="stable")[:k]
        return defs[np.sort(order)].tolist()

    def features(self, row: dict, file: int, kind: str, start: int, end: int, w: int, dist: dict[int, int]):
        x = dict.fromkeys(FEATURES, 0.0)
        source = row["source"]
        x[source] = 1.0
        if w >= 0 and self.top > 0 and self.scores[w] > 0:
            x["sim"] = self.scores[w] / self.top
            rank = int(np.searchsorted(-self.ranked, -self.scores[w], side="left"))
            x["sim_rank"] = 1.0 / math.log2(2 + rank)
        if source == "imported":
            uses = row.get("uses", 0)
            x["uses"] = math.log1p(uses)
            x["unused"] = float(uses == 0)
            if uses:
                gap = self.cursor - row["last_use"]
                x["recent"] = math.exp(-gap / 10)
                x["recent20"] = float(gap <= 20)
            x["local_import"] = float(not row.get("top_level", True))
            x["import_near"] = math.exp(-(self.cursor - row.get("import_line", 0)) / 30)
        x["hops"] = float(row.get("hops", 0))
        x["popularity"] = math.log1p(row.get("popularity", 0))
        x["use_sim"] = row.get("use_sim", 0.0)
        if row.get("sibling_gap") is not None:
            x["sibling"] = math.exp(-row["sibling_gap"] / 20)
        if row.get("module_last_use"):
            x["module_recent"] = math.exp(-(self.cursor - row["module_last_use"]) / 10)
        d = dist.get(file)
        x["graph1"] = float(d == 1)
        x["graph2"] = float(d == 2)
        if kind in ("class", "function", "assignment"):
            x[kind] = 1.0
            x["length"] = math.log1p(end - start + 1)
        path = self.idx.paths[file]
        x["same_dir"] = float((path.rsplit("/", 1)[0] if "/" in path else "") == self.dir)
        return list(x.values())
