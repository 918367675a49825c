"""Structure of Java, JavaScript, TypeScript, Go, C, C++ and Rust files with tree-sitter grammars.

Grammars come from the tree-sitter project's own PyPI wheels (`tree-sitter-java`, ...),
which ship compiled parsers (`tree-sitter-language-pack` 1.x would fetch its parsers
from the network on first use, which tamis never does at run time). One table per
language says which nodes are definitions, imports and calls; everything else is generic.
"""

import functools
import importlib
import logging

from tamis.code.structure import Definition, FileStructure, Import
from tamis.errors import ResourceError

log = logging.getLogger(__name__)

# code_lang name -> (module, function returning the language pointer)
GRAMMARS = {
    "Java": ("tree_sitter_java", "language"),
    "JavaScript": ("tree_sitter_javascript", "language"),
    "TypeScript": ("tree_sitter_typescript", "language_typescript"),
    "TSX": ("tree_sitter_typescript", "language_tsx"),
    "Go": ("tree_sitter_go", "language"),
    "C": ("tree_sitter_c", "language"),
    "C++": ("tree_sitter_cpp", "language"),
    "Rust": ("tree_sitter_rust", "language"),
}
_CLASSES = {
    "class_declaration", "interface_declaration", "enum_declaration", "record_declaration", "class_specifier",
    "struct_specifier", "enum_specifier", "union_specifier", "struct_item", "enum_item", "trait_item", "union_item",
    "abstract_class_declaration", "type_spec", "type_alias_declaration", "mod_item",
}  # fmt: skip
_FUNCTIONS = {
    "function_declaration", "generator_function_declaration", "method_declaration", "constructor_declaration",
    "method_definition", "function_definition", "function_item", "macro_definition",
}  # fmt: skip
_VALUES = {"variable_declarator", "const_spec", "var_spec", "const_item", "static_item", "type_item", "type_definition"}
_CONTAINERS = {"impl_item"}  # methods inside, but not a definition of their own name
_IMPORTS = {"import_statement", "import_declaration", "import_spec", "preproc_include", "use_declaration"}
_CALLS = {"call_expression", "method_invocation", "new_expression", "object_creation_expression"}


def grammar_name(language: str, path: str) -> str:
    return "TSX" if language == "TypeScript" and path.lower().endswith(".tsx") else language


@functools.cache
def parser(language: str):
    """A tree-sitter Parser for a GRAMMARS key; ResourceError when no grammar is installed."""
    import tree_sitter

    module_name, func = GRAMMARS[language]
    try:
        lang = tree_sitter.Language(getattr(importlib.import_module(module_name), func)())
    except ImportError:
        raise ResourceError(
            f"No tree-sitter grammar for {language} is installed.", hint=f"pip install {module_name.replace('_', '-')}"
        ) from None
    return tree_sitter.Parser(lang)


def structure(text: str, language: str, path: str = "") -> FileStructure:
    try:
        tree = parser(grammar_name(language, path)).parse(text.encode("utf-8"))
    except ResourceError as e:
        return FileStructure(error=str(e))
    out = FileStructure()
    if tree.root_node.has_error:
        out.error = f"{language} parse has syntax errors; structure is partial"
    _walk(tree.root_node, out, "", language)
    out.imports.sort(key=lambda i: i.line)
    return out


def _text(node) -> str:
    return node.text.decode("utf-8", "replace") if node is not None else ""


def _name(node) -> str:
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    decl = node.child_by_field_name("declarator")  # C/C++: function_definition -> function_declarator -> name
    while decl is not None and decl.type not in ("identifier", "field_identifier", "type_identifier"):
        if decl.type in ("qualified_identifier",):
            inner = decl.child_by_field_name("name")
            return _text(inner) if inner is not None else _text(decl)
        decl = decl.child_by_field_name("declarator")
    return _text(decl)


def _walk(node, out: FileStructure, parent: str, language: str, depth: int = 0) -> None:
    for child in node.named_children:
        t = child.type
        start, end = child.start_point[0] + 1, child.end_point[0] + 1
        if t in _IMPORTS:
            out.imports.extend(_imports(child, language))
            continue
        if t in _CALLS:
            callee = child.child_by_field_name("function") or child.child_by_field_name("name")
            callee = callee or child.child_by_field_name("constructor") or child.child_by_field_name("type")
            if callee is not None:
                out.calls.append((_text(callee).replace("::", ".").replace("->", "."), start))
        if t in _CLASSES and child.child_by_field_name("name") is not None:
            name = _name(child)
            if t != "struct_specifier" or child.child_by_field_name("body") is not None:
                out.definitions.append(Definition(name, "class", start, end, ""))
            _walk(child, out, name, language, depth + 1)
            continue
        if t in _CONTAINERS:
            _walk(child, out, _text(child.child_by_field_name("type")), language, depth + 1)
            continue
        if t in _FUNCTIONS:
            name = _name(child)
            owner = parent
            if t == "method_declaration" and language == "Go":  # func (s *S) M(): a method of S
                owner = next((_text(n) for n in _descendants(child.child_by_field_name("receiver"), "type_identifier")), "")
            if name:
                out.definitions.append(Definition(name, "method" if owner else "function", start, end, owner))
            _walk(child, out, parent, language, depth + 1)
            continue
        if t in _VALUES and depth <= 2 and not parent:
            name = _name(child)
            if name and _is_module_level(child):
                out.definitions.append(Definition(name, "assignment", start, end, ""))
        _walk(child, out, parent, language, depth + 1)


def _is_module_level(node) -> bool:
    """A value declared outside any function body (top level, export, or a declaration list)."""
    p = node.parent
    while p is not None:
        if p.type in _FUNCTIONS or p.type in ("statement_block", "block", "compound_statement"):
            return False
        p = p.parent
    return True


def _imports(node, language: str) -> list[Import]:
    line = node.start_point[0] + 1
    t = node.type
    if t == "preproc_include":  # C/C++: "dir/x.h" (repository-local); <x.h> system headers are left out
        path = node.child_by_field_name("path")
        if path is None or path.type == "system_lib_string":
            return []
        target = _text(path).strip('"')
        return [Import(target, None, target, 0, line)]
    if t == "import_spec":  # Go
        path = _text(node.child_by_field_name("path")).strip('"`')
        alias = node.child_by_field_name("name")
        return [Import(path, None, _text(alias) if alias is not None else path.rsplit("/", 1)[-1], 0, line)]
    if t == "import_declaration" and language == "Go":
        return [i for spec in _descendants(node, "import_spec") for i in _imports(spec, language)]
    if t == "import_declaration":  # Java: import a.b.C; import a.b.*; import static a.b.C.m;
        body = _text(node).removeprefix("import").strip().rstrip(";").strip()
        body = body.removeprefix("static ").strip()
        module, _, name = body.rpartition(".")
        return [Import(module, name, name, 0, line)]
    if t == "import_statement":  # JS/TS
        source = _text(node.child_by_field_name("source")).strip("'\"`")
        found = []
        for spec in _descendants(node, "import_specifier"):
            name, alias = spec.child_by_field_name("name"), spec.child_by_field_name("alias")
            found.append(Import(source, _text(name), _text(alias or name), 0, line))
        for clause in _descendants(node, "import_clause"):
            for c in clause.named_children:
                if c.type == "identifier":
                    found.append(Import(source, "default", _text(c), 0, line))
                elif c.type == "namespace_import":
                    found.append(Import(source, None, _text(c.named_children[0]) if c.named_children else "", 0, line))
        return found or [Import(source, None, "", 0, line)]
    if t == "use_declaration":  # Rust: use crate::a::{B, C as D};
        arg = _text(node.child_by_field_name("argument"))
        return _rust_uses(" ".join(arg.split()).replace(":: ", "::").replace(" ::", "::"), line)
    return []


def _rust_uses(arg: str, line: int) -> list[Import]:
    arg = arg.strip()
    if "{" in arg:
        head, _, rest = arg.partition("{")
        out = []
        for item in _split_top(rest[: rest.rfind("}")]):
            out.extend(_rust_uses(head + item.strip(), line))
        return out
    path, _, alias = arg.partition(" as ")
    module, _, name = path.strip().rpartition("::")
    return [Import(module, name, alias or name, 0, line)]


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += (ch == "{") - (ch == "}")
        cur += ch
    return [p for p in (*parts, cur) if p]


def _descendants(node, kind: str):
    stack = [node]
    while stack:
        n = stack.pop()
        if n.type == kind:
            yield n
            continue
        stack.extend(reversed(n.named_children))
