"""Beam runner and pipeline options for the local runner and Dataflow.

Local runs use the in-process FnApiRunner (Beam's default would try to
download the Prism runner, which fails offline); `workers > 1` selects its
multi-processing mode, or, for a pipeline whose heavy steps are pooled
(tamis.pipelines.pool) on a small enough input (`uses_pool`), keeps Beam in
process and gives the workers to the pool; batches waiting at a barrier are
spilled to `spill_dir` (tamis.pipelines.spill), since this runner would hold
them in memory. Dataflow runs take the usual Google Cloud options and
ship tamis to workers with the repository's setup.py.
"""

import os
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions

from tamis.config import RunnerConfig
from tamis.errors import ConfigError

_DATAFLOW_REQUIRED = ("project", "region", "temp_location")
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Below this much input the fork pool finished the web chain sooner than Beam's multi-processing mode with 2 workers
# (1.3x against 0.9x one worker at 10 MB; level at 100 MB); at 1 GB Beam's mode did (1.87x against 1.57x): it also
# runs the joins and shuffles in parallel, which the pool leaves to the one Beam worker (docs/scale.md).
POOL_BELOW_BYTES = 100_000_000


def uses_pool(runner: RunnerConfig, input_bytes: int) -> bool:
    """Whether a pooled pipeline's local run gives its workers to the fork pool rather than to Beam."""
    if runner.name != "local" or runner.workers == 1:
        return False
    if runner.local_parallelism == "auto":
        return input_bytes < POOL_BELOW_BYTES
    return runner.local_parallelism == "pool"


# Below this much input a local run links near-dups with one union-find: the star rounds' 33 extra Beam stages cost
# 0.4 s at 10 MB and 1-2 s at 100 MB (docs/scale.md), and the union-find's ~400 B per linked document comes to
# ~150 MB here (36k linked documents per GB of the grown web corpora). On Dataflow, and above this, star rounds keep
# every worker's state bounded.
UNION_FIND_BELOW_BYTES = 10_000_000_000


def clustering(runner: RunnerConfig, choice: str, input_bytes: int) -> str:
    """The near-dup clustering a run uses: `choice`, or for `auto` by runner and input size (same clusters either way)."""
    if choice != "auto":
        return choice
    return "union_find" if runner.name == "local" and input_bytes < UNION_FIND_BELOW_BYTES else "star_rounds"


def make(
    runner: RunnerConfig, dry_run: bool = False, spill_dir: str | None = None, progress_dir: str | None = None,
    pooled: bool = False,
) -> tuple[Any, PipelineOptions]:
    """Return (runner, options) for a pipeline; a local run writes per-worker progress to `progress_dir`.

    `pooled`: the pipeline's per-batch steps are pooled and the run should use the pool (`uses_pool`).
    """
    if runner.name == "local":
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        if pooled:
            opts = {"direct_num_workers": 1, "direct_running_mode": "in_memory", "tamis_pool_workers": runner.workers}
        else:
            mode = "multi_processing" if runner.workers > 1 else "in_memory"
            opts = {"direct_num_workers": runner.workers, "direct_running_mode": mode}
        # Beam's construction-time type inference re-parses the options once per transform
        # (~190 here): ~0.3 s of every local run's fixed cost. Dataflow runs and their dry runs keep it.
        opts["no_pipeline_type_check"] = True
        opts.update(runner.options)
        if runner.spill and spill_dir:
            opts["tamis_spill_dir"] = spill_dir
        if progress_dir:
            opts["tamis_progress_dir"] = progress_dir
        return FnApiRunner(), PipelineOptions.from_dictionary(opts)
    missing = [k for k in _DATAFLOW_REQUIRED if not runner.options.get(k)]
    if missing:
        raise ConfigError(
            f"The dataflow runner needs {', '.join(missing)}.",
            hint="pass --project, --region and --temp-location gs://BUCKET/tmp (or set runner.options)",
        )
    if not str(runner.options["temp_location"]).startswith("gs://"):
        raise ConfigError(f"Dataflow temp_location must be a gs:// path. Got {runner.options['temp_location']!r} instead.")
    opts: dict[str, Any] = {"runner": "DataflowRunner", "save_main_session": False, **runner.options}
    if not any(k in opts for k in ("setup_file", "sdk_container_image", "extra_packages")):
        setup = os.path.join(_REPO, "setup.py")
        if not os.path.exists(setup):
            raise ConfigError(
                "Cannot ship tamis to Dataflow workers: no setup.py beside the package.",
                hint="set runner.options.sdk_container_image or extra_packages",
            )
        opts["setup_file"] = setup
    if dry_run:
        opts["dry_run"] = "True"  # this option takes a value, not a bare flag
    return "DataflowRunner", PipelineOptions.from_dictionary(opts)
