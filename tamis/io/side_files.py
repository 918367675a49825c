"""Strict reading of small side files: YAML configs, and JSONL judgments, ground truth, benchmark items, labels.

Corpus inputs route a bad record to `errors/` and go on (tamis.io.readers);
a side file is trusted whole or not at all, so its first bad line stops the
command with the file, the line number and what to fix.
"""

import gzip
import json
import zlib
from collections.abc import Iterator

import yaml

from tamis.errors import ConfigError, InputError
from tamis.io import atomic


def jsonl_rows(path: str, label: str = "", hint: str = "") -> Iterator[tuple[int, dict]]:
    """(line number, JSON object) of every non-blank line of a JSONL or JSONL.gz file.

    `label` prefixes every message (e.g. "Benchmark 'gsm8k': ").
    """
    path = str(path)
    if not atomic.exists(path):
        raise InputError(f"{label}{path} does not exist.", hint=hint)
    with atomic.open_read(path) as raw:
        f = gzip.GzipFile(fileobj=raw) if path.lower().endswith(".gz") else raw
        n = 0
        try:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    raise InputError(f"{label}{path}:{n}: line {n} is not JSON ({e}).", hint=hint) from e
                if not isinstance(row, dict):
                    raise InputError(f"{label}{path}:{n}: line {n} is not a JSON object.", hint=hint)
                yield n, row
        except (OSError, EOFError, zlib.error) as e:
            raise InputError(f"{label}{path}: unreadable after line {n} ({e}).", hint=hint) from e


def read_yaml(path: str, what: str = "Config file") -> dict:
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
