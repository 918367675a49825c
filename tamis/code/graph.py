"""A repository's symbol table and import graph: which file defines a name that a file imports or calls.

Python modules get their importable names as the interpreter would see them
(relative to the parent of the topmost package, plus the plain dotted path
without a leading `src.`/`lib.`); relative imports resolve against the
importing file's package; a name re-exported by a package (`from .sub import X`
in `__init__.py`, or `from .sub import *`) is followed, up to `MAX_HOPS`, to the
file that defines it. Other languages resolve an import to files by path
(`./x` in JS/TS, `"x.h"` in C, `a.b.C` in Java, `crate::a::b` in Rust, a Go
package path), then look the imported name up among those files' definitions.
"""

import posixpath
from collections import defaultdict
from dataclasses import dataclass, field

from tamis.code.structure import Definition, FileStructure, Import

MAX_HOPS = 4
_SOURCE_EXTS = {
    "JavaScript": (".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx"),
    "TypeScript": (".ts", ".tsx", ".d.ts", ".js", ".jsx"),
    "Rust": (".rs",),
    "Java": (".java",),
}


def python_module_names(path: str, paths: set[str]) -> tuple[set[str], str | None, bool]:
    """(importable names, canonical name, is a package __init__) of a .py file among `paths`."""
    parts = path[: -len(posixpath.splitext(path)[1])].split("/")
    is_init = parts[-1] == "__init__"
    folders = parts[:-1]
    k = len(folders)
    while k > 0 and "/".join(folders[:k]) + "/__init__.py" in paths:
        k -= 1
    rel = parts[k:-1] if is_init else parts[k:]
    names = {".".join(rel)} if rel else set()
    full = parts[:-1] if is_init else parts
    if full:
        names.add(".".join(full))
        if full[0] in ("src", "lib") and len(full) > 1:
            names.add(".".join(full[1:]))
    return names, (".".join(rel) if rel else None), is_init


@dataclass
class Binding:
    """What a module-level name of a file is: a definition there, an import, or a module object."""

    kind: str  # "def" | "import" | "module"
    def_id: int = -1
    module: str = ""
    name: str | None = None


@dataclass
class RepoGraph:
    paths: list[str]
    languages: list[str]
    definitions: list[tuple[int, Definition]] = field(default_factory=list)  # (file id, definition)
    modules: dict[str, list[int]] = field(default_factory=dict)  # python module name -> file ids
    canon: list[str | None] = field(default_factory=list)
    is_init: list[bool] = field(default_factory=list)
    bindings: list[dict[str, Binding]] = field(default_factory=list)  # per file: top-level name -> binding
    stars: list[list[str]] = field(default_factory=list)  # per file: modules star-imported at top level
    file_defs: list[list[int]] = field(default_factory=list)
    edges: list[list[int]] = field(default_factory=list)  # per file: files it imports
    _suffixes: dict[str, list[int]] = field(default_factory=dict)
    # (definition, file using it, files its resolution went through, the name the file uses it by)
    references: list[tuple[int, int, tuple[int, ...], str]] = field(default_factory=list)
    _reverse: list[list[int]] = field(default_factory=list)
    _refs_by_def: dict[int, list[int]] = field(default_factory=dict)  # definition -> reference numbers
    _exports: dict[tuple[str, int], list[tuple[int, int]]] = field(default_factory=dict)

    @classmethod
    def build(cls, paths: list[str], languages: list[str], structures: list[FileStructure]) -> "RepoGraph":
        g = cls(list(paths), list(languages))
        path_set = set(paths)
        modules: dict[str, set[int]] = defaultdict(set)
        for i, (p, lang) in enumerate(zip(paths, languages, strict=True)):
            if lang == "Python":
                names, canon, is_init = python_module_names(p, path_set)
                for n in names:
                    modules[n].add(i)
            else:
                canon, is_init = None, False
            g.canon.append(canon)
            g.is_init.append(is_init)
        g.modules = {n: sorted(ids) for n, ids in modules.items()}
        g.index_paths()
        for i, s in enumerate(structures):
            ids = []
            for d in s.definitions:
                ids.append(len(g.definitions))
                g.definitions.append((i, d))
            g.file_defs.append(ids)
            g.bindings.append({})
            g.stars.append([])
        for i, s in enumerate(structures):
            g._bind(i, s)
        for i, s in enumerate(structures):
            g._reference(i, s)
        g.edges = [sorted({t for imp in s.imports for t in g.import_files(i, imp)} - {i}) for i, s in enumerate(structures)]
        return g

    # --- module names and paths ---------------------------------------------------------------------------------

    def index_paths(self) -> None:
        """Every trailing run of path components (extension dropped, and with it kept) -> files."""
        found: dict[str, set[int]] = defaultdict(set)
        for i, p in enumerate(self.paths):
            stem = p[: -len(posixpath.splitext(p)[1])] if posixpath.splitext(p)[1] else p
            for text in {p, stem}:
                parts = text.split("/")
                for k in range(len(parts)):
                    found["/".join(parts[k:])].add(i)
        self._suffixes = {k: sorted(v) for k, v in found.items()}

    def absolute(self, file: int | None, module: str, level: int, path: str = "") -> str | None:
        """The absolute module a (possibly relative) Python import names from `file` (or a file at `path`)."""
        if level == 0:
            return module
        if file is not None:
            canon, is_init = self.canon[file], self.is_init[file]
        else:
            _, canon, is_init = python_module_names(path, set(self.paths) | {path})
        base = canon.split(".") if canon else []
        if base and not is_init:
            base = base[:-1]
        if level - 1 > len(base):
            return None
        base = base[: len(base) - (level - 1)]
        if module:
            base = base + module.split(".")
        return ".".join(base) if base else None

    def import_files(self, file: int | None, imp: Import, path: str = "", language: str = "") -> list[int]:
        """Files an import statement reaches (its module, or for `from m import sub` the submodule too)."""
        lang = self.languages[file] if file is not None else language
        src = self.paths[file] if file is not None else path
        if lang == "Python":
            module = self.absolute(file, imp.module, imp.level, src)
            if module is None:
                return []
            found = list(self.modules.get(module, []))
            if imp.name and imp.name != "*":
                found += self.modules.get(f"{module}.{imp.name}", [])
            return found
        return self._path_import(src, lang, imp)

    def _path_import(self, src: str, lang: str, imp: Import) -> list[int]:
        module = imp.module
        if lang in ("JavaScript", "TypeScript", "TSX"):
            if not module.startswith("."):
                return []
            target = posixpath.normpath(posixpath.join(posixpath.dirname(src), module))
            for cand in (target, target + "/index"):
                hits = [i for i in self._suffixes.get(cand, []) if self.paths[i].startswith(cand)]
                if hits:
                    return hits
            return []
        if lang in ("C", "C++"):
            near = posixpath.normpath(posixpath.join(posixpath.dirname(src), module))
            if near in self._suffixes and near in self.paths:
                return [self.paths.index(near)]
            return self._suffixes.get(module, [])
        if lang == "Java":
            base = module.replace(".", "/")
            if imp.name and imp.name != "*":
                return self._suffixes.get(f"{base}/{imp.name}", []) or self._suffixes.get(base, [])
            return [i for i in range(len(self.paths)) if posixpath.dirname(self.paths[i]).endswith(base)]
        if lang == "Rust":
            parts = [p for p in module.split("::") if p not in ("crate", "self", "super")]
            for cand in ("/".join(parts + [imp.name or ""]), "/".join(parts), "/".join(parts + ["mod"])):
                if cand and cand in self._suffixes:
                    return self._suffixes[cand]
            return []
        if lang == "Go":
            parts = module.split("/")
            for k in range(len(parts)):
                tail = "/".join(parts[k:])
                hits = [i for i in range(len(self.paths)) if posixpath.dirname(self.paths[i]).endswith(tail)]
                if hits:
                    return hits
            return []
        return []

    # --- bindings and resolution --------------------------------------------------------------------------------

    def _bind(self, i: int, s: FileStructure) -> None:
        table = self.bindings[i]
        for d_id in self.file_defs[i]:
            d = self.definitions[d_id][1]
            if d.kind != "method":
                table[d.name] = Binding("def", def_id=d_id)
        for imp in s.imports:
            if not imp.top_level:
                continue
            for local, b in self.import_bindings(i, imp):
                if local == "*":
                    self.stars[i].append(b.module)
                else:
                    table.setdefault(local, b)

    def import_bindings(
        self, file: int | None, imp: Import, path: str = "", language: str = ""
    ) -> list[tuple[str, Binding]]:
        """(local name, binding) pairs an import statement creates in a file."""
        lang = self.languages[file] if file is not None else language
        if lang != "Python":
            hits = self.import_files(file, imp, path, language)
            if imp.name in (None, "*", "default") or not hits:
                return [(imp.local or "*", Binding("module", module=f"@{','.join(map(str, hits))}"))] if hits else []
            return [(imp.local, Binding("import", module=f"@{','.join(map(str, hits))}", name=imp.name))]
        module = self.absolute(file, imp.module, imp.level, path)
        if module is None:
            return []
        if imp.name is None:
            return [(imp.local, Binding("module", module=module))]
        if imp.name == "*":
            return [("*", Binding("module", module=module))]
        if f"{module}.{imp.name}" in self.modules:
            return [(imp.local, Binding("module", module=f"{module}.{imp.name}"))]
        return [(imp.local, Binding("import", module=module, name=imp.name))]

    def module_files(self, module: str) -> list[int]:
        """Files of a Python module name, or of an "@1,2" path-resolved module of another language."""
        if module.startswith("@"):
            return [int(x) for x in module[1:].split(",") if x]
        return self.modules.get(module, [])

    def resolve(self, module: str, name: str, exclude: int = -1) -> list[tuple[int, int]]:
        """(definition id, re-export hops) of `name` imported from `module`, never reading file `exclude`."""
        return sorted({(d, hops) for d, hops, _ in self.resolve_paths(module, name, exclude)})

    def resolve_paths(self, module: str, name: str, exclude: int = -1) -> list[tuple[int, int, tuple[int, ...]]]:
        """`resolve`, with the files each resolution read on the way (the re-exporting ones)."""
        found = []
        seen: set[tuple[str, str]] = set()
        frontier: list[tuple[str, str, int, tuple[int, ...]]] = [(module, name, 0, ())]
        while frontier:
            mod, nm, hops, via = frontier.pop()
            if hops > MAX_HOPS or (mod, nm) in seen:
                continue
            seen.add((mod, nm))
            for f in self.module_files(mod):
                if f == exclude:
                    continue
                b = self.bindings[f].get(nm)
                if b is None:
                    frontier.extend((star, nm, hops + 1, (*via, f)) for star in self.stars[f])
                elif b.kind == "def":
                    found.append((b.def_id, hops, via))
                elif b.kind == "import" and b.name:
                    frontier.append((b.module, b.name, hops + 1, (*via, f)))
        return found

    def _reference(self, i: int, s: FileStructure) -> None:
        """Record which definitions file i uses through its imports and `module.name` calls."""
        wanted = [(b.module, b.name, local) for local, b in self.bindings[i].items() if b.kind == "import" and b.name]
        for callee, _ in s.calls:
            head, _, attr = callee.partition(".")
            b = self.bindings[i].get(head)
            if attr and b is not None and b.kind == "module":
                attr = attr.split(".")[0]
                wanted.append((b.module, attr, f"{head}.{attr}"))
        for module, name, local in dict.fromkeys(wanted):
            for d, _, via in self.resolve_paths(module, name):
                if self.definitions[d][0] != i:
                    self.references.append((d, i, via, local))

    def references_of(self, d: int) -> list[int]:
        """Numbers (into `references`) of the uses of definition d."""
        if not self._refs_by_def and self.references:
            for n, (ref_def, *_) in enumerate(self.references):
                self._refs_by_def.setdefault(ref_def, []).append(n)
        return self._refs_by_def.get(d, [])

    def usable_references(self, d: int, exclude: int) -> list[int]:
        """References of d by files other than `exclude` whose resolution did not read `exclude`."""
        refs = self.references
        return [n for n in self.references_of(d) if refs[n][1] != exclude and exclude not in refs[n][2]]

    def popularity(self, def_ids, exclude: int = -1) -> list[int]:
        """How many files other than `exclude` use each definition (nothing of `exclude` counts)."""
        return [len({self.references[n][1] for n in self.usable_references(d, exclude)}) for d in def_ids]

    def module_definitions(self, module: str, exclude: int = -1, depth: int = 0) -> list[tuple[int, int]]:
        """(definition id, hops) of every name a module offers: its own top-level definitions and the
        names it imports at top level or star-imports (a package's re-exports), resolved; `exclude` is never read."""
        if depth > MAX_HOPS:
            return []
        key = (module, exclude)
        if key in self._exports:
            return self._exports[key]
        if len(self._exports) > 4096:
            self._exports.clear()
        found: dict[int, int] = {}
        for f in self.module_files(module):
            if f == exclude:
                continue
            for b in self.bindings[f].values():
                if b.kind == "def":
                    found.setdefault(b.def_id, 0)
                elif b.kind == "import" and b.name:
                    for d, hops in self.resolve(b.module, b.name, exclude):
                        found.setdefault(d, hops + 1)
            for star in self.stars[f]:
                for d, hops in self.module_definitions(star, exclude, depth + 1):
                    found.setdefault(d, hops + 1)
        self._exports[key] = sorted(found.items())
        return self._exports[key]

    def importers(self, file: int) -> list[int]:
        """Files that import `file` (the reverse edges)."""
        if not self._reverse:
            rev: list[list[int]] = [[] for _ in self.paths]
            for f, targets in enumerate(self.edges):
                for t in targets:
                    rev[t].append(f)
            self._reverse = rev
        return self._reverse[file]

    def neighbours(self, first: list[int], exclude: int) -> dict[int, int]:
        """Files at import distance 1 (`first`) and 2 (their imports and importers) -> distance; never `exclude`.

        The cursor's file passes its own first ring (from its prefix), so its indexed, complete
        imports are never read.
        """
        dist = {f: 1 for f in first if f != exclude}
        for f in list(dist):
            for g in (*self.edges[f], *self.importers(f)):
                if g not in dist and g != exclude:
                    dist[g] = 2
        return dist
