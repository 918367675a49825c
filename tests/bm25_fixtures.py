"""A small real corpus for the BM25 tests: the 70 web documents plus 230 source files (300 documents)."""

import gzip
import json
from pathlib import Path

import pyarrow as pa


def real_corpus(shared_data: Path, code_docs: int = 230) -> pa.Table:
    rows = []
    for name in ("c4_paloma_sample.jsonl", "dolma_cc_sample.jsonl"):
        with open(shared_data / "curation" / "web_docs" / name, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    with gzip.open(shared_data / "curation" / "code" / "thrift_code.jsonl.gz", "rt", encoding="utf-8") as f:
        for line, _ in zip(f, range(code_docs), strict=False):
            rows.append(json.loads(line))
    return pa.table(
        {
            "id": [str(r["id"]) for r in rows],
            "text": [r["text"] for r in rows],
            "source": ["code" if "lang" in r else "web" for r in rows],
            "offset": list(range(len(rows))),
        }
    )


def queries_from(corpus: pa.Table, n: int = 25) -> list[str]:
    """Deterministic queries: a few words cut from every k-th document, plus a few fixed ones."""
    texts = corpus["text"].to_pylist()
    out = []
    for i in range(0, len(texts), max(1, len(texts) // n)):
        words = texts[i].split()
        out.append(" ".join(words[len(words) // 3 : len(words) // 3 + 5]))
    return out + ["apache license", "thrift transport protocol", "police bridge", "the of and"]
