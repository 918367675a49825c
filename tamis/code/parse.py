"""One entry point for a file's structure, whatever its language: `ast` for Python, tree-sitter for the rest."""

from tamis.code import treesitter
from tamis.code.structure import FileStructure, python_structure


def structure(text: str, language: str, path: str = "") -> FileStructure:
    """Structure of one file in `language` (a code_lang name); unsupported languages give a reason."""
    if language == "Python":
        return python_structure(text)
    if language in treesitter.GRAMMARS:
        return treesitter.structure(text, language, path)
    return FileStructure(error=f"no structure reader for language {language or 'unknown'!r}")
