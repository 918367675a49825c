"""Runs shared by the report, inspect and diff tests (imported as a top-level module, like pipeline_fixtures).

Each run is made once per test session, whichever test module asks first: the demo run (`tamis demo`, which
also writes its report) and the same demo data curated with two thresholds moved (for `tamis diff`).
"""

import contextlib
import io
import os
from pathlib import Path

import yaml

from tamis import cli
from tamis.cli.demo import demo_dir

_RUNS: dict[str, tuple[Path, str]] = {}


def _main(argv: list[str]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(argv) == 0
    return out.getvalue()


def demo_run(tmp_path_factory) -> tuple[Path, str]:
    """(run directory, what `tamis demo` printed) of the demo run."""
    if "demo" not in _RUNS:
        run = tmp_path_factory.mktemp("report") / "demo-run"
        _RUNS["demo"] = (run, _main(["demo", "--output", str(run)]))
    return _RUNS["demo"]


def moved_threshold_run(tmp_path_factory) -> Path:
    """The demo data curated with langid's min_confidence at 0.9 (demo: 0.65) and C4's min_num_sentences at 3 (5)."""
    if "moved" not in _RUNS:
        folder = tmp_path_factory.mktemp("report-moved")
        raw = yaml.safe_load(Path(demo_dir(), "config.yaml").read_text())
        for item in raw["inputs"]:
            item["path"] = os.path.join(demo_dir(), item["path"])
        for spec in raw["filters"]:
            if spec["name"] == "langid":
                spec["params"]["min_confidence"] = 0.9
            if spec["name"] == "c4_quality":
                spec["params"] = {"min_num_sentences": 3}
        raw["output"] = str(folder / "run")
        (folder / "config.yaml").write_text(yaml.safe_dump(raw))
        _RUNS["moved"] = (folder / "run", _main(["curate", str(folder / "config.yaml"), "--json"]))
    return _RUNS["moved"][0]
