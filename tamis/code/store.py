"""The code index on disk: one folder per repository, a manifest written last; loaded read-only.

    DIR/manifest.json                      kind "code-index", format version, config, one entry per repository
    DIR/repos/<owner+name>/files.arrow     path, language, text, error, canon, is_init
    DIR/repos/<owner+name>/windows/*.npy   window file/start/end/length, per-file first window
    DIR/repos/<owner+name>/postings/*.npy  term-major window postings (indptr, window, tf)
    DIR/repos/<owner+name>/{terms,definitions,bindings,stars,modules,edges,references}.arrow

Arrays are .npy loaded with allow_pickle=False; tables are Arrow IPC files; every file is written
atomically and checksummed in the manifest, which `load` verifies before it reads anything.
"""

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from tamis.code.graph import Binding, RepoGraph
from tamis.code.index import CodeIndexConfig, RepoIndex
from tamis.code.structure import Definition
from tamis.errors import InputError, IntegrityError
from tamis.io import arrays, atomic, manifest
from tamis.validation import parse

KIND = "code-index"
FORMAT_VERSION = 1
_WINDOW_ARRAYS = ("win_file", "win_start", "win_end", "win_len", "file_first_window")
_POSTING_ARRAYS = ("indptr", "post_window", "post_tf")


def slug(name: str) -> str:
    """A repository name as one folder name: owner/name -> owner+name, other unsafe characters -> '_'."""
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name.replace("/", "+")) or "_"












def write_repo(root: str, index: RepoIndex) -> dict[str, Any]:
    """Write one repository's folder; returns its manifest entry (files relative to `root`)."""
    rel = f"repos/{slug(index.name)}"
    base = atomic.join(root, rel)
    g = index.graph
    written: list[str] = []

    def arrow(name: str, table: pa.Table) -> None:
        arrays.write_arrow(atomic.join(base, name), table)
        written.append(f"{rel}/{name}")

    def npy(folder: str, name: str) -> None:
        arrays.write_npy(atomic.join(base, folder, f"{name}.npy"), getattr(index, name))
        written.append(f"{rel}/{folder}/{name}.npy")

    arrow("files.arrow", pa.table({
        "path": pa.array(index.paths, pa.string()), "language": pa.array(index.languages, pa.string()),
        "text": pa.array(index.texts, pa.large_string()), "error": pa.array(index.errors, pa.string()),
        "canon": pa.array(g.canon, pa.string()), "is_init": pa.array(g.is_init, pa.bool_()),
    }))
    for name in _WINDOW_ARRAYS:
        npy("windows", name)
    for name in _POSTING_ARRAYS:
        npy("postings", name)
    arrow("terms.arrow", pa.table({"term": pa.array(index.terms, pa.string())}))
    defs = g.definitions
    arrow("definitions.arrow", pa.table({
        "file": pa.array([f for f, _ in defs], pa.int32()), "name": pa.array([d.name for _, d in defs], pa.string()),
        "kind": pa.array([d.kind for _, d in defs], pa.string()),
        "start": pa.array([d.start for _, d in defs], pa.int32()), "end": pa.array([d.end for _, d in defs], pa.int32()),
        "parent": pa.array([d.parent for _, d in defs], pa.string()),
    }))
    rows = [(f, local, b) for f, table in enumerate(g.bindings) for local, b in table.items()]
    arrow("bindings.arrow", pa.table({
        "file": pa.array([f for f, _, _ in rows], pa.int32()), "local": pa.array([x for _, x, _ in rows], pa.string()),
        "kind": pa.array([b.kind for _, _, b in rows], pa.string()),
        "def_id": pa.array([b.def_id for _, _, b in rows], pa.int64()),
        "module": pa.array([b.module for _, _, b in rows], pa.string()),
        "name": pa.array([b.name for _, _, b in rows], pa.string()),
    }))
    stars = [(f, m) for f, ms in enumerate(g.stars) for m in ms]
    arrow("stars.arrow", pa.table({"file": pa.array([f for f, _ in stars], pa.int32()),
                                   "module": pa.array([m for _, m in stars], pa.string())}))
    mods = [(m, f) for m, fs in sorted(g.modules.items()) for f in fs]
    arrow("modules.arrow", pa.table({"module": pa.array([m for m, _ in mods], pa.string()),
                                     "file": pa.array([f for _, f in mods], pa.int32())}))
    refs = g.references
    arrow("references.arrow", pa.table({
        "def_id": pa.array([r[0] for r in refs], pa.int64()), "file": pa.array([r[1] for r in refs], pa.int32()),
        "via": pa.array([list(r[2]) for r in refs], pa.list_(pa.int32())),
        "name": pa.array([r[3] for r in refs], pa.string()),
        "windows": pa.array([w.tolist() for w in index.ref_windows], pa.list_(pa.int32())),
    }))
    edges = [(f, t) for f, ts in enumerate(g.edges) for t in ts]
    arrow("edges.arrow", pa.table({"file": pa.array([f for f, _ in edges], pa.int32()),
                                   "target": pa.array([t for _, t in edges], pa.int32())}))
    return {
        "name": index.name, "dir": rel, "commit": index.commit, "files": len(index.paths),
        "windows": index.n_windows, "definitions": len(defs), "terms": len(index.terms),
        "unparsed_files": sum(1 for e in index.errors if e), "file_entries": written,
    }  # fmt: skip


def write_manifest(root: str, config: CodeIndexConfig, entries: list[dict[str, Any]], **extra) -> dict[str, Any]:
    """Checksum every repository's files and write the manifest last: the index exists once this returns."""
    entries = sorted(entries, key=lambda e: e["name"])
    names = [e["name"] for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InputError(f"Repositories {dupes} were given more than once.", hint="name each repository once")
    files = [f for e in entries for f in e["file_entries"]]
    repos = [{k: v for k, v in e.items() if k not in ("file_entries",)} for e in entries]
    body = {"config": config.to_dict(), "repos": repos, **extra}
    return manifest.write_manifest(root, KIND, FORMAT_VERSION, body, files)


def save(root: str, indexes: list[RepoIndex], config: CodeIndexConfig, **extra) -> dict[str, Any]:
    atomic.makedirs(root)
    return write_manifest(root, config, [write_repo(root, i) for i in indexes], **extra)


@dataclass
class CodeIndex:
    """A loaded code index: its manifest and one RepoIndex per repository (read-only)."""

    manifest: dict[str, Any]
    repos: dict[str, RepoIndex]

    def repo_for(self, path: str, repo: str | None = None) -> tuple[RepoIndex, str]:
        """The repository a file belongs to, and the file's path inside it.

        With `repo` given, that repository; else the one repository of the index, or the one whose
        name prefixes `path` ("owner/name/src/x.py"), or the only one holding `path`.
        """
        if repo is not None:
            if repo not in self.repos:
                raise InputError(f"The code index has no repository {repo!r}.", hint=f"known: {sorted(self.repos)}")
            return self.repos[repo], path
        if len(self.repos) == 1:
            return next(iter(self.repos.values())), path
        for name, idx in self.repos.items():
            if path.startswith(name + "/"):
                return idx, path[len(name) + 1 :]
        holders = [idx for idx in self.repos.values() if idx.file_id(path) is not None]
        if len(holders) == 1:
            return holders[0], path
        raise InputError(
            f"Cannot tell which repository of the code index {path} belongs to.",
            hint="pass the repository name (--repo), or prefix the path with it",
        )


def load(root: str, verify: bool = True) -> CodeIndex:
    """Load a code index read-only; verifies every checksum first (IntegrityError on a mismatch)."""
    man = manifest.read_manifest(root, KIND, FORMAT_VERSION, verify=verify)
    config = parse(CodeIndexConfig, man["config"], owner="code_index")
    repos = {}
    for entry in man["repos"]:
        repos[entry["name"]] = _load_repo(atomic.join(root, entry["dir"]), entry, config)
    return CodeIndex(man, repos)


def _load_repo(base: str, entry: dict[str, Any], config: CodeIndexConfig) -> RepoIndex:
    try:
        files = arrays.read_arrow(atomic.join(base, "files.arrow")).to_pydict()
        defs = arrays.read_arrow(atomic.join(base, "definitions.arrow")).to_pydict()
        binds = arrays.read_arrow(atomic.join(base, "bindings.arrow")).to_pydict()
        stars = arrays.read_arrow(atomic.join(base, "stars.arrow")).to_pydict()
        mods = arrays.read_arrow(atomic.join(base, "modules.arrow")).to_pydict()
        edges = arrays.read_arrow(atomic.join(base, "edges.arrow")).to_pydict()
        refs = arrays.read_arrow(atomic.join(base, "references.arrow")).to_pydict()
        terms = arrays.read_arrow(atomic.join(base, "terms.arrow"))["term"].to_pylist()
        loaded = {n: arrays.read_npy(atomic.join(base, "windows", f"{n}.npy")) for n in _WINDOW_ARRAYS}
        loaded |= {n: arrays.read_npy(atomic.join(base, "postings", f"{n}.npy")) for n in _POSTING_ARRAYS}
    except (OSError, pa.ArrowInvalid, ValueError, KeyError) as e:
        raise IntegrityError(f"The code index folder {base} cannot be read: {e}", hint="rebuild the index") from e
    n = len(files["path"])
    g = RepoGraph(list(files["path"]), list(files["language"]))
    g.canon, g.is_init = list(files["canon"]), list(files["is_init"])
    g.definitions = [
        (f, Definition(nm, k, s, e, p))
        for f, nm, k, s, e, p in zip(defs["file"], defs["name"], defs["kind"], defs["start"], defs["end"],
                                     defs["parent"], strict=True)
    ]
    g.file_defs = [[] for _ in range(n)]
    for d_id, (f, _) in enumerate(g.definitions):
        g.file_defs[f].append(d_id)
    g.bindings = [{} for _ in range(n)]
    for f, local, kind, d_id, module, name in zip(
        binds["file"], binds["local"], binds["kind"], binds["def_id"], binds["module"], binds["name"], strict=True
    ):
        g.bindings[f][local] = Binding(kind, d_id, module, name)
    g.stars = [[] for _ in range(n)]
    for f, m in zip(stars["file"], stars["module"], strict=True):
        g.stars[f].append(m)
    modules: dict[str, list[int]] = {}
    for m, f in zip(mods["module"], mods["file"], strict=True):
        modules.setdefault(m, []).append(f)
    g.modules = modules
    g.edges = [[] for _ in range(n)]
    for f, t in zip(edges["file"], edges["target"], strict=True):
        g.edges[f].append(t)
    g.references = [
        (d, f, tuple(v), nm) for d, f, v, nm in zip(refs["def_id"], refs["file"], refs["via"], refs["name"], strict=True)
    ]
    g.index_paths()
    return RepoIndex(
        name=entry["name"], commit=entry.get("commit", ""), config=config, paths=list(files["path"]),
        languages=list(files["language"]), texts=list(files["text"]), errors=list(files["error"]), graph=g,
        terms=terms, ref_windows=[np.asarray(w, np.int32) for w in refs["windows"]], **loaded,
    )  # fmt: skip
