"""BETR on real shared data: benchmark similarity of a small embedded sample, the cheap classifier, the command."""

import gzip
import json

import numpy as np
import pytest

from tamis.cli import main
from tamis.errors import ConfigError, InputError
from tamis.filters import betr
from tamis.filters import fasttext_model as fm
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.schema import documents

SMALL_FT = fm.FastTextParams(dim=16, bucket=16384, epoch=10, lr=0.5, balance=False)


def _jsonl_gz(path, n):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for _, line in zip(range(n), f, strict=False)]


@pytest.fixture(scope="module")
def corpus(shared_data):
    """10 GSM8K test problems as the benchmark; 25 web pool documents plus 15 other GSM8K problems as documents.

    Texts are cut to 1,500 characters, about what the embedding model reads anyway, to keep the test fast.
    """
    gsm = _jsonl_gz(shared_data / "curation/decontam/gsm8k_test.jsonl.gz", 25)
    pool = _jsonl_gz(shared_data / "curation/web_pool/pool.jsonl.gz", 25)
    bench = [r["text"] for r in gsm[:10]]
    docs = [(f"gsm-{i}", r["text"]) for i, r in enumerate(gsm[10:])] + [(r["id"], r["text"][:1500]) for r in pool]
    return bench, docs


@pytest.fixture(scope="module")
def embedder():
    from tamis.embeddings import Embedder

    return Embedder(device="cpu")


def test_similarity_matches_brute_force():
    rng = np.random.default_rng(0)
    docs, bench = rng.normal(size=(7, 5)), rng.normal(size=(9, 5))
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    bench /= np.linalg.norm(bench, axis=1, keepdims=True)
    sims = betr.similarity(docs, bench, top_k=3)
    for i, d in enumerate(docs):
        cos = sorted((float(d @ b) for b in bench), reverse=True)
        assert sims["max"][i] == pytest.approx(cos[0])
        assert sims["mean_topk"][i] == pytest.approx(np.mean(cos[:3]))
    assert betr.similarity(docs, bench[:2], top_k=10)["mean_topk"].shape == (7,)  # k capped by benchmark size


def test_top_labels_and_sample_are_exact_and_order_free():
    scores = np.array([0.1, 0.9, 0.5, 0.9, 0.3])
    np.testing.assert_array_equal(betr.top_labels(scores, 0.4), [False, True, False, True, False])
    assert betr.top_labels(scores, 0.01).sum() == 1
    ids = [f"doc{i}" for i in range(50)]
    a = {ids[i] for i in betr.sample_ids(ids, 10, seed=3)}
    b = {ids[::-1][i] for i in betr.sample_ids(ids[::-1], 10, seed=3)}
    assert a == b and len(a) == 10
    assert a != {ids[i] for i in betr.sample_ids(ids, 10, seed=4)}


def test_benchmark_like_documents_score_highest_and_classifier_is_usable(corpus, embedder, tmp_path):
    bench, docs = corpus
    ids, texts = [d[0] for d in docs], [d[1] for d in docs]
    sims = betr.score_sample(bench, texts, embedder, top_k=5)
    is_gsm = np.array([i.startswith("gsm-") for i in ids])
    for key in ("max", "mean_topk"):
        assert sims[key][is_gsm].min() > np.median(sims[key][~is_gsm])
        assert is_gsm[np.argsort(-sims[key])[:10]].all()  # math problems lead the ranking
    params = betr.BETRParams(sample=len(ids), top_k=5, positive_fraction=0.25, heldout_fraction=0.3, fasttext=SMALL_FT)
    out = str(tmp_path / "betr.bin")
    report = betr.fit_and_check(ids, texts, sims, out, params, {"embedding_model": "test"})
    assert report["train"] + report["heldout"] == len(ids)
    assert report["positives"] == int(np.ceil(0.25 * report["train"]))
    assert -1.0 <= report["spearman"] <= 1.0
    manifest = json.loads(open(fm.manifest_path(out)).read())
    assert manifest["method"]["labels"].startswith("BETR") and manifest["method"]["betr"]["top_k"] == 5
    scorer = build("quality", {"models": {"betr": out}})
    p = scorer.score(DocView(documents([{"id": i, "text": t} for i, t in zip(ids, texts, strict=True)])))
    p = p["quality.betr"]
    assert p[is_gsm].mean() > p[~is_gsm].mean()  # the cheap model learned what the embeddings preferred


def test_betr_command_prints_spearman(corpus, embedder, tmp_path, capsys):
    bench, docs = corpus
    bench_file, docs_file = tmp_path / "bench.jsonl", tmp_path / "docs.jsonl"
    bench_file.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(bench[:5])))
    docs_file.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    out = str(tmp_path / "m.bin")
    argv = ["quality", "betr", "--benchmarks", str(bench_file), "--docs", str(docs_file), "--out", out]
    argv += ["--sample", "20", "--device", "cpu", "--positive-fraction", "0.3", "--heldout-fraction", "0.5", "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sampled"] == 20 and "spearman" in report and fm.load(out).manifest["method"]["sampled"] == 20


def test_bad_parameters_and_inputs(tmp_path):
    with pytest.raises(ConfigError):
        betr.BETRParams(positive_fraction=1.5)
    with pytest.raises(ConfigError):
        betr.BETRParams(sample=3)
    with pytest.raises(InputError):
        betr.score_sample([], ["a doc"], embedder=None, top_k=3)
    sims = {"max": np.zeros(4), "mean_topk": np.zeros(4)}
    with pytest.raises(InputError, match="too few"):
        betr.fit_and_check(list("abcd"), ["t"] * 4, sims, str(tmp_path / "m.bin"), betr.BETRParams(), {})
