"""What the code before a cursor says: its imports and which names it uses, and where.

The prefix of a file is usually not a complete program (the cursor sits inside a
function, a bracket is open), so it is not parsed whole: import statements are
found line by line and each is parsed alone (`ast` for Python, the error-tolerant
tree-sitter parse for other languages), and names are read with a regex.
"""

import ast
import re
import textwrap
from collections import defaultdict
from dataclasses import dataclass, field

from tamis.code.structure import Import, import_entries

_PY_IMPORT = re.compile(r"^([ \t]*)(?:from[ \t]+[\w.]+[ \t]+import\b|import[ \t]+[\w.])")
_DOTTED = re.compile(r"(?<![\w.])[A-Za-z_]\w*(?:[ \t]*\.[ \t]*[A-Za-z_]\w*)*")
_PY_LOCAL_DEF = re.compile(r"^[ \t]*(?:async[ \t]+)?(?:def|class)[ \t]+(\w+)")


@dataclass
class PrefixView:
    lines: list[str]
    imports: list[Import] = field(default_factory=list)
    import_lines: set[int] = field(default_factory=set)  # 1-based
    text: str = ""
    local_defs: set[str] = field(default_factory=set)

    @property
    def cursor(self) -> int:
        """1-based line of the cursor (the line after the prefix)."""
        return len(self.lines) + 1


def read_prefix(prefix: str, language: str, path: str = "") -> PrefixView:
    lines = prefix.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    view = PrefixView(lines, text=prefix)
    if language == "Python":
        _python_imports(view)
        view.local_defs = {m.group(1) for line in lines if (m := _PY_LOCAL_DEF.match(line))}
    else:
        _other_imports(view, prefix, language, path)
    return view


def uses(view: PrefixView, names: list[str]) -> dict[str, list[int]]:
    """Lines (1-based, ascending) where each of `names` is used, and `name.attr` for its attributes,
    outside import statements. One pass over the prefix's dotted names."""
    found: dict[str, list[int]] = defaultdict(list)
    wanted = {n for n in names if n}
    if not wanted:
        return found
    dotted = any("." in n for n in wanted)
    for n, line in enumerate(view.lines, 1):
        if n in view.import_lines:
            continue
        for chain in _DOTTED.findall(line):
            parts = chain.replace(" ", "").split(".")
            heads = [".".join(parts[:k]) for k in range(1, len(parts) + 1)] if dotted else parts[:1]
            for k, head in enumerate(heads):
                if head in wanted:
                    found[head].append(n)
                    if k + 1 < len(parts):
                        found[f"{head}.{parts[k + 1]}"].append(n)
    return found


def _python_imports(view: PrefixView) -> None:
    lines = view.lines
    n = 0
    while n < len(lines):
        m = _PY_IMPORT.match(lines[n])
        if not m:
            n += 1
            continue
        start, depth, stmt = n, 0, []
        while n < len(lines):
            line = lines[n]
            stmt.append(line)
            depth += line.count("(") - line.count(")")
            n += 1
            if depth <= 0 and not line.rstrip().endswith("\\"):
                break
        try:
            tree = ast.parse(textwrap.dedent("\n".join(stmt)))
        except SyntaxError:
            continue  # an unfinished import at the cursor, or not an import at all (a string's content)
        view.import_lines.update(range(start + 1, n + 1))
        top = not m.group(1)
        for node in tree.body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                for imp in import_entries(node, top_level=top):
                    view.imports.append(
                        Import(imp.module, imp.name, imp.local, imp.level, start + 1 + node.lineno - 1, top)
                    )


def _other_imports(view: PrefixView, prefix: str, language: str, path: str) -> None:
    from tamis.code.parse import structure

    s = structure(prefix, language, path)
    view.imports = list(s.imports)
    for imp in s.imports:
        view.import_lines.add(imp.line)
