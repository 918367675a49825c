"""Run configuration as dataclasses, loaded from YAML and validated before any work starts.

Every field is data: the CLI flags override fields, the manifest records the
whole resolved config, and `--dry-run` prints it with the plan.
"""

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from tamis.errors import ConfigError
from tamis.filters.registry import from_dict

InputFormat = Literal["auto", "jsonl", "parquet", "warc", "text"]


@dataclass
class InputConfig:
    """One input: a path or glob (local or gs://) and how to read its records."""

    path: str
    format: InputFormat = "auto"
    text_field: str = "text"
    id_field: str = "id"
    extractor: str = "trafilatura"  # HTML→text for WARC records; see tamis.io.html

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("An input has an empty 'path'.")


@dataclass
class NormalizeConfig:
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    whitespace: bool = True  # collapse runs of spaces/tabs, trim lines, at most one blank line
    fix_control: bool = True  # drop control characters other than newline and tab


@dataclass
class ExactDedupConfig:
    enabled: bool = True
    # C4-style: drop repeated 3-sentence spans across documents (keeps the first by id).
    spans: bool = False
    span_sentences: int = 3


@dataclass
class FilterSpec:
    name: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ShardConfig:
    target_bytes: int = 128 * 1024 * 1024  # uncompressed text bytes per shard
    compression: Literal["zstd", "snappy", "gzip", "none"] = "zstd"

    def validate(self) -> None:
        if self.target_bytes <= 0:
            raise ConfigError(f"The 'target_bytes' parameter of shards must be > 0. Got {self.target_bytes} instead.")


@dataclass
class RunnerConfig:
    name: Literal["local", "dataflow"] = "local"
    workers: int = 1  # local: >1 runs Beam's multi_processing mode
    batch_size: int = 1000  # documents per record batch (the Beam element)
    options: dict[str, Any] = field(default_factory=dict)  # extra Beam pipeline options, e.g. project, region


@dataclass
class CurateConfig:
    inputs: list[InputConfig]
    output: str
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    filters: list[FilterSpec] = field(default_factory=list)
    shards: ShardConfig = field(default_factory=ShardConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    max_error_fraction: float = 0.01
    seed: int = 0
    fail_after_shards: int | None = None  # fault injection for resume tests: stop after writing N shards

    def validate(self) -> None:
        if not self.inputs:
            raise ConfigError("The config has no inputs.", hint="add at least one entry under 'inputs'")
        if not 0.0 <= self.max_error_fraction <= 1.0:
            raise ConfigError(
                f"The 'max_error_fraction' parameter must be in [0, 1]. Got {self.max_error_fraction} instead."
            )
        from tamis.filters.registry import build

        for spec in self.filters:
            build(spec.name, spec.params)  # refuse unknown names and bad params now, not mid-run

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load(path: str, overrides: dict[str, Any] | None = None) -> CurateConfig:
    """Read a YAML config; `overrides` maps dotted field paths (runner.workers) to values."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"Config file {path} does not exist.") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"Config file {path} is not valid YAML: {e}") from e
    return parse(raw, overrides)


def parse(raw: dict[str, Any], overrides: dict[str, Any] | None = None) -> CurateConfig:
    if not isinstance(raw, dict):
        raise ConfigError("A config must be a YAML mapping.")
    raw = dict(raw)
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return from_dict(CurateConfig, raw, owner="config")
