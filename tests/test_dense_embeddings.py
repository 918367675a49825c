"""The encoder side of dense retrieval: chunk spans, identity, and the fast backends against fp32."""

import numpy as np
import pytest
from dense_fixtures import embedder

from tamis.embeddings import Embedder, chunk_spans, normalize, pooling_mode
from tamis.errors import ConfigError

TEXTS = ["Flutter of a swept wing at transonic speed was measured in the wind tunnel.",
         "Heat transfer to a blunt body in hypersonic flow is highest at the stagnation point.",
         "buckling"]


def test_spans_cover_the_text_in_full_windows_with_at_least_the_asked_overlap():
    tok = embedder().tokenizer
    text = " ".join(f"word{i}" for i in range(100))
    rows, starts, ends = chunk_spans(tok, [text, "", "short text"], window=20, overlap=5)
    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    n_tokens = len(offsets)
    pieces = [(s, e) for r, s, e in zip(rows, starts, ends, strict=True) if r == 0]
    assert len(pieces) == int(np.ceil((n_tokens - 5) / 15)) and pieces[0][0] == 0 and pieces[-1][1] == len(text)
    for (_, e1), (s2, _) in zip(pieces, pieces[1:], strict=False):
        assert s2 < e1  # consecutive chunks overlap
    for s, e in pieces:  # every window full, the last one too (it starts earlier instead of being a short tail)
        assert sum(s <= a and b <= e for a, b in offsets) == 20
    assert list(zip(rows[-2:], starts[-2:], ends[-2:], strict=True)) == [(1, 0, 0), (2, 0, 10)]
    with pytest.raises(ConfigError):
        chunk_spans(tok, ["x"], window=4, overlap=4)


def test_the_identity_says_what_vectors_depend_on():
    info = embedder().info
    assert info.dim == 384 and info.pooling == "mean" and info.normalize and info.max_seq_length == 256
    assert pooling_mode(embedder().path) == "mean" and len(info.sha256) == 64


def test_vectors_are_unit_length_and_empty_input_gives_no_rows():
    v = embedder().encode(TEXTS)
    assert v.dtype == np.float32 and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert embedder().encode([]).shape == (0, 384)
    assert np.array_equal(normalize(np.zeros((1, 3), np.float32)), np.zeros((1, 3), np.float32))


def test_an_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="backend"):
        Embedder(device="cpu", backend="tensorrt")


def test_bf16_backend_is_close_to_fp32():
    fast = Embedder(device="cpu", batch_size=8, backend="torch-bf16").encode(TEXTS)
    assert np.min(np.sum(fast * embedder().encode(TEXTS), axis=1)) > 0.995


def test_onnx_backends_export_once_and_stay_close_to_fp32(tmp_path, monkeypatch):
    pytest.importorskip("onnx")
    monkeypatch.setenv("TAMIS_CACHE", str(tmp_path))
    reference = embedder().encode(TEXTS)
    onnx = Embedder(device="cpu", batch_size=2, backend="onnx")
    assert np.min(np.sum(onnx.encode(TEXTS) * reference, axis=1)) > 0.9999
    int8 = Embedder(device="cpu", batch_size=2, backend="onnx-int8")
    assert np.min(np.sum(int8.encode(TEXTS) * reference, axis=1)) > 0.98
    exported = sorted(p.name for p in (tmp_path / "onnx").rglob("*.onnx"))
    assert exported == ["model-int8.onnx", "model.onnx"]
    from tamis.embeddings import onnx as onnx_module

    damaged = next((tmp_path / "onnx").rglob("model.onnx"))
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    from tamis.errors import IntegrityError

    with pytest.raises(IntegrityError, match="checksum"):
        onnx_module.export(embedder().path, embedder().info.sha256, quantize=False)
