"""Bottom-k sketches: exact on small sets, close on large ones, bounded in size; wired into near-dup verification."""

import random

import numpy as np
import pytest

from tamis.dedup.bottomk import bottom_k, similarity
from tamis.dedup.neardup import NearDupConfig, Signer
from tamis.errors import ConfigError


def sets_sharing(n: int, shared: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two sets of n distinct uint64 hashes with `shared` in common: Jaccard shared / (2n - shared)."""
    pool = np.unique(rng.integers(0, 2**63, 3 * n, dtype=np.uint64))[: 2 * n - shared]
    rng.shuffle(pool)
    return pool[:n], pool[n - shared : 2 * n - shared]


def sketch_pair(a: np.ndarray, b: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    values, off = bottom_k(np.concatenate([a, b]), np.array([0, len(a), len(a) + len(b)]), k, seed)
    return values[off[0] : off[1]], values[off[1] : off[2]]


def test_sketch_is_the_k_smallest_distinct_values_per_text():
    hashes = np.array([5, 5, 9, 1, 7, 7, 7], np.uint64)
    values, off = bottom_k(hashes, np.array([0, 4, 4, 7]), k=2)
    assert np.diff(off).tolist() == [2, 0, 1]  # 3 distinct → 2 kept; empty text; duplicates collapse
    first, last = values[off[0] : off[1]], values[off[2] : off[3]]
    assert np.all(np.diff(first.astype(np.int64)) > 0) and len(last) == 1
    again, _ = bottom_k(hashes[:4], np.array([0, 4]), k=2)
    assert again.tolist() == first.tolist()  # a text's sketch does not depend on its batch


def test_similarity_is_exact_when_both_sets_are_smaller_than_k():
    rng = np.random.default_rng(0)
    for n, shared in ((50, 0), (50, 17), (120, 90), (127, 127)):
        a, b = sets_sharing(n, shared, rng)
        sa, sb = sketch_pair(a, b, k=128)
        assert similarity(sa, sb, 128) == pytest.approx(shared / (2 * n - shared))


def test_similarity_error_on_large_sets_is_within_four_standard_deviations():
    rng = np.random.default_rng(1)
    k = 384
    for n, shared in ((5000, 4000), (20000, 12000), (3000, 900)):
        j = shared / (2 * n - shared)
        bound = 4 * np.sqrt(j * (1 - j) / k)  # the bottom-k estimate's standard deviation is ~sqrt(J(1-J)/k)
        errors = [similarity(*sketch_pair(*sets_sharing(n, shared, rng), k, seed), k) - j for seed in range(5)]
        assert max(map(abs, errors)) < bound
        assert abs(np.mean(errors)) < bound / 2


def test_evidence_stays_within_four_k_bytes_whatever_the_length():
    rng = random.Random(3)
    words = ["".join(rng.choices("abcdefghij", k=6)) for _ in range(5000)]  # letters: digits normalize to 0
    texts = [" ".join(rng.choices(words, k=n)) for n in (3, 200, 20000)]
    cfg = NearDupConfig(verify_k=64)
    signed = Signer(cfg).sign(texts)
    assert [len(e) for e in signed.evidence] == [4, 4 * 64, 4 * 64]  # 3 words: one 3-gram
    assert len(Signer(NearDupConfig(verify_k=0)).sign(texts).evidence[2]) == 2 * cfg.num_perm


def test_verification_settings_are_validated():
    for bad in (dict(verify_k=-1), dict(verify_k=100_000), dict(verify_ngram=-2)):
        with pytest.raises(ConfigError, match="verify_"):
            NearDupConfig(**bad)


def test_defaults_are_the_setting_cross_validation_chose():
    """NearDupConfig's verification defaults are what benchmarks/neardup_cv.py picks on all judged pairs."""
    import json
    from pathlib import Path

    result = json.loads((Path(__file__).parents[1] / "benchmarks/results/neardup_cv.json").read_text())
    cfg = NearDupConfig()
    chosen = result["methods"]["tamis/best_f1"]["chosen_on_all_pairs"]["setting"]
    assert [cfg.verify_ngram, cfg.verify_k, cfg.threshold] == chosen
    assert result["tamis_default_dev"]["setting"] == chosen


def test_default_verification_is_exact_below_k_shingles():
    """Texts with fewer than verify_k distinct word 4-grams are compared exactly, not estimated."""
    rng = random.Random(5)
    words = ["".join(rng.choices("abcdefghij", k=5)) for _ in range(3000)]
    a = rng.choices(words, k=900)
    b = a[:600] + rng.choices(words, k=300)
    cfg = NearDupConfig()
    signer = Signer(cfg)
    ev = signer.sign([" ".join(a), " ".join(b)]).evidence
    grams = [{tuple(t[i : i + cfg.verify_ngram]) for i in range(len(t) - cfg.verify_ngram + 1)} for t in (a, b)]
    exact = len(grams[0] & grams[1]) / len(grams[0] | grams[1])
    assert len(grams[0]) < cfg.verify_k and signer.similarity(ev[0], ev[1]) == pytest.approx(exact)
