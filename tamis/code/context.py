"""Context for a cursor from a loaded code index: what `tamis code context`, `tamis search --code-index`
and the service's `POST /v1/code-context` call."""

from tamis.code.retriever import Context, ContextRetriever, Cursor, RetrieverConfig
from tamis.code.store import CodeIndex


def code_context(
    index: CodeIndex,
    path: str,
    line: int,
    budget: int = 2048,
    repo: str | None = None,
    prefix: str | None = None,
    config: RetrieverConfig | None = None,
) -> Context:
    """Snippets from the other files of `path`'s repository for a cursor before 1-based `line`, within
    `budget` tokens. `prefix` is the text before the cursor when the editor's copy differs from the
    indexed one (a file not in the index is then allowed too)."""
    repo_index, rel = index.repo_for(path, repo)
    return ContextRetriever(repo_index, config).context(Cursor(rel, line, prefix), budget)
