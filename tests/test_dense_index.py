"""The dense index: build, save, load, refusals (other model, damaged files, bad specs), chunking, rescoring, GPU choice."""

import dataclasses
import logging
import shutil

import numpy as np
import pyarrow as pa
import pytest
from dense_fixtures import embedder, tiny_corpus, tiny_queries

from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.indexes import dense
from tamis.retrievers.dense import DenseRetriever


def build(root, documents=None, **config) -> DenseRetriever:
    dense.build(tiny_corpus() if documents is None else documents, str(root),
                dense.DenseConfig(device="cpu", **config), embedder())
    return DenseRetriever(dense.load(str(root)), embedder=embedder(), device="cpu")


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    root = tmp_path_factory.mktemp("flat") / "idx"
    return root, build(root)


def exact_ranking(retriever: DenseRetriever, query: str) -> list[str]:
    """Every document by the cosine of its best chunk, computed here from the stored vectors."""
    index = retriever.index
    sims = index.vectors(np.arange(index.n_vectors)) @ retriever.encode([query])[0]
    best: dict[str, float] = {}
    for row in np.argsort(-sims, kind="stable"):
        best.setdefault(index.ids[index.chunk_doc[row]], float(sims[row]))
    return list(best)


def test_flat_search_is_exact_cosine_over_every_document(flat):
    _, retriever = flat
    ids, scores = retriever.search(tiny_queries(), k=5)
    for q, got, s in zip(tiny_queries(), ids, scores, strict=True):
        assert got == exact_ranking(retriever, q)[:5]
        assert np.all(np.diff(s) <= 1e-6) and np.all(s <= 1.0 + 1e-5)
    assert ids[0][0] in {"d1", "d6"}  # "flutter of wings and panels"


def test_the_manifest_records_model_dimension_normalization_pooling_and_chunking(flat):
    root, retriever = flat
    found = retriever.index.manifest
    assert found["kind"] == "dense-index" and found["format_version"] == dense.FORMAT_VERSION
    model = found["model"]
    assert model["name"] == "all-MiniLM-L6-v2" and len(model["sha256"]) == 64 and model["dim"] == 384
    assert model["pooling"] == "mean" and model["normalize"] is True and model["backend"] == "torch"
    assert found["vectors"] == {"dim": 384, "model_dim": 384, "truncate_dim": 0, "dtype": "float16",
                                "normalized": True, "count": 12}
    assert found["chunking"]["window"] == 254 and found["chunking"]["overlap"] == 32
    assert found["index"]["code_bytes"] == 1536 and found["index"]["built_on"] == "cpu"
    assert {f["path"] for f in found["files"]} == {"index.faiss", *(f"shards/00000-00000/{f}" for f in dense.SHARD_FILES)}
    vectors = np.load(root / "shards/00000-00000/vectors.npy", allow_pickle=False)
    assert vectors.dtype == np.float16 and np.allclose(np.linalg.norm(vectors.astype(np.float32), axis=1), 1, atol=2e-3)


def test_a_query_encoder_of_another_model_is_refused(flat):
    _, retriever = flat
    other = dataclasses.replace(embedder().info, sha256="0" * 64, name="some-other-model")
    impostor = type("Impostor", (), {"info": other, "encode": embedder().encode})()
    with pytest.raises(IntegrityError, match="some-other-model.*sha256"):
        DenseRetriever(retriever.index, embedder=impostor, device="cpu")
    pooled = dataclasses.replace(embedder().info, pooling="cls")
    with pytest.raises(IntegrityError, match="pooling"):
        DenseRetriever(retriever.index, embedder=type("E", (), {"info": pooled})(), device="cpu")


@pytest.mark.parametrize("rel", ["index.faiss", "vectors.npy", "chunks.arrow", "docs.arrow", "manifest.json"])
def test_a_flipped_byte_in_any_file_is_refused_on_load(flat, tmp_path, rel):
    root = tmp_path / "copy"
    shutil.copytree(flat[0], root)
    path = root / (rel if rel in ("index.faiss", "manifest.json") else f"shards/00000-00000/{rel}")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        dense.load(str(root))


def test_a_truncated_index_file_is_refused_even_without_checksums(flat, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(flat[0], root)
    path = root / "index.faiss"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(IntegrityError):
        dense.load(str(root), verify=False)


def test_an_empty_corpus_is_refused(tmp_path):
    empty = pa.table({"id": pa.array([], pa.string()), "text": pa.array([], pa.string())})
    with pytest.raises(InputError, match="no documents"):
        dense.build(empty, str(tmp_path / "idx"), dense.DenseConfig(device="cpu"), embedder())
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_a_single_document_and_k_larger_than_the_corpus(tmp_path):
    one = pa.table({"id": ["only"], "text": ["Flutter of a swept wing at transonic speed."]})
    retriever = build(tmp_path / "one", one)
    ids, scores = retriever.search(["wing flutter", "hypersonic heating"], k=10)
    assert ids == [["only"], ["only"]] and all(len(s) == 1 for s in scores)
    with pytest.raises(ConfigError, match="'k'"):
        retriever.search(["x"], k=0)


def test_k_larger_than_the_corpus_returns_every_document_once(flat):
    ids, _ = flat[1].search(tiny_queries(), k=100)
    assert all(sorted(i) == sorted(flat[1].index.ids) for i in ids)


def test_long_documents_are_chunked_and_map_back_to_one_hit_each(tmp_path):
    retriever = build(tmp_path / "chunked", window=8, overlap=3)
    index = retriever.index
    assert index.n_vectors > 2 * index.n_docs  # many chunks per document
    shard = index.shards[0]
    texts = tiny_corpus()["text"].to_pylist()
    for d, s, e in zip(*(shard.chunks[c].to_pylist() for c in ("doc", "start", "end")), strict=True):
        assert 0 <= s < e <= len(texts[d]) and texts[d][s:e].strip()
    first_start = {}
    for d, s in zip(shard.chunks["doc"].to_pylist(), shard.chunks["start"].to_pylist(), strict=True):
        first_start.setdefault(d, s)
    assert set(first_start.values()) == {0}  # every document's first chunk starts at its beginning
    ids, scores = retriever.search(tiny_queries(), k=index.n_docs)
    for q, got in zip(tiny_queries(), ids, strict=True):
        assert len(got) == len(set(got)) == index.n_docs
        assert got == exact_ranking(retriever, q)  # a document scores as its best chunk
    few, _ = retriever.search(tiny_queries(), k=3)
    assert [f == g[:3] for f, g in zip(few, ids, strict=True)] == [True] * len(few)


@pytest.mark.parametrize("spec", ["SQ8", "SQfp16", "HNSW16", "IVF2,Flat"])
def test_float_specs_return_what_flat_returns_on_a_tiny_corpus(flat, tmp_path, spec):
    params = {"HNSW16": "efSearch=64", "IVF2,Flat": "nprobe=2"}.get(spec, "")
    retriever = DenseRetriever(dense.load(str(flat[0])), embedder=embedder(), device="cpu")
    dense.reindex(str(flat[0]), str(tmp_path / "re"), spec=spec, search_params=params, train_sample=12)
    other = DenseRetriever(dense.load(str(tmp_path / "re")), embedder=embedder(), device="cpu")
    assert other.search(tiny_queries(), 3)[0] == retriever.search(tiny_queries(), 3)[0]


def test_binary_index_rescored_from_float16_or_int8_matches_flat(flat, tmp_path):
    reference = flat[1].search(tiny_queries(), 5)
    for rescore in ("auto", "int8"):
        root = tmp_path / rescore
        found = dense.reindex(str(flat[0]), str(root), spec="BFlat", rescore=rescore)
        assert found["index"]["code_bytes"] == 48 and found["index"]["rescore"] == ("float16" if rescore == "auto" else "int8")
        retriever = DenseRetriever(dense.load(str(root)), embedder=embedder(), device="cpu", rescore_multiplier=3)
        ids, scores = retriever.search(tiny_queries(), 5)
        assert ids == reference[0]
        np.testing.assert_allclose(np.concatenate(scores), np.concatenate(reference[1]), atol=0.02 if rescore == "int8" else 1e-5)
    assert {"int8/codes.npy", "int8/scale.npy"} <= {f["path"] for f in dense.load(str(tmp_path / "int8")).manifest["files"]}


def test_binary_without_rescoring_scores_sign_agreement(flat, tmp_path):
    dense.reindex(str(flat[0]), str(tmp_path / "b"), spec="BFlat", rescore="none")
    retriever = DenseRetriever(dense.load(str(tmp_path / "b")), embedder=embedder(), device="cpu")
    ids, scores = retriever.search(tiny_queries()[:1], 12)
    assert len(ids[0]) == 12 and np.all((-1 <= scores[0]) & (scores[0] <= 1))


def test_matryoshka_truncation_indexes_and_queries_the_first_dimensions(flat, tmp_path):
    found = dense.reindex(str(flat[0]), str(tmp_path / "t"), truncate_dim=128)
    assert found["vectors"]["dim"] == 128 and found["index"]["code_bytes"] == 512
    retriever = DenseRetriever(dense.load(str(tmp_path / "t")), embedder=embedder(), device="cpu")
    q = retriever.encode(["wing flutter"])
    assert q.shape == (1, 128) and np.isclose(np.linalg.norm(q), 1.0, atol=1e-5)
    assert retriever.search(["wing flutter"], 1)[0][0][0] in {"d1", "d6"}
    with pytest.raises(ConfigError, match="truncate_dim"):
        dense.reindex(str(flat[0]), str(tmp_path / "t2"), truncate_dim=1000)


@pytest.mark.parametrize(("spec", "expected"), [("Flat", 1536), ("SQfp16", 768), ("SQ8", 384), ("PQ48", 48),
                                                ("IVF16,SQ8", 384), ("HNSW32", 1536 + 256), ("BFlat", 48),
                                                ("OPQ16,IVF256,PQ16", 16)])
def test_bytes_per_vector_of_factory_specs(spec, expected):
    assert dense.code_bytes(dense.empty_index(spec, 384)) == expected


def test_a_typo_in_the_spec_or_the_search_params_is_refused_quoting_it(flat, tmp_path):
    with pytest.raises(ConfigError, match="'IVF16,SQ9'"):
        dense.empty_index("IVF16,SQ9", 384)
    with pytest.raises(ConfigError, match="nprob=4"):
        DenseRetriever(dense.load(str(flat[0])), embedder=embedder(), device="cpu", search_params="nprob=4")
    with pytest.raises(ConfigError, match="could not train 'PQ8'"):
        dense.reindex(str(flat[0]), str(tmp_path / "pq"), spec="PQ8")  # 256 centroids from 12 vectors


def test_reindex_can_change_only_what_acts_after_embedding(flat, tmp_path):
    with pytest.raises(ConfigError, match="window"):
        dense.reindex(str(flat[0]), str(tmp_path / "x"), window=16)


def test_the_build_is_deterministic_byte_for_byte(flat, tmp_path):
    for spec in ("Flat", "HNSW8", "IVF2,SQ8"):
        a = dense.reindex(str(flat[0]), str(tmp_path / f"a{spec}"), spec=spec, train_sample=10)
        b = dense.reindex(str(flat[0]), str(tmp_path / f"b{spec}"), spec=spec, train_sample=10)
        assert a["files"] == b["files"]


def test_the_training_sample_depends_on_ids_not_on_order():
    ids = [f"doc{i}" for i in range(50)]
    chunk_doc = np.repeat(np.arange(50), 2)
    keys = dense.chunk_keys(ids, chunk_doc, seed=0)
    perm = np.random.default_rng(0).permutation(50)
    shuffled = dense.chunk_keys([ids[i] for i in perm], chunk_doc, seed=0)
    assert sorted(keys.tolist()) == sorted(shuffled.tolist()) and len(set(keys.tolist())) == 100
    assert not np.array_equal(keys, dense.chunk_keys(ids, chunk_doc, seed=1))


def test_cpu_is_chosen_and_logged_without_a_gpu(monkeypatch, caplog):
    import faiss

    index = faiss.IndexFlatIP(8)
    caplog.set_level(logging.INFO, logger="tamis.indexes.dense")
    assert dense.to_gpu(index, "cpu", "search") == (index, "cpu")
    assert "on CPU (device cpu)" in caplog.text
    monkeypatch.setattr(dense, "faiss_gpus", lambda: 0)
    assert not dense.use_gpu("auto") and dense.to_gpu(index, "auto", "build")[1] == "cpu"
    assert "no GPU visible to FAISS" in caplog.text
    monkeypatch.setattr(dense, "faiss_gpus", lambda: 1)
    assert dense.use_gpu("auto") and dense.use_gpu("cuda") and not dense.use_gpu("cpu")


@pytest.mark.skipif(dense.faiss_gpus() == 0, reason="needs a GPU visible to FAISS (faiss-gpu, the gpu extra)")
def test_gpu_builds_and_searches_like_cpu(flat, tmp_path):
    found = dense.reindex(str(flat[0]), str(tmp_path / "gpu"), spec="IVF2,Flat", search_params="nprobe=2", device="auto")
    assert found["index"]["built_on"] == "cuda"
    gpu = DenseRetriever(dense.load(str(tmp_path / "gpu")), embedder=embedder(), device="cuda")
    assert gpu.device == "cuda"
    assert gpu.search(tiny_queries(), 3)[0] == flat[1].search(tiny_queries(), 3)[0]


def test_indexing_only_first_chunks_gives_one_vector_per_document(tmp_path):
    build(tmp_path / "all", window=8, overlap=3)
    found = dense.reindex(str(tmp_path / "all"), str(tmp_path / "first"), index_chunks="first", spec="BFlat")
    assert found["vectors"]["count"] == 12 < found["counts"]["chunks"]
    index = dense.load(str(tmp_path / "first"))
    assert index.chunk_doc.tolist() == list(range(12))
    shard = index.shards[0]
    np.testing.assert_array_equal(shard.chunks["start"].to_numpy()[index.rows], 0)
    np.testing.assert_allclose(index.vectors(np.arange(12)), shard.vectors[index.rows].astype(np.float32), atol=1e-6)
    retriever = DenseRetriever(index, embedder=embedder(), device="cpu")
    assert sorted(retriever.search(["wing"], 20)[0][0]) == sorted(index.ids)
