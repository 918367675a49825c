"""Run configs, composed from each part's own config model and loaded from YAML before any work starts.

Every field is data: the CLI flags override fields, the manifest records the
whole resolved config, and `--dry-run` prints it with the plan. The parts
below (io, filters, dedup, ...) own their models and never import this module.
"""

from typing import Any, Literal

from tamis import validation
from tamis.dedup.decontam import DecontamConfig
from tamis.dedup.exact import ExactDedupConfig
from tamis.dedup.neardup import NearDupConfig
from tamis.dedup.semdedup import SemDedupConfig
from tamis.errors import ConfigError
from tamis.filters.normalize import NormalizeConfig
from tamis.filters.registry import FilterSpec, build
from tamis.io.readers import InputConfig
from tamis.io.shards import ShardConfig
from tamis.io.side_files import read_yaml
from tamis.validation import Params


class RunnerConfig(Params):
    name: Literal["local", "dataflow"] = "local"
    workers: int = 1  # local: processes working in parallel (see local_parallelism)
    # curate on the local runner with workers > 1: `pool` keeps Beam in process and forks `workers` processes
    # for the per-batch work (tamis.pipelines.pool); `beam` runs Beam's multi_processing mode (what the other
    # pipelines always use); `auto` takes the pool below POOL_BELOW_BYTES of input, where it was faster
    local_parallelism: Literal["auto", "pool", "beam"] = "auto"
    batch_size: int = 1000  # documents per record batch (the Beam element)
    spill: bool = True  # local: batches waiting at a barrier go to RUN/_spill on disk, not memory
    options: dict[str, Any] = {}  # extra Beam pipeline options, e.g. project, region


class CurateConfig(Params):
    inputs: list[InputConfig]
    output: str
    normalize: NormalizeConfig = NormalizeConfig()
    exact_dedup: ExactDedupConfig = ExactDedupConfig()
    near_dedup: NearDupConfig = NearDupConfig()
    semantic_dedup: SemDedupConfig = SemDedupConfig()
    decontaminate: DecontamConfig = DecontamConfig()
    filters: list[FilterSpec] = []
    shards: ShardConfig = ShardConfig()
    runner: RunnerConfig = RunnerConfig()
    max_error_fraction: float = 0.01
    accept_truncated: bool = False  # finish a run whose inputs were cut short (their unread bytes are reported)
    seed: int = 0
    fail_after_shards: int | None = None  # fault injection for resume tests: stop after writing N shards

    def check(self) -> None:
        if not self.inputs:
            raise ConfigError("The config has no inputs.", hint="add at least one entry under 'inputs'")
        for i, item in enumerate(self.inputs):
            if not item.path:
                raise ConfigError(f"Input {i} has an empty 'path'.")
        if not 0.0 <= self.max_error_fraction <= 1.0:
            raise ConfigError(
                f"The 'max_error_fraction' parameter must be in [0, 1]. Got {self.max_error_fraction} instead."
            )
        for spec in self.filters:
            build(spec.name, spec.params)  # refuse unknown names and bad params now, not mid-run


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
    return validation.parse(CurateConfig, raw, owner="config")
