# Shim for Dataflow's --setup_file, which stages workers with `setup.py sdist`; metadata lives in pyproject.toml.
from setuptools import setup

setup()
