"""Programming language of a source file, from its path (extension or file name) or its shebang line.

The path comes from the record's `meta` JSON (`path`, as code datasets such as
The Stack carry it). A file whose extension says nothing (a script without one)
falls back to its `#!` line. Other code scorers share the result through
`languages(docs)`, so a batch's languages are worked out once.
"""

import json
import posixpath
import re

import numpy as np

from tamis.filters.base import Scorer
from tamis.filters.registry import register
from tamis.filters.text import DocView

EXTENSIONS = {
    ".c": "C", ".h": "C",
    ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".c++": "C++", ".hh": "C++", ".hpp": "C++", ".hxx": "C++", ".tcc": "C++",
    ".cs": "C#", ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin", ".scala": "Scala", ".groovy": "Groovy",
    ".go": "Go", ".rs": "Rust", ".swift": "Swift", ".m": "Objective-C", ".mm": "Objective-C++", ".d": "D",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".mts": "TypeScript", ".cts": "TypeScript",
    ".py": "Python", ".pyi": "Python", ".pyx": "Cython", ".rb": "Ruby", ".php": "PHP", ".pl": "Perl", ".pm": "Perl",
    ".t": "Perl", ".lua": "Lua", ".sh": "Shell", ".bash": "Shell", ".zsh": "Shell", ".ksh": "Shell",
    ".ps1": "PowerShell", ".bat": "Batchfile", ".cmd": "Batchfile",
    ".erl": "Erlang", ".hrl": "Erlang", ".ex": "Elixir", ".exs": "Elixir", ".hs": "Haskell", ".ml": "OCaml",
    ".mli": "OCaml", ".fs": "F#", ".fsx": "F#", ".clj": "Clojure", ".lisp": "Common Lisp", ".el": "Emacs Lisp",
    ".scm": "Scheme", ".rkt": "Racket", ".dart": "Dart", ".r": "R", ".jl": "Julia", ".swg": "SWIG",
    ".hx": "Haxe", ".thrift": "Thrift", ".proto": "Protocol Buffer", ".sql": "SQL", ".vb": "Visual Basic .NET",
    ".pas": "Pascal", ".f90": "Fortran", ".f": "Fortran", ".zig": "Zig", ".nim": "Nim", ".v": "Verilog",
    ".vhd": "VHDL", ".cmake": "CMake", ".mk": "Makefile", ".html": "HTML", ".htm": "HTML", ".css": "CSS",
    ".scss": "SCSS", ".xml": "XML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML",
    ".md": "Markdown", ".rst": "reStructuredText", ".tex": "TeX", ".ipynb": "Jupyter Notebook",
}  # fmt: skip
FILENAMES = {
    "makefile": "Makefile", "gnumakefile": "Makefile", "cmakelists.txt": "CMake", "dockerfile": "Dockerfile",
    "rakefile": "Ruby", "gemfile": "Ruby", "build.gradle": "Groovy", "meson.build": "Meson", "sconstruct": "Python",
    "rebar.config": "Erlang",
}  # fmt: skip
INTERPRETERS = {
    "python": "Python", "python2": "Python", "python3": "Python", "pypy": "Python", "sh": "Shell", "bash": "Shell",
    "zsh": "Shell", "ksh": "Shell", "dash": "Shell", "perl": "Perl", "ruby": "Ruby", "node": "JavaScript",
    "nodejs": "JavaScript", "deno": "TypeScript", "ts-node": "TypeScript", "php": "PHP", "lua": "Lua",
    "escript": "Erlang", "Rscript": "R", "julia": "Julia", "tclsh": "Tcl", "groovy": "Groovy",
}  # fmt: skip
# `#!/usr/bin/env -S python3 -u`, `#! /bin/sh`, `#!/usr/bin/perl -w`: take the program's base name, drop a version.
_SHEBANG = re.compile(r"#!\s*(?:\S*/)?(?:env\s+(?:-\S+\s+)*)?([A-Za-z_.+-]+?)(?:[0-9.]*)(?=\s|$)")


def path_of(meta: str | None) -> str:
    """`path` from a record's meta JSON ("" when there is none or the meta is not a JSON object)."""
    if not meta:
        return ""
    try:
        value = json.loads(meta)
    except ValueError:
        return ""
    path = value.get("path") if isinstance(value, dict) else None
    return path if isinstance(path, str) else ""


def language_of(path: str, text: str) -> tuple[str, str]:
    """(language, how it was found: "extension" | "filename" | "shebang" | "")."""
    name = posixpath.basename(path.replace("\\", "/"))
    if name.lower() in FILENAMES:
        return FILENAMES[name.lower()], "filename"
    ext = posixpath.splitext(name)[1].lower()
    if ext in EXTENSIONS:
        return EXTENSIONS[ext], "extension"
    if text.startswith("#!"):
        m = _SHEBANG.match(text[: text.find("\n") if "\n" in text[:256] else 256])
        if m and m.group(1) in INTERPRETERS:
            return INTERPRETERS[m.group(1)], "shebang"
    return "", ""


def paths(docs: DocView) -> list[str]:
    return docs.cached("code.paths", lambda d: [path_of(m) for m in d.batch.column("meta").to_pylist()], per_row=True)


def languages(docs: DocView) -> list[tuple[str, str]]:
    return docs.cached(
        "code.languages", lambda d: [language_of(p, t) for p, t in zip(paths(d), d.texts, strict=True)], per_row=True
    )


@register
class CodeLanguage(Scorer):
    """Adds `code_lang.lang` (e.g. "Python"; "" when unknown) and `code_lang.by` (extension/filename/shebang)."""

    name = "code_lang"

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        found = languages(docs)
        return {
            self.col("lang"): np.array([lang for lang, _ in found], dtype=object),
            self.col("by"): np.array([by for _, by in found], dtype=object),
        }
