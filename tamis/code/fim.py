"""Fill-in-the-middle training samples from code files, with the file's cross-file context prepended.

A file is cut into prefix, middle and suffix (prefix + middle + suffix is the file, exactly). The middle
is picked in one of three ways, drawn per sample with `span_weights`:
- `chars`: two uniform random character positions (Bavarian et al. 2022);
- `lines`: whole lines;
- `ast`: one syntax node: an expression, a statement, or a function body (SynthCoder's choice), from
  `ast` for Python and tree-sitter for other languages; a file that does not parse falls back to `lines`.
The sample is written in PSM order (prefix, suffix, middle) or, with probability `spm_rate`, SPM
(suffix, prefix, middle), between configurable sentinel tokens. Every random choice comes from a
generator seeded by a hash of (seed, document id), so a sample does not depend on order or workers.
"""

import ast
import hashlib
from dataclasses import dataclass

import numpy as np

from tamis.errors import ConfigError
from tamis.validation import Params

KIND = "fim-samples"  # the manifest kind of a `tamis code fim` output
FORMAT_VERSION = 1

SPANS = ("chars", "lines", "ast")


class FimConfig(Params):
    fim_rate: float = 0.9  # files made into FIM samples; the others stay left-to-right
    spm_rate: float = 0.5
    span_weights: dict[str, float] = {"chars": 0.2, "lines": 0.3, "ast": 0.5}
    prefix_token: str = "<fim_prefix>"
    suffix_token: str = "<fim_suffix>"
    middle_token: str = "<fim_middle>"
    max_middle_chars: int = 2000  # AST nodes longer than this are not chosen
    context_budget: int = 1024  # tokens of cross-file context before the sample; 0: none
    seed: int = 0

    def check(self) -> None:
        for name in ("fim_rate", "spm_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"The {name!r} parameter of fim must be in [0, 1]. Got {getattr(self, name)} instead.")
        unknown = sorted(set(self.span_weights) - set(SPANS))
        if unknown or not self.span_weights or any(w < 0 for w in self.span_weights.values()) or not sum(
            self.span_weights.values()
        ):
            raise ConfigError(
                f"The 'span_weights' parameter of fim must map some of {list(SPANS)} to weights >= 0 with a "
                f"positive sum. Got {self.span_weights!r} instead."
            )
        tokens = [self.prefix_token, self.suffix_token, self.middle_token]
        if len(set(tokens)) != 3 or not all(tokens):
            raise ConfigError(f"The sentinel tokens of fim must be three different non-empty strings. Got {tokens}.")
        if self.max_middle_chars < 1 or self.context_budget < 0:
            raise ConfigError("fim needs max_middle_chars >= 1 and context_budget >= 0.")


@dataclass
class FimSample:
    prefix: str
    middle: str
    suffix: str
    span: str  # chars | lines | ast (or "none" for a left-to-right sample)
    node: str  # the AST node type of an ast span, else ""
    order: str  # psm | spm | none

    def format(self, config: FimConfig, context: str = "") -> str:
        c = config
        if self.order == "none":
            return context + self.prefix + self.middle + self.suffix
        if self.order == "spm":
            return f"{context}{c.suffix_token}{self.suffix}{c.prefix_token}{self.prefix}{c.middle_token}{self.middle}"
        return f"{context}{c.prefix_token}{self.prefix}{c.suffix_token}{self.suffix}{c.middle_token}{self.middle}"


def rng_for(seed: int, doc_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def make_sample(doc_id: str, text: str, language: str, config: FimConfig) -> FimSample:
    """One sample of a file; the choices depend only on (config.seed, doc_id) and the text."""
    rng = rng_for(config.seed, doc_id)
    if rng.random() >= config.fim_rate or not text:
        return FimSample(text, "", "", "none", "", "none")
    names = [s for s in SPANS if config.span_weights.get(s, 0) > 0]
    weights = np.array([config.span_weights[s] for s in names], np.float64)
    span = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    order = "spm" if rng.random() < config.spm_rate else "psm"
    node = ""
    if span == "ast":
        found = ast_spans(text, language, config.max_middle_chars)
        if found:
            start, end, node = found[int(rng.integers(len(found)))]
        else:
            span = "lines"
    if span == "lines":
        starts = line_starts(text)  # at least [0, len(text)]
        a, b = sorted(int(x) for x in rng.choice(len(starts), size=2, replace=False))
        start, end = starts[a], starts[b]
    elif span == "chars":
        start, end = sorted(int(x) for x in rng.integers(0, len(text) + 1, size=2))
    return FimSample(text[:start], text[start:end], text[end:], span, node, order)


def line_starts(text: str) -> list[int]:
    """Character offsets where lines start, and the end of the text when it ends without a newline."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n" and i + 1 < len(text)]
    return starts + [len(text)]


# --- AST-aligned spans ------------------------------------------------------------------------------------------


def ast_spans(text: str, language: str, max_chars: int) -> list[tuple[int, int, str]]:
    """(start, end, node type) character spans of whole syntax nodes; [] when the file does not parse."""
    if language == "Python":
        return _python_spans(text, max_chars)
    from tamis.code import treesitter

    if language in treesitter.GRAMMARS:
        return _treesitter_spans(text, language, max_chars)
    return []


def _python_spans(text: str, max_chars: int) -> list[tuple[int, int, str]]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def char(lineno: int, col: int) -> int:  # ast columns count UTF-8 bytes
        line = lines[lineno - 1] if lineno - 1 < len(lines) else ""
        return offsets[lineno - 1] + len(line.encode("utf-8")[:col].decode("utf-8", "ignore"))

    found: list[tuple[int, int, str]] = []
    for node in _walk_spannable(tree):
        if isinstance(node, ast.expr | ast.stmt) and getattr(node, "end_lineno", None) is not None:
            start, end = char(node.lineno, node.col_offset), char(node.end_lineno, node.end_col_offset)
            if isinstance(node, ast.stmt) and getattr(node, "decorator_list", None):
                continue  # a decorated definition's node starts after its decorators: not a whole statement
            size = end - start
            if 0 < size <= max_chars and not (isinstance(node, ast.Name | ast.Constant) and size <= 3):
                found.append((start, end, type(node).__name__))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first, last = node.body[0], node.body[-1]
            start, end = char(first.lineno, first.col_offset), char(last.end_lineno, last.end_col_offset)
            if 0 < end - start <= max_chars:
                found.append((start, end, "function_body"))
    return sorted(set(found))


# Nodes whose source span is no expression of its own: a slice (`1:2`), a starred argument, and the
# pieces of an f-string (Python 3.11 gives them the whole string's position).
_NOT_ALONE = (ast.Slice, ast.Starred, ast.FormattedValue)


def _walk_spannable(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, _NOT_ALONE):
            continue
        yield node
        if not isinstance(node, ast.JoinedStr):
            stack.extend(ast.iter_child_nodes(node))


def _treesitter_spans(text: str, language: str, max_chars: int) -> list[tuple[int, int, str]]:
    from tamis.code import treesitter

    data = text.encode("utf-8")
    try:
        tree = treesitter.parser(language).parse(data)
    except Exception:  # no grammar installed
        return []
    if tree.root_node.has_error:
        return []
    char_at = np.cumsum([0] + [len(ch.encode("utf-8")) for ch in text])
    byte_to_char = {int(b): i for i, b in enumerate(char_at)}
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        t = node.type
        wanted = t.endswith(("_statement", "_expression", "_declaration", "_definition", "_item")) or t in (
            "block", "statement_block", "compound_statement"
        )
        if not wanted or node.parent is None:
            continue
        start, end = byte_to_char.get(node.start_byte), byte_to_char.get(node.end_byte)
        if start is not None and end is not None and 0 < end - start <= max_chars:
            body = t in ("block", "statement_block", "compound_statement") and node.parent.type in treesitter._FUNCTIONS
            found.append((start, end, "function_body" if body else t))
    return sorted(set(found))


def repo_and_path(meta: str | None, source: str, doc_id: str) -> tuple[str, str]:
    """Where a curated code record comes from: `repo`/`repo_name`/`repository` and `path` in its meta JSON
    (a curate run's shard keeps the original meta as a JSON string under `meta`); the input file is the
    repository and the id the path when they are missing."""
    import json

    fields: dict = {}
    try:
        value = json.loads(meta) if meta else {}
    except ValueError:
        value = {}
    if isinstance(value, dict):
        inner = value.get("meta")
        if isinstance(inner, str):
            try:
                inner = json.loads(inner)
            except ValueError:
                inner = None
        fields = {**value, **(inner if isinstance(inner, dict) else {})}
        source = fields.get("source") if isinstance(fields.get("source"), str) else source
    repo = next((fields[k] for k in ("repo", "repo_name", "repository") if isinstance(fields.get(k), str)), source)
    path = next((fields[k] for k in ("path", "file_path") if isinstance(fields.get(k), str)), doc_id)
    return repo, path
