"""The training image has no Beam: every tamis.train module imports with apache_beam made unimportable."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import importlib, pkgutil, sys

class NoBeam:
    def find_spec(self, name, path=None, target=None):
        if name == "apache_beam" or name.startswith("apache_beam."):
            raise ImportError(f"{name} imported by the training stage")

sys.meta_path.insert(0, NoBeam())
for name in sys.argv[1:]:  # modules that must fail (the guard's own check)
    importlib.import_module(name)
import tamis.train
names = ["tamis.train"] + [m.name for m in pkgutil.walk_packages(tamis.train.__path__, "tamis.train.")]
for name in names:
    importlib.import_module(name)
assert not any(m == "apache_beam" or m.startswith("apache_beam.") for m in sys.modules)
print(len(names))
"""


def test_every_train_module_imports_without_apache_beam():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) >= 6  # tamis.train and its modules


def test_the_finder_would_catch_beam():
    done = subprocess.run([sys.executable, "-c", SCRIPT, "tamis.pipelines.write"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "imported by the training stage" in done.stderr
