"""A repository's code index: its files, sliding windows with their BM25 statistics, and its symbol graph.

Built once per repository, so a query does little work: the windows' term
postings (window ids and term frequencies, laid out term-major as in the BM25
index) are stored raw, not as finished BM25 weights, because a query must score
the windows *without* the cursor's own file: its document frequencies, window
count and length are subtracted for the few query terms at query time, so
nothing of that file (its suffix included) shapes a score.

Windows are RepoCoder's: `window` lines every `stride` lines per file, the
last one ending at the file's end. Terms come from tamis.indexes.analysis's
`code` tokenizer (identifiers split at camelCase and snake_case, whole
identifier kept), unstemmed and without stopwords.
"""

import logging
import re
from dataclasses import dataclass, field

import numpy as np

from tamis.code.graph import RepoGraph
from tamis.code.ingest import IngestConfig, Repository
from tamis.code.parse import structure
from tamis.code.structure import FileStructure
from tamis.errors import ConfigError
from tamis.indexes.analysis import AnalysisConfig, Analyzer
from tamis.validation import Params

log = logging.getLogger(__name__)

# Languages whose files read each other's code (a C++ file includes C headers; TypeScript imports JavaScript).
_FAMILY = {"C++": "C", "TypeScript": "JavaScript", "TSX": "JavaScript", "Cython": "Python"}
CODE_ANALYSIS = AnalysisConfig(tokenizer="code", stopwords="none", stemmer="none", min_chars=2)


class CodeIndexConfig(Params):
    """How a repository is indexed: window and stride in lines, the analysis chain, which files are kept."""

    window: int = 20
    stride: int = 10
    analysis: AnalysisConfig = CODE_ANALYSIS
    ingest: IngestConfig = IngestConfig()

    def check(self) -> None:
        if self.window < 1 or self.stride < 1:
            raise ConfigError(
                f"The 'window' and 'stride' parameters of code_index must be >= 1. "
                f"Got window={self.window}, stride={self.stride} instead."
            )
        if self.stride > self.window:
            raise ConfigError(
                f"The 'stride' parameter of code_index must be <= window ({self.window}). Got {self.stride} instead.",
                hint="a stride longer than the window leaves lines in no window",
            )


def split_lines(text: str) -> list[str]:
    """Lines as the tasks count them (1-based line n is element n-1); a final newline ends the last line."""
    lines = text.split("\n")
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()
    return lines


def window_starts(n_lines: int, window: int, stride: int) -> list[int]:
    """0-based first lines of a file's windows; the last window ends at the file's end."""
    starts = [0]
    while starts[-1] + window < n_lines:
        starts.append(starts[-1] + stride)
    return starts if n_lines else []


@dataclass
class RepoIndex:
    name: str
    commit: str
    config: CodeIndexConfig
    paths: list[str]
    languages: list[str]
    texts: list[str]
    errors: list[str]  # per file: why it gave no structure ("" when it parsed)
    graph: RepoGraph
    win_file: np.ndarray  # int32 per window
    win_start: np.ndarray  # int32, 0-based first line
    win_end: np.ndarray  # int32, 0-based line after the last
    win_len: np.ndarray  # int32 terms
    file_first_window: np.ndarray  # int64, len(paths) + 1: windows of file f are [first[f], first[f+1])
    terms: list[str]
    indptr: np.ndarray  # int64, len(terms) + 1
    post_window: np.ndarray  # int32 window id per posting, term-major
    post_tf: np.ndarray  # int32
    ref_windows: list[np.ndarray] = field(default_factory=list)  # per graph reference: windows where the use is
    _term_ids: dict[str, int] = field(default_factory=dict)
    _lines: dict[int, list[str]] = field(default_factory=dict)
    _path_ids: dict[str, int] = field(default_factory=dict)
    _via: dict[int, np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._term_ids = {t: i for i, t in enumerate(self.terms)}
        self._path_ids = {p: i for i, p in enumerate(self.paths)}
        self.analyzer = Analyzer(self.config.analysis)
        self.post_file = self.win_file[self.post_window] if len(self.post_window) else np.zeros(0, np.int32)
        families = [_FAMILY.get(lang, lang) for lang in self.languages]
        self._family_ids = {f: i for i, f in enumerate(dict.fromkeys(families))}
        file_family = np.array([self._family_ids[f] for f in families], np.int64)
        self.win_family = file_family[self.win_file] if len(self.win_file) else np.zeros(0, np.int64)
        defs = self.graph.definitions
        self.def_file = np.array([f for f, _ in defs], np.int64)
        self.def_top = np.array([d.kind != "method" for _, d in defs], bool)
        ranges = [self.windows_overlapping(f, d.start, d.end) for f, d in defs]
        self.def_lo = np.array([r[0] for r in ranges], np.int64)
        self.def_hi = np.array([r[1] for r in ranges], np.int64)
        if not self.ref_windows:
            self.ref_windows = usage_windows(self)
        refs = self.graph.references
        self.ref_def = np.array([r[0] for r in refs], np.int64)
        self.ref_file = np.array([r[1] for r in refs], np.int64)
        self.ref_win_indptr = np.zeros(len(refs) + 1, np.int64)
        np.cumsum([len(w) for w in self.ref_windows], out=self.ref_win_indptr[1:])
        self.ref_win = np.concatenate(self.ref_windows).astype(np.int64) if refs else np.zeros(0, np.int64)

    @property
    def n_windows(self) -> int:
        return len(self.win_file)

    def file_id(self, path: str) -> int | None:
        return self._path_ids.get(path)

    def lines(self, file: int) -> list[str]:
        if file not in self._lines:
            self._lines[file] = split_lines(self.texts[file])
        return self._lines[file]

    def term_ids(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(distinct known term ids, their counts) of a query text."""
        ids = [self._term_ids[t] for t in self.analyzer.terms(text) if t in self._term_ids]
        if not ids:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        uniq, counts = np.unique(np.asarray(ids, np.int64), return_counts=True)
        return uniq, counts

    def bm25(self, query: str, exclude: int = -1, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
        """BM25 (Okapi, idf floored at 0) of every window for `query`, as if file `exclude` were not indexed.

        The excluded file's windows score 0, and its document frequencies, window count and
        length are taken out of the statistics, for the query's terms only.
        """
        scores = np.zeros(self.n_windows, np.float64)
        tids, qtf = self.term_ids(query)
        if not len(tids):
            return scores
        starts, stops = self.indptr[tids], self.indptr[tids + 1]
        sizes = stops - starts
        total_postings = int(sizes.sum())
        if not total_postings:
            return scores
        offsets = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=offsets[1:])
        idx = np.repeat(starts - offsets, sizes) + np.arange(total_postings)
        term_of = np.repeat(np.arange(len(tids)), sizes)
        keep = self.post_file[idx] != exclude
        idx, term_of = idx[keep], term_of[keep]
        n, total = self.n_windows, float(self.win_len.sum())
        if 0 <= exclude < len(self.paths):
            a, z = self.file_first_window[exclude], self.file_first_window[exclude + 1]
            n -= int(z - a)
            total -= float(self.win_len[a:z].sum())
        if n <= 0 or not len(idx):
            return scores
        df = np.bincount(term_of, minlength=len(tids)).astype(np.float64)
        idf = np.maximum(np.log((n - df + 0.5) / (df + 0.5)), 0.0) + 1e-3 * (df > 0)
        windows = self.post_window[idx]
        tf = self.post_tf[idx].astype(np.float64)
        norm = 1.0 - b + b * self.win_len[windows] / max(total / n, 1e-9)
        weight = idf[term_of] * qtf[term_of] * tf * (k1 + 1.0) / (tf + k1 * norm)
        scores = np.bincount(windows, weights=weight, minlength=self.n_windows)
        return scores

    def other_languages(self, language: str) -> np.ndarray:
        """Mask of the windows whose file is in a language family other than `language`'s."""
        family = self._family_ids.get(_FAMILY.get(language, language), -1)
        return self.win_family != family

    def definition_windows(self, def_ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(best window id or -1, its score) among the windows overlapping each definition."""
        def_ids = np.asarray(def_ids, np.int64)
        lo, hi = self.def_lo[def_ids], self.def_hi[def_ids]
        sizes = np.maximum(hi - lo, 0)
        best = np.full(len(def_ids), -1, np.int64)
        value = np.zeros(len(def_ids), np.float64)
        has = sizes > 0
        if not has.any():
            return best, value
        lo, sizes = lo[has], sizes[has]
        offsets = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=offsets[1:])
        flat = np.repeat(lo - offsets, sizes) + np.arange(int(sizes.sum()))
        vals = scores[flat]
        top = np.maximum.reduceat(vals, offsets)
        # first window reaching the maximum in each range
        hit = vals == np.repeat(top, sizes)
        pos = np.flatnonzero(hit)
        group = np.repeat(np.arange(len(sizes)), sizes)[pos]
        first = np.full(len(sizes), -1, np.int64)
        first[group[::-1]] = pos[::-1]
        best[has] = flat[first]
        value[has] = top
        return best, value

    def usage_similarity(self, def_ids, scores: np.ndarray, exclude: int) -> np.ndarray:
        """Per definition, the best score of a window of another file that uses it (0 when none does).

        Uses by `exclude`, and uses whose resolution read `exclude`, do not count."""
        def_ids = np.asarray(def_ids, np.int64)
        out = np.zeros(len(def_ids), np.float64)
        if not len(def_ids) or not len(self.ref_def):
            return out
        refs = np.flatnonzero(np.isin(self.ref_def, def_ids) & (self.ref_file != exclude))
        refs = refs[~np.isin(refs, self.graph_refs_via(exclude))]
        sizes = self.ref_win_indptr[refs + 1] - self.ref_win_indptr[refs]
        refs, sizes = refs[sizes > 0], sizes[sizes > 0]
        if not len(refs):
            return out
        offsets = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=offsets[1:])
        flat = np.repeat(self.ref_win_indptr[refs] - offsets, sizes) + np.arange(int(sizes.sum()))
        best = np.maximum.reduceat(scores[self.ref_win[flat]], offsets)
        position = np.searchsorted(np.sort(def_ids), self.ref_def[refs])
        order = np.argsort(def_ids, kind="stable")
        np.maximum.at(out, order[position], best)
        return out

    def graph_refs_via(self, file: int) -> np.ndarray:
        """References whose resolution went through `file`."""
        if self._via is None:
            via: dict[int, list[int]] = {}
            for n, ref in enumerate(self.graph.references):
                for f in ref[2]:
                    via.setdefault(f, []).append(n)
            self._via = {f: np.asarray(ns, np.int64) for f, ns in via.items()}
        return self._via.get(file, np.zeros(0, np.int64))

    def windows_containing(self, file: int, lines: np.ndarray) -> np.ndarray:
        """Window ids of `file` holding any of the 1-based `lines`."""
        a, z = int(self.file_first_window[file]), int(self.file_first_window[file + 1])
        if a == z or not len(lines):
            return np.zeros(0, np.int32)
        starts, ends = self.win_start[a:z], self.win_end[a:z]
        zero = np.asarray(lines, np.int64) - 1
        hit = (starts[None, :] <= zero[:, None]) & (zero[:, None] < ends[None, :])
        return (a + np.flatnonzero(hit.any(axis=0))).astype(np.int32)

    def windows_overlapping(self, file: int, start: int, end: int) -> tuple[int, int]:
        """Window id range of `file` whose lines overlap 1-based inclusive [start, end]."""
        a, z = int(self.file_first_window[file]), int(self.file_first_window[file + 1])
        if a == z:
            return a, a
        s0, e0 = start - 1, end  # 0-based half-open
        lo = a + int(np.searchsorted(self.win_end[a:z], s0, side="right"))
        hi = a + int(np.searchsorted(self.win_start[a:z], e0, side="left"))
        return lo, max(lo, hi)


def build(repo: Repository, config: CodeIndexConfig | None = None) -> RepoIndex:
    """Index one repository in memory: parse every file, build its graph, cut and count its windows."""
    config = config or CodeIndexConfig()
    config.check()
    analyzer = Analyzer(config.analysis)
    paths = [f.path for f in repo.files]
    languages = [f.language for f in repo.files]
    texts = [f.text for f in repo.files]
    structures: list[FileStructure] = []
    errors: list[str] = []
    for f in repo.files:
        s = structure(f.text, f.language, f.path)
        if s.error:
            log.info("%s %s: %s; its windows are still indexed", repo.name, f.path, s.error)
        structures.append(s)
        errors.append(s.error)
    graph = RepoGraph.build(paths, languages, structures)
    vocab: dict[str, int] = {}
    word_ids: dict[str, int] = {}
    win_file, win_start, win_end, win_len = [], [], [], []
    pairs: list[np.ndarray] = []
    first = [0]
    for fid, text in enumerate(texts):
        lines = split_lines(text)
        line_ids: list[list[int]] = []
        for line in lines:
            ids = []
            for w in analyzer.words(line):
                t = word_ids.get(w)
                if t is None:
                    found = analyzer.word_terms(w)
                    t = word_ids[w] = vocab.setdefault(found[0], len(vocab)) if found else -1
                if t >= 0:
                    ids.append(t)
            line_ids.append(ids)
        offsets = np.zeros(len(lines) + 1, np.int64)
        np.cumsum([len(x) for x in line_ids], out=offsets[1:])
        flat = np.fromiter((t for x in line_ids for t in x), np.int64, count=int(offsets[-1]))
        for s in window_starts(len(lines), config.window, config.stride):
            e = min(s + config.window, len(lines))
            w = len(win_file)
            toks = flat[offsets[s] : offsets[e]]
            win_file.append(fid)
            win_start.append(s)
            win_end.append(e)
            win_len.append(len(toks))
            if len(toks):
                pairs.append((w << 32) + toks)
        first.append(len(win_file))
    n_terms = len(vocab)
    if pairs:
        keys, tf = np.unique(np.concatenate(pairs), return_counts=True)
        post_window, post_term = (keys >> 32).astype(np.int32), (keys & 0xFFFFFFFF).astype(np.int64)
    else:
        post_window, post_term, tf = np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    # Sorted vocabulary: term ids keep their relative order whatever other files add, so a query sums
    # its terms in the same order and scores are bit-identical with or without any one file's terms.
    terms = sorted(vocab)
    rank = np.empty(n_terms, np.int64)
    rank[np.array([vocab[t] for t in terms], np.int64)] = np.arange(n_terms)
    post_term = rank[post_term] if n_terms else post_term
    order = np.argsort(post_term, kind="stable")
    indptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.bincount(post_term, minlength=n_terms), out=indptr[1:])
    return RepoIndex(
        name=repo.name,
        commit=repo.commit,
        config=config,
        paths=paths,
        languages=languages,
        texts=texts,
        errors=errors,
        graph=graph,
        win_file=np.asarray(win_file, np.int32),
        win_start=np.asarray(win_start, np.int32),
        win_end=np.asarray(win_end, np.int32),
        win_len=np.asarray(win_len, np.int32),
        file_first_window=np.asarray(first, np.int64),
        terms=terms,
        indptr=indptr,
        post_window=post_window[order],
        post_tf=tf[order].astype(np.int32),
    )


def usage_windows(index: RepoIndex) -> list[np.ndarray]:
    """For each graph reference, the windows of the using file where the name it is used by appears."""
    refs = index.graph.references
    by_file: dict[int, list[int]] = {}
    for n, (_, f, _, _) in enumerate(refs):
        by_file.setdefault(f, []).append(n)
    out: list[np.ndarray] = [np.zeros(0, np.int32)] * len(refs)
    for f, numbers in by_file.items():
        names = sorted({refs[n][3] for n in numbers}, key=len, reverse=True)
        pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, names)) + r")\b")
        lines_of: dict[str, list[int]] = {}
        for lineno, line in enumerate(index.lines(f), 1):
            if "import" in line:
                continue
            for m in pattern.finditer(line):
                lines_of.setdefault(m.group(1), []).append(lineno)
        for n in numbers:
            out[n] = index.windows_containing(f, np.asarray(lines_of.get(refs[n][3], []), np.int64))
    return out
