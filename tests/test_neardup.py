"""Near-duplicate removal: shingles, MinHash, LSH band choice, clusters, keep rules, the Beam stage in curate, eval."""

import json
import random
from string import ascii_lowercase

import numpy as np
import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import make_cfg, write_jsonl

from tamis import cli
from tamis.dedup.minhash import MinHasher, choose_bands, collision_probability, estimate
from tamis.dedup.neardup import NearDupConfig, candidate_pairs, near_duplicates
from tamis.dedup.shingles import Shingling, shingles
from tamis.errors import ConfigError, InputError
from tamis.eval.neardup import score
from tamis.pipelines import curate
from tamis.schema import documents

_RNG = random.Random(42)
VOCAB = sorted({"".join(_RNG.choices(ascii_lowercase, k=7)) for _ in range(5000)})  # letters: digits normalize to 0


def text_sharing(base: list[str], keep: int, rng: random.Random) -> str:
    """A text of len(base) distinct words, `keep` of them from base: word-1-gram Jaccard keep / (2n - keep)."""
    fresh = [w for w in rng.sample(VOCAB, 3 * len(base)) if w not in base][: len(base) - keep]
    return " ".join(base[:keep] + fresh)


def jaccard(a: str, b: str, cfg: Shingling) -> float:
    h, o = shingles([a, b], cfg)
    sa, sb = set(h[o[0] : o[1]].tolist()), set(h[o[1] : o[2]].tolist())
    return len(sa & sb) / len(sa | sb)


def batches(rows: list[dict], size: int = 3):
    return [documents(rows[i : i + size]) for i in range(0, len(rows), size)]


def test_shingle_normalization_is_configurable():
    a, b = "The Cat sat, on 12 mats!", "the cat sat on 99 mats"
    assert jaccard(a, b, Shingling("word", 2)) == 1.0
    assert jaccard(a, b, Shingling("word", 2, lowercase=False)) < 1.0
    assert jaccard(a, b, Shingling("word", 2, punctuation=False)) < 1.0
    assert jaccard(a, b, Shingling("word", 2, digits=False)) < 1.0
    assert jaccard("a  b   c d", "a b c d", Shingling("char", 3)) == 1.0
    assert jaccard("a  b   c d", "a b c d", Shingling("char", 3, whitespace=False)) < 1.0
    h, o = shingles(["one two three", "", "x"], Shingling("word", 5))
    assert np.diff(o).tolist() == [1, 0, 1]  # a short text is one shingle; an empty one has none


def test_signature_estimate_tracks_jaccard():
    rng = random.Random(1)
    base = rng.sample(VOCAB, 400)
    cfg = Shingling("word", 1)
    hasher = MinHasher(256, seed=3)
    for keep in (100, 250, 350):
        other = text_sharing(base, keep, rng)
        truth = jaccard(" ".join(base), other, cfg)
        assert truth == pytest.approx(keep / (800 - keep))
        sig = hasher.of_texts([" ".join(base), other], cfg)
        assert abs(estimate(sig[0], sig[1]) - truth) < 0.1


def test_band_choice_matches_datasketch_rule():
    from datasketch.lsh import _optimal_param

    for t in (0.3, 0.5, 0.625, 0.8):
        assert choose_bands(t, 128) == _optimal_param(t, 128, 0.5, 0.5)
    b, r = choose_bands(0.5, 128)
    assert collision_probability(np.array(0.9), b, r) > 0.99 > 0.05 > collision_probability(np.array(0.1), b, r)


def test_planted_duplicates_at_known_jaccard_are_found():
    rng = random.Random(0)
    rows, expected = [], {}
    for k in range(6):
        base = rng.sample(VOCAB, 300)
        rows.append({"id": f"d{k}-0", "text": " ".join(base)})
        rows.append({"id": f"d{k}-near", "text": text_sharing(base, 270, rng)})  # Jaccard 270/330 = 0.82
        rows.append({"id": f"d{k}-far", "text": text_sharing(base, 120, rng)})  # Jaccard 120/480 = 0.25
        expected[f"d{k}-near"] = f"d{k}-0"
    cfg = NearDupConfig(ngram=1, threshold=0.6)
    assert near_duplicates(batches(rows), cfg) == expected


CHAIN = NearDupConfig(ngram=1, num_perm=256, threshold=0.82)


def chain() -> list[dict]:
    """a ~ b and b ~ c above 0.82 in word 1-grams; a and c alone are below it."""
    rng = random.Random(5)
    words = rng.sample(VOCAB, 400)
    a, b, c = words[0:300], words[20:320], words[40:340]  # J(a,b) = J(b,c) = 280/320, J(a,c) = 260/340
    return [{"id": i, "text": " ".join(w)} for i, w in (("b", b), ("c", c), ("a", a))]


def test_clusters_are_transitive_and_drops_name_the_kept_id():
    rows = chain()
    assert jaccard(rows[2]["text"], rows[1]["text"], Shingling("word", 1)) < CHAIN.threshold
    assert near_duplicates(batches(rows, 1), CHAIN) == {"b": "a", "c": "a"}


@pytest.mark.parametrize(("keep", "kept"), [("first", "a"), ("longest", "c"), ("score", "b")])
def test_keep_rule_is_deterministic_whatever_the_order(keep, kept):
    rows = chain()
    rows[1]["text"] += " zzzzzzzz yyyyyyyy"  # c is the longest
    for r, s in zip(rows, (0.9, 0.5, 0.1), strict=True):
        r["meta"] = json.dumps({"quality": s})  # b has the highest score
    cfg = CHAIN.model_copy(update={"keep": keep, "score_column": "quality"})
    results = [near_duplicates(batches(order, size), cfg) for order in (rows, rows[::-1]) for size in (1, 3)]
    assert all(r == results[0] for r in results)
    assert set(results[0].values()) == {kept} and len(results[0]) == 2


def test_bad_settings_and_inputs_are_refused():
    with pytest.raises(ConfigError):
        NearDupConfig(keep="score")
    with pytest.raises(ConfigError):
        NearDupConfig(bands=4)
    with pytest.raises(ConfigError):
        NearDupConfig(bands=20, rows=10)  # 200 > num_perm
    with pytest.raises(InputError):
        near_duplicates(batches(chain()), NearDupConfig(keep="score", score_column="missing"))


def near_corpus(tmp_path):
    """Two input files; each planted copy differs from its original in one of 60 words, across files too."""
    src = tmp_path / "in"
    src.mkdir()
    rng = random.Random(7)
    originals = [rng.sample(VOCAB, 60) for _ in range(8)]
    for f in range(2):
        rows = []
        for k, words in enumerate(originals):
            copy = list(words)
            copy[rng.randrange(60)] = "edited"
            rows.append({"id": f"f{f}-{k:02d}", "text": " ".join(copy if f else words)})
            rows.append({"id": f"f{f}-u{k:02d}", "text": " ".join(rng.sample(VOCAB, 60))})
        write_jsonl(src / f"part{f}.jsonl", rows)
    return src


def test_curate_drops_near_dups_the_same_with_one_or_two_workers(tmp_path):
    src = near_corpus(tmp_path)
    near = {"enabled": True, "punctuation": False}
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"run{workers}"
        cfg = make_cfg(src, out, near_dedup=near, runner={"batch_size": 5, "workers": workers})
        manifest = curate.run(cfg)
        dropped = pq.read_table(out / "dropped").to_pylist()
        runs[workers] = (
            sorted(pq.read_table(out / "shards").column("id").to_pylist()),
            sorted((d["id"], d["stage"], d["reason"], d["dup_of"]) for d in dropped),
        )
    assert runs[1] == runs[2]
    assert runs[1][1] == [(f"f1-{k:02d}", "near_dedup", "near_dup", f"f0-{k:02d}") for k in range(8)]
    c = manifest["counts"]
    assert c["dropped_by_reason"] == {"near_dup": 8} and c["read"] == c["kept"] + c["dropped"] + c["errors"] == 32
    assert all(s["balanced"] for s in manifest["sources"].values())
    recorded = manifest["config"]["near_dedup"]
    assert recorded["punctuation"] is False and {"lowercase", "digits", "whitespace", "shingle"} <= set(recorded)


def test_eval_neardup_command(tmp_path, capsys):
    rows = chain() + [{"id": "z", "text": " ".join(random.Random(2).sample(VOCAB, 300))}]
    docs = write_jsonl(tmp_path / "docs.jsonl", rows)
    pairs = write_jsonl(
        tmp_path / "pairs.jsonl",
        [{"a": "a", "b": "c", "label": 1}, {"a": "a", "b": "z", "label": 0}, {"a": "b", "b": "z", "label": 1}],
    )
    cfg = tmp_path / "nd.yaml"
    cfg.write_text("near_dedup:\n  ngram: 1\n  num_perm: 256\n")
    argv = ["eval", "neardup", "--docs", str(docs), "--config", str(cfg), "--json"]
    assert cli.main([*argv, "--pairs", str(pairs), "--threshold", "0.82"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["precision"], out["recall"], out["docs"]) == (1.0, 0.5, 4)
    assert {"f1", "mb", "seconds", "mb_per_s"} <= set(out)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": "x"}\n')
    assert cli.main([*argv, "--pairs", str(bad)]) != 0
    assert "not a judged pair" in capsys.readouterr().err


def test_score_counts_only_judged_pairs_in_one_cluster():
    pairs = [("a", "b", 1), ("a", "c", 0), ("c", "d", 1)]
    s = score(pairs, {"b": "a", "d": "e"})
    assert (s["tp"], s["fp"], s["fn"]) == (1, 0, 1)


def test_dataflow_dry_run_builds_the_near_dup_graph(tmp_path):
    runner = {
        "name": "dataflow",
        "options": {"project": "tamis-test", "region": "us-central1", "temp_location": "gs://tamis-test-bucket/tmp"},
    }
    cfg = make_cfg(near_corpus(tmp_path), "gs://tamis-test-bucket/run", near_dedup={"enabled": True}, runner=runner)
    assert "near_dedup" in curate.stages(cfg)
    assert curate.run(cfg, dry_run=True) is None


def test_candidate_pairs_link_large_buckets_as_a_star():
    keys = np.array([5] * 40 + [3, 9, 9], np.uint64)
    ids = [f"m{i:02d}" for i in range(40)] + ["x", "z", "y"]
    pairs = list(candidate_pairs(keys, ids, limit=32))
    assert sorted(pairs) == sorted([("m00", f"m{i:02d}") for i in range(1, 40)] + [("y", "z")])
    assert len(set(candidate_pairs(keys[:5], ids[:5], limit=32))) == 10  # a small bucket: every pair


def test_beam_stage_and_local_run_agree_on_long_texts_near_the_threshold(tmp_path):
    """Texts of ~600 word 3-grams (over verify_k, so sketches estimate) whose copies straddle the threshold."""
    rng = random.Random(11)
    rows = []
    for k in range(6):
        words = rng.sample(VOCAB, 600)
        rows.append({"id": f"o{k}", "text": " ".join(words)})
        for j, edits in enumerate((10, 20, 60)):  # word 3-gram Jaccard ~0.90, ~0.82, ~0.56
            copy = list(words)
            for i in rng.sample(range(600), edits):
                copy[i] = rng.choice(VOCAB)
            rows.append({"id": f"o{k}-c{j}", "text": " ".join(copy)})
    src = tmp_path / "in"
    src.mkdir()
    write_jsonl(src / "part.jsonl", rows)
    near = {"enabled": True, "threshold": 0.8, "verify_k": 128}
    out = tmp_path / "run"
    curate.run(make_cfg(src, out, near_dedup=near, runner={"batch_size": 7}))
    beam = {d["id"]: d["dup_of"] for d in pq.read_table(out / "dropped").to_pylist() if d["stage"] == "near_dedup"}
    local = near_duplicates(batches(rows, 7), NearDupConfig(threshold=0.8, verify_k=128))
    assert beam == local
    assert {f"o{k}-c0" for k in range(6)} <= set(local) and not any(d.endswith("c2") for d in local)

