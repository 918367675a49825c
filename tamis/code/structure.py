"""What a source file holds for cross-file context: imports, definitions with their spans, and call sites.

Python is read here with the standard `ast`; other languages with tree-sitter
(`tamis.code.treesitter`); `tamis.code.parse.structure` picks the reader. A file
that does not parse gets empty structure and a reason (`FileStructure.error`),
so the retriever degrades to windows for it.
Lines are 1-based and inclusive, as in the code-context tasks.
"""

import ast
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Import:
    """`local` is the name the importing file binds; `module` is absolute when `level` is 0.

    `import a.b` binds `a` to module `a` (name None); `import a.b as c` binds `c` to `a.b`;
    `from .m import X as Y` is module "m", level 1, name "X", local "Y"; `from m import *` has name "*".
    """

    module: str
    name: str | None
    local: str
    level: int
    line: int
    top_level: bool = True


@dataclass(frozen=True)
class Definition:
    """A function, class, method or module-level assignment; `start` includes decorators."""

    name: str
    kind: str  # "function" | "class" | "method" | "assignment"
    start: int
    end: int
    parent: str = ""  # enclosing class of a method


@dataclass
class FileStructure:
    imports: list[Import] = field(default_factory=list)
    definitions: list[Definition] = field(default_factory=list)
    calls: list[tuple[str, int]] = field(default_factory=list)  # (dotted callee, line)
    error: str = ""  # why the file gave no structure ("" when it parsed)

    def top_level(self) -> list[Definition]:
        return [d for d in self.definitions if d.kind != "method"]


def python_structure(text: str) -> FileStructure:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return FileStructure(error=f"python does not parse: {type(e).__name__}: {e}".splitlines()[0][:200])
    out = FileStructure()
    top: set[int] = set()  # ids of the module-level import nodes
    _visit_body(tree.body, out, top)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = dotted(node.func)
            if name:
                out.calls.append((name, node.lineno))
        elif isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
            out.imports.extend(import_entries(node, top_level=False))
    out.imports.sort(key=lambda i: i.line)
    return out


def import_entries(node: ast.Import | ast.ImportFrom, top_level: bool) -> list[Import]:
    if isinstance(node, ast.Import):
        found = []
        for a in node.names:
            if a.asname:
                found.append(Import(a.name, None, a.asname, 0, node.lineno, top_level))
            else:
                top = a.name.split(".")[0]
                found.append(Import(top, None, top, 0, node.lineno, top_level))
                if "." in a.name:  # `import a.b` also makes a.b reachable as an attribute chain
                    found.append(Import(a.name, None, a.name, 0, node.lineno, top_level))
        return found
    module = node.module or ""
    return [Import(module, a.name, a.asname or a.name, node.level, node.lineno, top_level) for a in node.names]


def _start(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _visit_body(body: list[ast.stmt], out: FileStructure, top: set[int]) -> None:
    """Module-level statements, descending into `if`/`try` (conditional imports and definitions)."""
    for n in body:
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
            out.definitions.append(Definition(n.name, "function", _start(n), n.end_lineno))
        elif isinstance(n, ast.ClassDef):
            out.definitions.append(Definition(n.name, "class", _start(n), n.end_lineno))
            for m in n.body:
                if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef):
                    out.definitions.append(Definition(m.name, "method", _start(m), m.end_lineno, n.name))
        elif isinstance(n, ast.Assign | ast.AnnAssign):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            for t in targets:
                for name in _target_names(t):
                    out.definitions.append(Definition(name, "assignment", n.lineno, n.end_lineno))
        elif isinstance(n, ast.Import | ast.ImportFrom):
            top.add(id(n))
            out.imports.extend(import_entries(n, top_level=True))
        elif isinstance(n, ast.If):
            _visit_body(n.body, out, top)
            _visit_body(n.orelse, out, top)
        elif isinstance(n, ast.Try | ast.TryStar):
            _visit_body(n.body, out, top)
            for h in n.handlers:
                _visit_body(h.body, out, top)
            _visit_body(n.orelse, out, top)
            _visit_body(n.finalbody, out, top)


def _target_names(t: ast.expr) -> list[str]:
    if isinstance(t, ast.Name):
        return [t.id]
    if isinstance(t, ast.Tuple | ast.List):
        return [n for e in t.elts for n in _target_names(e)]
    return []


def dotted(expr: ast.expr) -> str:
    """`a.b.c` for a Name/Attribute chain, "" for anything else (calls on call results, subscripts)."""
    parts = []
    while isinstance(expr, ast.Attribute):
        parts.append(expr.attr)
        expr = expr.value
    if not isinstance(expr, ast.Name):
        return ""
    parts.append(expr.id)
    return ".".join(reversed(parts))
