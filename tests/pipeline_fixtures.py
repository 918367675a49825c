"""Small curate corpora and configs shared by the pipeline tests (imported as a top-level module, like bm25_fixtures)."""

import gzip
import hashlib
import json
from pathlib import Path

from tamis import config


def write_jsonl(path: Path, rows, compress: bool = False) -> Path:
    data = b"".join(json.dumps(r).encode() + b"\n" for r in rows)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def corpus(tmp_path: Path, n_files: int = 3, per_file: int = 40) -> Path:
    """Several input files with cross-file exact duplicates, one bad line and one empty text each."""
    src = tmp_path / "in"
    src.mkdir()
    for f in range(n_files):
        rows = [{"id": f"f{f}-{i:03d}", "text": f"Document {i} of file {f}. " + "Some words here. " * (i % 7 + 1)}
                for i in range(per_file)]
        rows.append({"id": f"f{f}-dup", "text": "The same text in every file.\n\n\n  "})
        rows.append({"id": f"f{f}-empty", "text": "   \n "})
        write_jsonl(src / f"part{f}.jsonl", rows)
        with open(src / f"part{f}.jsonl", "ab") as fh:
            fh.write(b'{"id": "broken", "text": \n')
    return src


def make_cfg(src: Path, out: Path, **over) -> config.CurateConfig:
    raw = {
        "inputs": [{"path": str(src / "*.jsonl")}],
        "output": str(out),
        "runner": {"batch_size": 16},
        "shards": {"target_bytes": 2000},
        "max_error_fraction": 0.05,
    }
    raw.update(over)
    return config.parse(raw)


def digests(run: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.glob("*/*.parquet"))
    }
