"""Shared pieces of the dense tests: one loaded encoder per session and the hand-written 12-document BEIR set."""

from pathlib import Path

import pyarrow as pa

from tamis.embeddings import Embedder
from tamis.eval.retrieval import load_beir

BEIR_TINY = Path(__file__).parent / "data" / "beir_tiny"
_EMBEDDER: list[Embedder] = []


def embedder() -> Embedder:
    """The packaged MiniLM on CPU, loaded once for every dense test (loading is the slow part)."""
    if not _EMBEDDER:
        _EMBEDDER.append(Embedder(device="cpu", batch_size=8))
    return _EMBEDDER[0]


def tiny_corpus() -> pa.Table:
    return load_beir(BEIR_TINY).corpus


def tiny_queries() -> list[str]:
    return list(load_beir(BEIR_TINY).queries.values())
