"""The service's limits and request bodies: pydantic models (tamis.validation.Params), strict, extra keys refused.

Every limit a request can hit is a field constraint of its body model, so the
OpenAPI schema states it (a client or a fuzzer sees maxLength, maximum,
maxItems) and FastAPI refuses a request over it with 422 before any work.
The body size (413) and concurrency (429) limits act earlier, in
tamis.serve.guard. The models are made per service from its Limits.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from tamis.errors import ConfigError
from tamis.validation import Params

Retriever = Literal["bm25", "dense", "hybrid"]
NAME_CHARS = 256  # index, repository and filter-field names


class Limits(Params):
    """What one request may ask for, and how much the service takes on at once."""

    max_k: int = 1000  # hits per query
    max_batch: int = 256  # queries per request
    max_query_chars: int = 8192  # characters per query
    max_body_bytes: int = 1 << 20  # request body (413 above)
    max_filter_fields: int = 16
    max_filter_values: int = 1024  # values per filter field
    max_inflight: int = 16  # requests under /v1/ being answered at once; more get 429 with Retry-After
    threads: int = 4  # code-context requests computed at once (searches run on one thread per index)
    retry_after_s: int = 1  # the Retry-After of a 429
    max_budget: int = 32768  # code-context tokens
    max_path_chars: int = 4096  # code-context file path (a key in the index, never opened)
    max_prefix_chars: int = 512 * 1024  # code-context unsaved text before the cursor

    def check(self) -> None:
        for name, value in self:
            least = 0 if name == "retry_after_s" else 1
            if value < least:
                raise ConfigError(f"The {name!r} parameter of the service limits must be >= {least}. Got {value} instead.")
        if self.max_k > 1000:
            raise ConfigError(f"The 'max_k' parameter of the service limits must be <= 1000. Got {self.max_k} instead.")
        if self.max_body_bytes > 1 << 20:
            raise ConfigError("The 'max_body_bytes' parameter of the service limits must be <= 1048576 (1 MiB). "
                              f"Got {self.max_body_bytes} instead.")


class Body(Params):
    """A request body: a Params whose validation errors reach FastAPI as they are, so the 422 names the exact
    field (`queries.3`), which tamis.serve.app words like a config error."""

    def __init__(self, **values: Any):
        BaseModel.__init__(self, **values)


def request_models(limits: Limits) -> tuple[type[Params], type[Params]]:
    """(SearchRequest, CodeContextRequest) with this service's limits in their schemas."""
    QueryText = Annotated[str, Field(min_length=1, max_length=limits.max_query_chars)]
    Name = Annotated[str, Field(min_length=1, max_length=NAME_CHARS)]
    Values = str | Annotated[list[Annotated[str, Field(max_length=limits.max_query_chars)]],
                             Field(min_length=1, max_length=limits.max_filter_values)]

    class SearchRequest(Body):
        """One query (`query`) or a batch (`queries`); hits come back as one list, or one list per query."""

        query: QueryText | None = None
        queries: Annotated[list[QueryText], Field(min_length=1, max_length=limits.max_batch)] | None = None
        k: Annotated[int, Field(ge=1, le=limits.max_k)] = 10
        retriever: Retriever | None = None
        index: Name | None = None  # a served index's folder name
        filter: Annotated[dict[Name, Values], Field(min_length=1, max_length=limits.max_filter_fields)] | None = None

        def check(self) -> None:
            if (self.query is None) == (self.queries is None):
                raise ConfigError("A search request takes exactly one of 'query' (a string) and 'queries' (a list). "
                                  f"Got {'both' if self.query is not None else 'neither'}.")

        def texts(self) -> list[str]:
            return [self.query] if self.query is not None else list(self.queries)

        def where(self) -> dict[str, list[str]] | None:
            if not self.filter:
                return None
            return {f: [v] if isinstance(v, str) else list(v) for f, v in self.filter.items()}

    class CodeContextRequest(Body):
        """Cross-file context for a cursor before 1-based `line` of `path` (a file of the indexed repository)."""

        path: Annotated[str, Field(min_length=1, max_length=limits.max_path_chars)]
        line: Annotated[int, Field(ge=1, le=10_000_000)]
        budget: Annotated[int, Field(ge=0, le=limits.max_budget)] = 2048
        repo: Name | None = None
        prefix: Annotated[str, Field(max_length=limits.max_prefix_chars)] | None = None
        index: Name | None = None

    return SearchRequest, CodeContextRequest


class Hit(Params):
    id: str
    score: float


class SearchResponse(Params):
    hits: list[Hit] | list[list[Hit]]


class ErrorResponse(Params):
    error: str
    detail: Any = None
