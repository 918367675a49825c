import json
import time

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tamis.errors import ConfigError, IntegrityError, ResourceError
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.mixers.dsir import DSIRModel, DSIRParams, resample, tokenize
from tamis.pipelines.dsir_select import DSIRSelect
from tamis.schema import documents

CONFIGS = {  # reference config -> (n, buckets, target files)
    "bigram_10k": (2, 10000, ["toy_target_data.jsonl"]),
    "trigram_50k": (3, 50000, ["toy_target_data.jsonl"]),
    "bigram_10k_septargets": (2, 10000, ["toy_target_data.jsonl", "toy_target_data_2.jsonl"]),
}


def _contents(path):
    return [json.loads(line)["contents"] for line in path.open(encoding="utf-8")]


@pytest.fixture(scope="module")
def dsir_dir(shared_data):
    return shared_data / "mixing" / "dsir"


@pytest.fixture(scope="module")
def raw(dsir_dir):
    return _contents(dsir_dir / "toy_pile_data.jsonl")


@pytest.fixture(scope="module")
def bigram(dsir_dir, raw):
    return DSIRModel.fit(DSIRParams(ngrams=2, num_buckets=10000), raw, [_contents(dsir_dir / "toy_target_data.jsonl")])


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_dsir_weights_and_selection_match_reference(config, dsir_dir, raw):
    n, buckets, targets = CONFIGS[config]
    ref = np.load(dsir_dir / "reference" / f"{config}.npz")
    meta = json.loads((dsir_dir / "reference" / "reference.json").read_text())
    expected = meta["configs"][config]
    proportions = expected["params"].get("target_proportions")
    params = DSIRParams(
        ngrams=n, num_buckets=buckets, min_example_length=meta["min_example_length"], target_proportions=proportions
    )
    model = DSIRModel.fit(params, raw, [_contents(dsir_dir / t) for t in targets])
    weights, lengths = model.weigh(raw)

    ref_w = ref["log_importance_weights"].reshape(len(raw), -1)
    assert weights.shape == ref_w.shape
    np.testing.assert_allclose(weights, ref_w, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(lengths, ref["length"])
    assert int((lengths >= params.min_example_length).sum()) == expected["n_pass_length_filter"]

    kw = {"min_length": params.min_example_length, "proportions": model.proportions() if len(targets) > 1 else None}
    chosen = resample(weights, lengths, meta["num_to_sample"], seed=meta["seed"], **kw)
    assert chosen.tolist() == sorted(expected["resample_gumbel_topk_selected_ids"])
    top = resample(weights, lengths, meta["num_to_sample"], noise="none", **kw)
    assert top.tolist() == sorted(expected["resample_topk_selected_ids"])


def test_dsir_tokenizer_uses_regex_word_class():
    # U+00B9 (superscript one) is \w for stdlib re but not for `regex`, which the reference weights used.
    assert tokenize("X\u00b9 Don't") == ["x", "\u00b9", "don", "'", "t"]


def test_dsir_artifact_roundtrip_scorer_and_tamper(bigram, raw, tmp_path):
    root = tmp_path / "dsir"
    bigram.save(str(root))
    assert json.loads((root / "manifest.json").read_text())["params"]["num_buckets"] == 10000
    scorer = build("dsir", {"artifact": str(root)})
    cols = scorer.score(DocView(documents([{"id": str(i), "text": t} for i, t in enumerate(raw[:50])])))
    expected, lengths = bigram.weigh(raw[:50])
    np.testing.assert_allclose(cols["dsir.log_weight"], expected[:, 0], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(cols["dsir.length"], lengths)

    (root / "log_diff.npy").write_bytes((root / "log_diff.npy").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(IntegrityError):
        DSIRModel.load(str(root))


def test_dsir_missing_artifact_is_resource_error(tmp_path):
    with pytest.raises(ResourceError):
        build("dsir", {"artifact": str(tmp_path / "absent")})
    with pytest.raises(ConfigError):
        build("dsir", {"artifact": str(tmp_path), "ngrams": 2})


def test_dsir_bad_input_empty_surrogates_and_huge(bigram, shared_data):
    import gzip

    pool = []
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        size = 0
        for line in f:
            pool.append(json.loads(line)["text"])
            size += len(pool[-1])
            if size > 10_500_000:
                break
    huge = "\n".join(pool)
    assert len(huge.encode()) > 10_000_000
    texts = ["", "   ", "caf\udce9 \ud800 lone surrogates", "\ufffd\ufffd bad bytes \ufffd", huge]
    start = time.perf_counter()
    weights, lengths = bigram.weigh(texts)
    elapsed = time.perf_counter() - start
    assert weights[0, 0] == 0 and lengths[0] == 0 and lengths[1] == 0
    assert np.isfinite(weights).all()
    assert lengths[2] == 5 and lengths[4] > 1_000_000
    assert elapsed < 60, f"10 MB document took {elapsed:.1f} s"


def test_gumbel_topk_draws_in_proportion_to_weights():
    weights = np.log([1.0, 2.0, 7.0])
    picks = np.zeros(3)
    for seed in range(3000):
        picks[resample(weights, np.full(3, 100), 1, seed=seed, noise="hashed", ids=["a", "b", "c"])] += 1
    np.testing.assert_allclose(picks / picks.sum(), [0.1, 0.2, 0.7], atol=0.03)


def test_hashed_selection_is_order_free_and_matches_beam(bigram, raw):
    weights, lengths = bigram.weigh(raw[:300])
    ids = [f"doc-{i}" for i in range(300)]
    chosen = {ids[i] for i in resample(weights, lengths, 40, seed=7, noise="hashed", ids=ids)}
    perm = np.random.default_rng(0).permutation(300)
    again = resample(weights[perm], lengths[perm], 40, seed=7, noise="hashed", ids=[ids[i] for i in perm])
    assert {ids[perm[i]] for i in again} == chosen

    batches = []
    for start in range(0, 300, 64):
        b = documents([{"id": ids[i], "text": ""} for i in range(start, min(start + 64, 300))])
        b = b.append_column("dsir.log_weight", pa.array(weights[start : start + 64, 0]))
        batches.append(((0, start), b.append_column("dsir.length", pa.array(lengths[start : start + 64]))))
    with beam.Pipeline() as p:
        out = p | beam.Create(batches) | DSIRSelect(k=40, seed=7, min_length=100)
        assert_that(out, equal_to([sorted(chosen)]))
