"""The ONNX Runtime backends: a local export of the model's transformer, optionally int8-quantized.

The export is made once per model (keyed by the sha256 of its weights) under
`$TAMIS_CACHE/onnx/` (default `~/.cache/tamis`), written to a temporary name
and renamed, with the sha256 of each exported file beside it; a cached export
whose bytes changed is refused and must be deleted. It needs the `onnx`
package (the `cpu` extra); running it needs only onnxruntime.

- `onnx`: the transformer exported with eager attention, then fused by
  onnxruntime's transformer optimizer (Attention, SkipLayerNorm, BiasGelu)
  for BERT-family models;
- `onnx-int8`: that graph with int8 dynamic quantization of every MatMul
  weight, per output channel (per-tensor scales lose too much: mean cosine
  0.93 to fp32 on Cranfield, against 0.995 per channel).

Pooling (mean, CLS or max over the attention mask) and normalization run in
numpy after the session, as the sentence-transformers modules would.
"""

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from tamis.errors import ConfigError, IntegrityError, ResourceError

log = logging.getLogger(__name__)

_POOLINGS = ("mean", "cls", "max")


def cache_dir() -> Path:
    return Path(os.environ.get("TAMIS_CACHE", Path.home() / ".cache" / "tamis")) / "onnx"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _modules_supported(path: Path) -> bool:
    modules = path / "modules.json"
    if not modules.is_file():
        return False
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(modules.read_text())]
    return kinds[:2] == ["Transformer", "Pooling"] and set(kinds[2:]) <= {"Normalize"}


def export(path: Path, sha256: str, quantize: bool) -> Path:
    """The ONNX file for the model at `path` (exported and cached on first use)."""
    folder = cache_dir() / sha256[:32]
    name = "model-int8.onnx" if quantize else "model.onnx"
    target, record = folder / name, folder / f"{name}.sha256"
    if target.is_file() and record.is_file():
        if _sha256(target) != record.read_text().strip():
            raise IntegrityError(f"the cached ONNX export {target} does not match its checksum",
                                 hint=f"delete {folder} to export again")
        return target
    try:
        import onnx  # noqa: F401  (torch's exporter and the quantizer need it)
    except ImportError as err:
        raise ResourceError("the onnx backends need the `onnx` package to export the model",
                            hint="pip install onnx (it is in tamis's cpu extra)") from err
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "model.onnx"
    if not base.is_file() or _sha256(base) != _read(folder / "model.onnx.sha256"):
        _export_fp32(path, base)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = folder / f".{name}.tmp-{os.getpid()}"
        log.info("quantizing %s to int8 (dynamic, per channel)", base)
        quantize_dynamic(str(base), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": 1})  # float, for fused ops shape inference cannot type
        _publish(tmp, target)
    return target


def _read(path: Path) -> str:
    return path.read_text().strip() if path.is_file() else ""


def _publish(tmp: Path, target: Path) -> None:
    digest = _sha256(tmp)
    os.replace(tmp, target)
    record = target.with_name(target.name + ".sha256")
    tmp_record = record.with_name(f".{record.name}.tmp-{os.getpid()}")
    tmp_record.write_text(digest + "\n")
    os.replace(tmp_record, record)


def _export_fp32(path: Path, target: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    log.info("exporting %s to ONNX (once; cached in %s)", path, target.parent)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    names = list(tokenizer.model_input_names)
    sample = tokenizer(["an example sentence", "another, longer example sentence"], padding=True, return_tensors="pt")

    class _Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    raw = target.with_name(f".raw.tmp-{os.getpid()}.onnx")
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    with torch.no_grad():
        torch.onnx.export(_Hidden(model), tuple(sample[n] for n in names), str(raw), dynamo=False,
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    if config.model_type == "bert":
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=config.num_attention_heads,
                                         hidden_size=config.hidden_size)
        fused.save_model_to_file(str(tmp))
        raw.unlink()
    else:
        os.replace(raw, tmp)
    _publish(tmp, target)


class OnnxEncoder:
    """Length-sorted batches through an ONNX Runtime session, pooled and normalized in numpy."""

    def __init__(self, path: Path, info, tokenizer, quantize: bool, device: str = "cpu"):
        import onnxruntime as ort
        import torch

        if not _modules_supported(path) or info.pooling not in _POOLINGS:
            raise ConfigError(
                f"The onnx backends support Transformer + Pooling ({'/'.join(_POOLINGS)}) + Normalize models; "
                f"{info.name} has pooling {info.pooling!r} or other modules.",
                hint="use backend torch or torch-bf16",
            )
        self.info, self.tokenizer = info, tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif device == "cuda":
            log.warning("onnxruntime has no CUDA provider here: the onnx backend runs on CPU")
        self.session = ort.InferenceSession(str(export(path, info.sha256, quantize)), options, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.info.dim), np.float32)
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                   max_length=self.info.max_seq_length, return_tensors="np")
            hidden = self.session.run(None, {n: batch[n].astype(np.int64) for n in self.inputs})[0]
            out[rows] = pool(hidden, batch["attention_mask"], self.info.pooling)
        return out


def pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence vectors from token states (batch, tokens, dim), as sentence-transformers' Pooling computes them."""
    if mode == "cls":
        return hidden[:, 0]
    m = mask[..., None].astype(np.float32)
    if mode == "max":
        return np.where(m > 0, hidden, -1e9).max(axis=1)
    return (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
