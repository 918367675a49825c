"""The layout's promises that import-linter cannot see: pure parts import in a process without Beam."""

import pkgutil
import subprocess
import sys
import textwrap

import tamis

# Every part but the two that compose Beam (pipelines, cli).
PURE = ["config", "eval", "serve", "report", "retrievers", "train", "code", "indexes", "filters", "dedup", "mixers",
        "io", "embeddings", "schema", "errors", "validation"]


def _modules() -> list[str]:
    out = []
    for name in PURE:
        out.append(f"tamis.{name}")
        module = __import__(f"tamis.{name}", fromlist=["_"])
        if hasattr(module, "__path__"):
            out += [m.name for m in pkgutil.walk_packages(module.__path__, f"tamis.{name}.")]
    return out


NO_BEAM = textwrap.dedent(
    """
    import importlib, sys

    class NoBeam:
        def find_spec(self, name, path=None, target=None):
            if name == "apache_beam" or name.startswith("apache_beam."):
                raise ImportError("apache_beam is blocked in this process")
            return None

    sys.meta_path.insert(0, NoBeam())
    """
)


def _without_beam(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_BEAM + code], capture_output=True, text=True, timeout=300)


def test_every_pure_module_imports_without_apache_beam():
    modules = _modules()
    assert "tamis.io.readers" in modules and "tamis.filters.langid" in modules and "tamis.train" in modules
    done = _without_beam(f"for name in {modules!r}:\n    importlib.import_module(name)\nprint('imported')\n")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "imported" in done.stdout


def test_the_blocker_really_blocks_beam():
    done = _without_beam("import tamis.pipelines.curate\n")
    assert done.returncode != 0 and "is blocked" in done.stderr


def test_python_dash_m_tamis_prints_the_help():
    done = subprocess.run([sys.executable, "-m", "tamis", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "curate" in done.stdout and tamis.__version__
