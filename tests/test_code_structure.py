"""Structure of source files: Python with ast, seven other languages with tree-sitter; the prefix reader."""

import pytest

from tamis.code.parse import structure
from tamis.code.prefix import read_prefix, uses

PY = '''"""Doc."""
import os.path
import numpy as np
from . import sibling
from .models import (Model as M,
                     Other)

@decorator
def top(x):
    import json
    return helper(x) + np.sum(x)

class K(Base):
    attr = 1

    def method(self):
        return os.path.join("a", "b")

CONST: int = 3
A, B = 1, 2
'''


def test_python_imports_definitions_and_calls():
    s = structure(PY, "Python")
    assert s.error == ""
    imports = {(i.module, i.name, i.local, i.level, i.top_level) for i in s.imports}
    assert ("os", None, "os", 0, True) in imports and ("os.path", None, "os.path", 0, True) in imports
    assert ("numpy", None, "np", 0, True) in imports
    assert ("", "sibling", "sibling", 1, True) in imports
    assert ("models", "Model", "M", 1, True) in imports and ("models", "Other", "Other", 1, True) in imports
    assert ("json", None, "json", 0, False) in imports
    defs = {(d.name, d.kind, d.start, d.end, d.parent) for d in s.definitions}
    assert ("top", "function", 8, 11, "") in defs  # the span starts at the decorator
    assert ("K", "class", 13, 17, "") in defs
    assert ("method", "method", 16, 17, "K") in defs
    assert ("CONST", "assignment", 19, 19, "") in defs and ("B", "assignment", 20, 20, "") in defs
    assert ("attr", "assignment", 14, 14, "") not in defs  # class attributes are not module-level
    calls = dict(s.calls)
    assert calls["helper"] == 11 and calls["np.sum"] == 11 and calls["os.path.join"] == 17


def test_python_that_does_not_parse_gives_a_reason():
    s = structure("def broken(:\n    pass\n", "Python")
    assert s.definitions == [] and "does not parse" in s.error


SOURCES = {
    "Java": ("import a.b.C;\nclass X { void f() { g(); } }\n", {"X", "f"}, ("a.b", "C")),
    "JavaScript": ("import {a as b} from './x';\nfunction f() { return g(); }\nclass K { m() {} }\n",
                   {"f", "K", "m"}, ("./x", "a")),
    "TypeScript": ("import {A} from './a';\ninterface I { x: number }\nexport function f(): void { h(); }\n",
                   {"I", "f"}, ("./a", "A")),
    "Go": ('package p\nimport al "example.com/x/y"\nfunc F() { al.G() }\ntype S struct{}\n', {"F", "S"},
           ("example.com/x/y", None)),
    "C": ('#include "util.h"\n#include <stdio.h>\nstruct P { int x; };\nint f(int a) { return g(a); }\n',
          {"P", "f"}, ("util.h", None)),
    "C++": ('#include "x.hpp"\nnamespace n { class C { int m() { return 1; } }; }\n', {"C", "m"}, ("x.hpp", None)),
    "Rust": ("use crate::a::b::{C, D as E};\nstruct S;\nimpl S { fn m(&self) { f(); } }\nfn g() {}\n",
             {"S", "m", "g"}, ("crate::a::b", "C")),
}  # fmt: skip


@pytest.mark.parametrize("language", sorted(SOURCES))
def test_tree_sitter_languages(language):
    text, names, first_import = SOURCES[language]
    s = structure(text, language)
    assert s.error == ""
    assert names <= {d.name for d in s.definitions}
    assert (s.imports[0].module, s.imports[0].name) == first_import
    assert s.calls or language in ("C++",)


def test_rust_use_alias_and_go_method_owner():
    s = structure("use crate::a::b::{C, D as E};\n", "Rust")
    assert [(i.name, i.local) for i in s.imports] == [("C", "C"), ("D", "E")]
    assert all(d.kind == "method" and d.parent == "K" for d in structure("class K { m() {} }", "JavaScript").definitions
               if d.name == "m")
    go = {d.name: (d.kind, d.parent) for d in structure("package p\ntype S struct{}\nfunc (s *S) M() {}\n", "Go").definitions}
    assert go == {"S": ("class", ""), "M": ("method", "S")}


def test_unsupported_language_has_a_reason():
    assert "no structure reader" in structure("x", "Haskell").error


def test_prefix_reader_handles_an_unfinished_program():
    prefix = "import os\nfrom .pkg import (\n    Thing,\n    other as o)\n\ndef f():\n    from .deep import Near\n    x = Thing(o.attr, [\n"
    view = read_prefix(prefix, "Python")
    assert view.cursor == 9
    got = {(i.module, i.name, i.local, i.level, i.top_level) for i in view.imports}
    assert got == {("os", None, "os", 0, True), ("pkg", "Thing", "Thing", 1, True), ("pkg", "other", "o", 1, True),
                   ("deep", "Near", "Near", 1, False)}
    found = uses(view, ["Thing", "o", "os", "Near"])
    assert found["Thing"] == [8] and found["o.attr"] == [8] and "Near" not in found and "os" not in found
