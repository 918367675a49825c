"""What a mixture is: its inputs, domains, weights, token budget, epoch caps and tokenizer, as validated config.

This is the part of `tamis mix CONFIG.yaml` that decides the output; how the
run is executed (the Beam runner) is added by tamis.pipelines.mix, which owns
the runner settings, so this model stays importable without Beam and below
tamis.config (which holds the curate config only).
"""

import re
from typing import Any, Literal

from tamis.errors import ConfigError
from tamis.io.shards import ShardConfig
from tamis.validation import Params

_SCORE = re.compile(r"^\s*(?P<col>[^\s<>=!]+)\s*(?P<op><=|>=|==|!=|<|>)\s*(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
MetaValue = str | int | float | bool


def parse_condition(text: str) -> tuple[str, str, float]:
    """`"quality.dclm >= 0.8"` -> ("quality.dclm", ">=", 0.8); a ConfigError quoting the text otherwise."""
    m = _SCORE.match(text)
    if not m:
        raise ConfigError(
            f"Score condition {text!r} is not of the form 'COLUMN OP NUMBER'.",
            hint="for example 'quality.dclm >= 0.8'; OP is one of < <= > >= == !=",
        )
    return m["col"], m["op"], float(m["num"])


def _as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


class DomainSpec(Params):
    """One domain. A document joins the first domain whose conditions all hold; one with none takes the rest.

    `source`: globs on the `source` column (the input file), any may match;
    `meta`: field (dotted path into the `meta` JSON) -> value, all must match (a string value is a glob);
    `score`: conditions on score columns such as `quality.dclm >= 0.8`, all must hold (a missing score fails).
    """

    name: str
    source: str | list[str] | None = None
    meta: dict[str, MetaValue] | None = None
    score: str | list[str] | None = None
    max_epochs: float | None = None  # overrides the mix's max_epochs for this domain

    @property
    def sources(self) -> list[str]:
        return _as_list(self.source)

    @property
    def scores(self) -> list[tuple[str, str, float]]:
        return [parse_condition(s) for s in _as_list(self.score)]

    @property
    def catch_all(self) -> bool:
        return not (self.sources or self.meta or _as_list(self.score))

    def check(self) -> None:
        if not self.name or not self.name.strip():
            raise ConfigError("A domain has an empty 'name'.")
        for text in _as_list(self.score):  # refuse a malformed condition now
            parse_condition(text)
        if self.max_epochs is not None and self.max_epochs <= 0:
            raise ConfigError(
                f"The 'max_epochs' parameter of domain {self.name!r} must be > 0. Got {self.max_epochs} instead."
            )


class WeightSpec(Params):
    """Exactly one way to weigh the domains; weights are normalized to token shares of the budget.

    `given`: domain -> weight; `alpha`: temperature scaling from domain sizes, weight ∝ tokens^alpha
    (1 keeps the natural distribution, 0 makes it uniform); `regmix`: a weights file written by
    `tamis mix regmix search`.
    """

    given: dict[str, float] | None = None
    alpha: float | None = None
    regmix: str | None = None

    @property
    def kind(self) -> str:
        return next(k for k in ("given", "alpha", "regmix") if getattr(self, k) is not None)

    def check(self) -> None:
        chosen = [k for k in ("given", "alpha", "regmix") if getattr(self, k) is not None]
        if len(chosen) != 1:
            raise ConfigError(
                f"weights must set exactly one of 'given', 'alpha', 'regmix'. Got {chosen or 'none'} instead."
            )
        if self.given is not None:
            bad = {k: v for k, v in self.given.items() if not v >= 0}
            if bad or not sum(self.given.values()) > 0:
                raise ConfigError(f"weights.given must be >= 0 and not all 0. Got {self.given} instead.")
        if self.alpha is not None and not 0 <= self.alpha <= 2:
            raise ConfigError(f"The 'alpha' parameter of weights must be in [0, 2]. Got {self.alpha} instead.")


class TokenizerSpec(Params):
    """How tokens are counted: a real tokenizer (`path`) or an approximation (`chars_per_token`), not both.

    `path` is a tokenizer.json, a folder holding one, or `all-MiniLM-L6-v2` for the copy
    shipped with the packaged embedding model.
    """

    path: str | None = None
    chars_per_token: float | None = None
    batch_size: int = 1000  # texts per tokenizer call

    def check(self) -> None:
        if (self.path is None) == (self.chars_per_token is None):
            raise ConfigError(
                "tokenizer must set exactly one of 'path' and 'chars_per_token'.",
                hint="path: a tokenizer.json (or all-MiniLM-L6-v2); chars_per_token: e.g. 4.0 to approximate",
            )
        if self.chars_per_token is not None and self.chars_per_token <= 0:
            raise ConfigError(
                f"The 'chars_per_token' parameter of tokenizer must be > 0. Got {self.chars_per_token} instead."
            )
        if self.batch_size <= 0:
            raise ConfigError(f"The 'batch_size' parameter of tokenizer must be > 0. Got {self.batch_size} instead.")


class ExportSpec(Params):
    """A tokenized export of the finished mix, in blend order (tamis.io.token_shards), into `output`
    (default: the mix's own `tokens/` folder, an artifact with its own manifest)."""

    tokens: bool = False
    output: str | None = None
    shard_tokens: int = 1 << 28

    def check(self) -> None:
        if self.shard_tokens <= 0:
            raise ConfigError(f"The 'shard_tokens' parameter of export must be > 0. Got {self.shard_tokens} instead.")


class MixSpec(Params):
    inputs: list[str]  # curate run directories
    output: str
    domains: list[DomainSpec]
    weights: WeightSpec
    budget_tokens: int
    tokenizer: TokenizerSpec
    max_epochs: float = 4.0  # a domain is repeated at most this many times (repeats lose value after ~4)
    seed: int = 0
    blend: Literal["tokens", "samples"] = "tokens"  # what the interleaving keeps on target in every prefix
    shards: ShardConfig = ShardConfig()
    export: ExportSpec = ExportSpec()

    def check(self) -> None:
        if self.export.tokens and self.tokenizer.path is None:
            raise ConfigError("export.tokens needs tokenizer.path: the export tokenizes with the tokenizer the budget "
                              "was counted with.", hint="set tokenizer.path, or drop export.tokens")
        if not self.inputs:
            raise ConfigError("The mix config has no inputs.", hint="list curate run directories under 'inputs'")
        if not self.domains:
            raise ConfigError("The mix config has no domains.", hint="add at least one entry under 'domains'")
        names = [d.name for d in self.domains]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"Domain names must be unique. Got {dup} more than once.")
        for d in self.domains[:-1]:
            if d.catch_all:
                raise ConfigError(
                    f"Domain {d.name!r} has no condition, so it takes every document; only the last domain may.",
                    hint="add source, meta or score conditions, or move it last",
                )
        if self.budget_tokens <= 0:
            raise ConfigError(f"The 'budget_tokens' parameter must be > 0. Got {self.budget_tokens} instead.")
        if self.max_epochs <= 0:
            raise ConfigError(f"The 'max_epochs' parameter must be > 0. Got {self.max_epochs} instead.")
        if self.weights.given is not None:
            check_names(self.weights.given, names, "weights.given")

    def epochs_cap(self) -> list[float]:
        return [d.max_epochs if d.max_epochs is not None else self.max_epochs for d in self.domains]


def check_names(weights: dict[str, Any], names: list[str], what: str) -> None:
    """Refuse weights that do not name exactly the configured domains."""
    missing = [n for n in names if n not in weights]
    extra = [n for n in weights if n not in names]
    if missing or extra:
        raise ConfigError(
            f"{what} must name exactly the domains {names}. Missing {missing}, unknown {extra}.",
            hint="give every domain a weight (0 leaves it out)",
        )
