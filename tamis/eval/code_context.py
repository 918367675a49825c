"""`tamis eval code-context`: hit@k and time per query of the context retriever on code-context tasks.

A task folder holds `tasks.jsonl` (task_id, repo, path, line, prefix, gold spans) and `repos.jsonl.gz`
(repo, path, content per file), as ../shared/data/code_context/ (read its README). Each repository is
indexed once (not timed per query); each task asks for the ranked snippets at its cursor, where the
task's file is only its prefix. A hit at k: one of the first k snippets lies in a gold file and
overlaps a gold span. `ms_per_query` is the mean wall time of one query on one core.

Weights are fitted by logistic regression on candidate features (label: the candidate overlaps a gold
span). `cross_validate` holds out one repository at a time, fits on the others and scores the held-out
repository: those are the out-of-fold figures; the shipped default weights are a fit on every dev repository.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tamis.code.index import CodeIndexConfig, RepoIndex, build
from tamis.code.ingest import from_rows
from tamis.code.retriever import FEATURES, ContextRetriever, Cursor, RetrieverConfig, Snippet
from tamis.errors import InputError
from tamis.io.side_files import jsonl_rows

log = logging.getLogger(__name__)
KS = (1, 5, 10)
_HINT = "--tasks takes a folder with tasks.jsonl and repos.jsonl.gz (see ../shared/data/code_context/README.md)"


@dataclass
class TaskSet:
    tasks: list[dict]
    rows: list[dict]  # repository files: repo, path, content

    def repos(self) -> list[str]:
        return sorted({t["repo"] for t in self.tasks})


def load_tasks(directory: str | Path) -> TaskSet:
    root = Path(directory)
    for name in ("tasks.jsonl", "repos.jsonl.gz"):
        if not (root / name).is_file():
            raise InputError(f"{root / name} does not exist.", hint=_HINT)
    tasks = [row for _, row in jsonl_rows(root / "tasks.jsonl", hint=_HINT)]
    for n, t in enumerate(tasks, 1):
        missing = [k for k in ("task_id", "repo", "path", "line", "prefix", "gold") if k not in t]
        if missing:
            raise InputError(f"{root / 'tasks.jsonl'}: task {n} lacks {missing}.", hint=_HINT)
    rows = [row for _, row in jsonl_rows(root / "repos.jsonl.gz", hint=_HINT)]
    return TaskSet(tasks, rows)


def build_indexes(data: TaskSet, config: CodeIndexConfig | None = None) -> dict[str, RepoIndex]:
    config = config or CodeIndexConfig()
    wanted = set(data.repos())
    repos = from_rows((r for r in data.rows if r["repo"] in wanted), config.ingest)
    return {r.name: build(r, config) for r in repos}


def cursor(task: dict) -> Cursor:
    return Cursor(task["path"], int(task["line"]), task["prefix"])


def is_hit(path: str, start: int, end: int, gold: list[dict]) -> bool:
    return any(path == g["path"] and start <= g["end_line"] and g["start_line"] <= end for g in gold)


def hits_at(snippets: list[Snippet], gold: list[dict]) -> dict[str, float]:
    first = next((i for i, s in enumerate(snippets) if is_hit(s.path, s.start, s.end, gold)), None)
    return {f"hit@{k}": float(first is not None and first < k) for k in KS}


def summarize(per_task: list[dict]) -> dict:
    """Mean hit@k and ms per query over task results ({"hit@1", ..., "ms"})."""
    if not per_task:
        return {**{f"hit@{k}": 0.0 for k in KS}, "tasks": 0, "ms_per_query": 0.0}
    out = {f"hit@{k}": round(float(np.mean([r[f"hit@{k}"] for r in per_task])), 4) for k in KS}
    out["tasks"] = len(per_task)
    out["ms_per_query"] = round(float(np.mean([r["ms"] for r in per_task])), 3)
    return out


def run_tasks(
    data: TaskSet,
    indexes: dict[str, RepoIndex],
    config: RetrieverConfig | None = None,
    weights_by_repo: dict[str, np.ndarray] | None = None,
) -> list[dict]:
    """One result per task: hit@k, ms, repo, whether a gold definition is re-exported."""
    config = config or RetrieverConfig()
    retrievers = {name: ContextRetriever(idx, config) for name, idx in indexes.items()}
    out = []
    for t in data.tasks:
        r = retrievers[t["repo"]]
        w = None if weights_by_repo is None else weights_by_repo[t["repo"]]
        start = time.perf_counter()
        snippets = r.rank(cursor(t), k=max(KS), weights=w)
        ms = 1000 * (time.perf_counter() - start)
        reexport = any(g.get("reexport_hops", 0) > 0 for g in t["gold"])
        out.append({"task_id": t["task_id"], "repo": t["repo"], "reexport": reexport, "ms": ms,
                    **hits_at(snippets, t["gold"])})
    return out


def report(per_task: list[dict]) -> dict:
    """Overall figures, per repository, and for tasks whose gold is reached through re-exports."""
    by_repo = defaultdict(list)
    for r in per_task:
        by_repo[r["repo"]].append(r)
    return {
        **summarize(per_task),
        "per_repo": {name: summarize(rs) for name, rs in sorted(by_repo.items())},
        "reexport": summarize([r for r in per_task if r["reexport"]]),
    }


# --- fitting the weights --------------------------------------------------------------------------------------------


def training_rows(data: TaskSet, indexes: dict[str, RepoIndex], config: RetrieverConfig | None = None):
    """Per repository: (features, labels, task number) of every candidate of every task."""
    config = config or RetrieverConfig()
    retrievers = {name: ContextRetriever(idx, config) for name, idx in indexes.items()}
    out: dict[str, list] = defaultdict(lambda: [[], [], []])
    for n, t in enumerate(data.tasks):
        r = retrievers[t["repo"]]
        cands = r.candidates(cursor(t))
        labels = [is_hit(r.index.paths[f], s, min(e, s + config.max_snippet_lines - 1), t["gold"])
                  for f, s, e in cands.spans]
        rows = out[t["repo"]]
        rows[0].append(cands.features)
        rows[1].append(np.asarray(labels, bool))
        rows[2].append(np.full(len(labels), n))
    return {name: tuple(np.concatenate(parts) for parts in v) for name, v in out.items()}


def fit_weights(features: np.ndarray, labels: np.ndarray, groups: np.ndarray, c: float = 1.0) -> dict[str, float]:
    """Pairwise logistic regression (RankNet-style, linear): within each task, every gold candidate should
    outscore every other one. Fitted on feature differences without intercept; each task weighs the same."""
    from sklearn.linear_model import LogisticRegression

    diffs, weights = [], []
    order = np.argsort(groups, kind="stable")
    features, labels, groups = features[order], labels[order], groups[order]
    bounds = np.flatnonzero(np.diff(groups)) + 1
    for x, y in zip(np.split(features, bounds), np.split(labels, bounds), strict=True):
        pos, neg = x[y], x[~y]
        if not len(pos) or not len(neg):
            continue
        d = (pos[:, None, :] - neg[None, :, :]).reshape(-1, x.shape[1])
        diffs.append(d)
        weights.append(np.full(len(d), 1.0 / len(d)))
    if not diffs:
        return dict.fromkeys(FEATURES, 0.0)
    x = np.concatenate(diffs)
    w = np.concatenate(weights)
    x = np.concatenate([x, -x])  # both orders, so the two classes balance and no intercept is needed
    y = np.r_[np.ones(len(w)), np.zeros(len(w))]
    model = LogisticRegression(C=c, max_iter=5000, fit_intercept=False)
    model.fit(x, y, sample_weight=np.r_[w, w] * len(diffs))
    return {f: round(float(v), 4) for f, v in zip(FEATURES, model.coef_[0], strict=True)}


def fold_weights(
    data: TaskSet, indexes: dict[str, RepoIndex], config: RetrieverConfig | None = None, c: float = 1.0
) -> dict[str, dict[str, float]]:
    """Leave-one-repository-out: for each repository, the weights fitted on the other repositories' tasks."""
    rows = training_rows(data, indexes, config)
    weights: dict[str, dict[str, float]] = {}
    for held in data.repos():
        others = [rows[name] for name in sorted(rows) if name != held]
        if not others:
            raise InputError("Cross-validation across repositories needs tasks from at least two repositories.")
        x, y, g = (np.concatenate([o[i] for o in others]) for i in range(3))
        weights[held] = fit_weights(x, y, g, c)
    return weights


def as_vector(weights: dict[str, float]) -> np.ndarray:
    return np.array([weights.get(f, 0.0) for f in FEATURES], np.float64)


def cross_validate(
    data: TaskSet, indexes: dict[str, RepoIndex], config: RetrieverConfig | None = None, c: float = 1.0
) -> tuple[list[dict], dict[str, dict[str, float]]]:
    """Per task results, each repository scored with weights fitted on the other repositories (out-of-fold)."""
    weights = fold_weights(data, indexes, config, c)
    vectors = {name: as_vector(w) for name, w in weights.items()}
    return run_tasks(data, indexes, config, vectors), weights


def fit_all(data: TaskSet, indexes: dict[str, RepoIndex], config: RetrieverConfig | None = None, c: float = 1.0):
    rows = training_rows(data, indexes, config)
    x = np.concatenate([rows[n][0] for n in sorted(rows)])
    y = np.concatenate([rows[n][1] for n in sorted(rows)])
    g = np.concatenate([rows[n][2] for n in sorted(rows)])
    return fit_weights(x, y, g, c)
