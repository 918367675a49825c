"""`tamis mix`: domains, budgets, epoch caps, deterministic sampling and the pipeline's blended, verified output."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamis import config
from tamis.errors import ConfigError, IntegrityError
from tamis.mixers import mix_run
from tamis.mixers.budget import allocate, domain_weights
from tamis.mixers.domains import UNASSIGNED, assign
from tamis.mixers.plan import Docs, build
from tamis.mixers.sampling import copies, doc_keys
from tamis.mixers.spec import DomainSpec, MixSpec, TokenizerSpec, WeightSpec
from tamis.mixers.tokens import TokenCounter
from tamis.pipelines import curate, mix
from tamis.schema import documents

WORDS = "alpha beta gamma delta epsilon zeta theta kappa lambda sigma omega river stone light".split()
_NO_LIMITS = {k: None for k in ("min_doc_words", "max_doc_words", "min_mean_word_length", "max_mean_word_length",
                                "max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
                                "min_alpha_words_ratio", "min_stop_words")}


def write_sources(folder: Path) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for name, n in (("web", 240), ("code", 60), ("books", 16)):
        with open(folder / f"{name}.jsonl", "w") as f:
            for i in range(n):
                text = " ".join(rng.choice(WORDS, size=int(rng.integers(10, 300))))
                f.write(json.dumps({"id": f"{name}-{i:03d}", "text": text, "tag": name}) + "\n")


def curate_run(src: Path, out: Path, shard_bytes: int) -> str:
    cfg = config.parse({
        "inputs": [{"path": str(src / "*.jsonl")}],
        "output": str(out),
        "exact_dedup": {"enabled": False},
        "filters": [{"name": "gopher_quality", "params": _NO_LIMITS}],
        "shards": {"target_bytes": shard_bytes},
        "runner": {"batch_size": 50},
    })
    curate.run(cfg)
    return str(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, str]:
    """The same documents curated twice, sharded differently."""
    root = tmp_path_factory.mktemp("mix")
    write_sources(root / "in")
    return {"a": curate_run(root / "in", root / "run_a", 20_000), "b": curate_run(root / "in", root / "run_b", 10**9)}


def mix_cfg(inputs: list[str], out: Path, **over) -> mix.MixConfig:
    raw = {
        "inputs": inputs,
        "output": str(out),
        "budget_tokens": 40_000,
        "tokenizer": {"chars_per_token": 4.0},
        "domains": [
            {"name": "code", "source": "*code*"},
            {"name": "long", "score": "gopher_quality.word_count >= 200"},
            {"name": "books", "meta": {"tag": "books"}},
            {"name": "rest"},
        ],
        "weights": {"given": {"code": 0.3, "long": 0.3, "books": 0.2, "rest": 0.2}},
        "max_epochs": 3,
        "shards": {"target_bytes": 30_000},
        "runner": {"batch_size": 64},
    }
    raw.update(over)
    return mix.MixConfig(**raw)


def digests(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((run / "shards").glob("*.parquet"))}


# --- pure parts ---------------------------------------------------------------------------------------------------


def test_domains_take_the_first_match_by_source_meta_and_score():
    batch = documents([
        {"id": "a", "text": "x", "source": "/data/code/a.jsonl", "meta": json.dumps({"lang": "py"})},
        {"id": "b", "text": "x", "source": "/data/web/b.jsonl", "meta": json.dumps({"site": {"name": "wiki"}})},
        {"id": "c", "text": "x", "source": "/data/web/c.jsonl", "meta": None},
        {"id": "d", "text": "x", "source": "/data/web/d.jsonl", "meta": json.dumps({"site": {"name": "news"}})},
    ])
    batch = batch.append_column("q.score", pa.array([0.9, 0.95, 0.85, None]))
    domains = [
        DomainSpec(name="code", source=["*/code/*", "*.py"]),
        DomainSpec(name="wiki", meta={"site.name": "wik*"}, score="q.score > 0.9"),
        DomainSpec(name="good", score=["q.score >= 0.8", "q.score < 0.9"]),
    ]
    assert assign(batch, domains).tolist() == [0, 1, 2, UNASSIGNED]  # a missing score matches no condition
    assert assign(batch, [*domains, DomainSpec(name="rest")]).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize(("raw", "needle"), [
    ({"score": "quality dclm 0.8"}, "COLUMN OP NUMBER"),
    ({"max_epochs": 0}, "max_epochs"),
])
def test_bad_domain_is_one_config_error(raw, needle):
    with pytest.raises(ConfigError, match=needle):
        DomainSpec(name="d", **raw)


def test_mix_spec_refuses_inconsistent_configs(tmp_path):
    base = mix_cfg(["r"], tmp_path).model_dump(exclude={"runner", "fail_after_shards"})
    with pytest.raises(ConfigError, match="only the last domain"):
        MixSpec(**{**base, "domains": [{"name": "all"}, {"name": "code", "source": "*"}],
                   "weights": {"given": {"all": 1, "code": 1}}})
    with pytest.raises(ConfigError, match="Missing \\['rest'\\]"):
        MixSpec(**{**base, "weights": {"given": {"code": 1, "long": 1, "books": 1}}})
    with pytest.raises(ConfigError, match="exactly one of 'given', 'alpha', 'regmix'"):
        MixSpec(**{**base, "weights": {"alpha": 0.5, "regmix": "w.yaml"}})
    with pytest.raises(ConfigError, match="exactly one of 'path' and 'chars_per_token'"):
        MixSpec(**{**base, "tokenizer": {}})


def test_epoch_caps_move_the_shortfall_to_the_other_domains():
    tokens = np.array([1000, 100, 1000])
    a = allocate(np.array([0.4, 0.4, 0.2]), tokens, 1000, [4, 2, 4], ["a", "b", "c"])
    assert a.capped.tolist() == [False, True, False]
    assert a.target[1] == 200  # 2 epochs of 100
    assert a.target[0] == pytest.approx(2 * a.target[2]) and a.target.sum() == pytest.approx(1000)
    assert a.moved == {"from": {"b": 200}, "to": {"a": 133, "c": 67}}
    # Every domain capped: the budget cannot be met, and the report says by how much.
    b = allocate(np.array([0.5, 0.5, 0.0]), np.array([10, 10, 10]), 1000, [1, 1, 1], ["a", "b", "c"])
    assert b.target.tolist() == [10, 10, 0] and b.short == 980


def test_weights_given_by_temperature_or_from_a_regmix_file(tmp_path):
    names, tokens = ["a", "b", "c"], np.array([100, 400, 0])
    assert domain_weights(WeightSpec(alpha=1.0), names, tokens) == pytest.approx([0.2, 0.8, 0])
    assert domain_weights(WeightSpec(alpha=0.5), names, tokens) == pytest.approx([1 / 3, 2 / 3, 0])
    assert domain_weights(WeightSpec(alpha=0.0), names, tokens) == pytest.approx([0.5, 0.5, 0])  # an empty domain: 0
    path = tmp_path / "w.yaml"
    path.write_text("kind: regmix_weights\nformat_version: 1\nweights: {a: 2, b: 1, c: 1}\n")
    assert domain_weights(WeightSpec(regmix=str(path)), names, tokens) == pytest.approx([0.5, 0.25, 0.25])
    with pytest.raises(ConfigError, match="Missing \\['c'\\]"):
        path.write_text("kind: regmix_weights\nweights: {a: 2, b: 1}\n")
        domain_weights(WeightSpec(regmix=str(path)), names, tokens)


def test_selection_is_decided_by_hash_not_order():
    ids = [f"doc-{i}" for i in range(2000)]
    tokens = np.random.default_rng(1).integers(1, 500, size=len(ids))
    keys = doc_keys(ids, seed=7)
    chosen = copies(keys, tokens, target=2.3 * tokens.sum())
    assert set(chosen.tolist()) == {2, 3}
    assert abs(int((chosen * tokens).sum()) - 2.3 * tokens.sum()) <= tokens.max() / 2  # within half a document
    perm = np.random.default_rng(2).permutation(len(ids))
    again = copies(doc_keys([ids[i] for i in perm], seed=7), tokens[perm], target=2.3 * tokens.sum())
    assert np.array_equal(again, chosen[perm])
    other_seed = copies(doc_keys(ids, seed=8), tokens, target=2.3 * tokens.sum())
    assert not np.array_equal(other_seed, chosen)


def test_plan_hits_the_token_shares_and_blends_every_prefix():
    rng = np.random.default_rng(3)
    n = 20_000
    domain = rng.choice([0, 1, 2], size=n, p=[0.8, 0.15, 0.05]).astype(np.int16)
    tokens = rng.integers(20, 3000, size=n)
    docs = Docs(np.zeros(n, np.int32), np.arange(n), domain, tokens, tokens * 4, doc_keys([f"d{i}" for i in range(n)], 0))
    spec = MixSpec(inputs=["r"], output="o", budget_tokens=int(tokens.sum() * 0.6),
                   tokenizer=TokenizerSpec(chars_per_token=4.0),
                   domains=[{"name": "a", "source": "a"}, {"name": "b", "source": "b"}, {"name": "c"}],
                   weights={"given": {"a": 0.3, "b": 0.3, "c": 0.4}})
    samples, report = build(docs, spec)
    for d in report["domains"].values():
        assert abs(d["share_error"]) < 0.005 * d["target_share"]
    assert report["domains"]["c"]["capped"] and report["domains"]["c"]["epochs"] == pytest.approx(4, abs=0.01)
    assert sorted(samples.position.tolist()) == list(range(len(samples.doc)))
    blend = report["blend"]  # in tokens: no domain a whole document ahead of its share in any prefix
    assert blend["unit"] == "tokens" and blend["max_ahead"] <= blend["longest_sample_tokens"]
    # Repeats of a document are whole epochs apart: every first copy of a domain comes before its second copies.
    c = domain[samples.doc] == 2
    assert samples.position[c & (samples.epoch == 1)].min() > samples.position[c & (samples.epoch == 0)].max()


def test_real_tokenizer_counts_whole_texts_without_special_tokens():
    from tokenizers import Tokenizer

    counter = TokenCounter(TokenizerSpec(path="all-MiniLM-L6-v2", batch_size=2))
    texts = ["hello world", "river stone " * 300, "", "naïve café"]
    counts = counter.count(pa.array(texts))
    ref = Tokenizer.from_file(counter.file)
    ref.no_truncation()
    ref.no_padding()
    assert counts.tolist() == [len(ref.encode(t, add_special_tokens=False).ids) for t in texts]
    assert counts[1] == 600  # beyond the file's own truncation at 128
    assert counter.identity["kind"] == "tokenizer.json" and len(counter.identity["sha256"]) == 64
    approx = TokenCounter(TokenizerSpec(chars_per_token=4.0))
    assert approx.count(pa.array(["abcde", "", "naïve"])).tolist() == [2, 0, 2]
    assert approx.identity == {"kind": "approximate", "chars_per_token": 4.0}


# --- the pipeline -------------------------------------------------------------------------------------------------


def test_mix_run_writes_blended_verified_shards(runs, tmp_path):
    out = tmp_path / "mix"
    m = mix.run(mix_cfg([runs["a"]], out, tokenizer={"path": "all-MiniLM-L6-v2"}))
    assert mix_run.load(str(out))["kind"] == "mix_run" and not (out / "_work").exists()
    assert m["tokenizer"]["kind"] == "tokenizer.json"
    table = pq.read_table(out / "shards")
    assert table.column("position").to_pylist() == list(range(m["samples"]))
    ids = table.column("sample_id").to_pylist()
    assert len(set(ids)) == len(ids) and m["repeated_samples"] > 0  # repeats have their own ids
    assert all(s.rsplit("#", 1)[0] == i for s, i in zip(ids, table.column("id").to_pylist(), strict=True))
    for name, d in m["domains"].items():
        got = table.filter(pa.compute.equal(table["domain"], name))
        assert pa.compute.sum(got["tokens"]).as_py() == d["achieved_tokens"]
        assert abs(d["achieved_share"] - d["target_share"]) < 0.02  # a few hundred documents: coarse
    assert m["domains"]["books"]["capped"] and m["redistributed"]["from"] == {"books": pytest.approx(
        m["domains"]["books"]["requested_tokens"] - m["domains"]["books"]["target_tokens"], abs=1)}
    assert sum(s["tokens"] for s in m["shards"]) == m["achieved_tokens"]
    assert [s["path"] for s in m["shards"]] == [mix_run.shard_rel(j) for j in range(len(m["shards"]))]

    import datasets

    ds = datasets.load_dataset("parquet", data_files=mix_run.shard_paths(str(out), m), split="train",
                               cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == m["samples"] and ds[0]["position"] == 0
    paths, tokenizer_json, _ = mix_run.export_inputs(str(out))  # the tokenized export's inputs, in blend order
    assert paths == [str(out / s["path"]) for s in m["shards"]] and tokenizer_json == m["tokenizer"]["path"]


def test_same_mixture_whatever_the_sharding_or_workers(runs, tmp_path):
    a = mix.run(mix_cfg([runs["a"]], tmp_path / "a"))
    b = mix.run(mix_cfg([runs["b"]], tmp_path / "b", runner={"batch_size": 7, "workers": 2}))
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert a["domains"] == b["domains"]
    mix.run(mix_cfg([runs["a"]], tmp_path / "c", seed=1))
    assert digests(tmp_path / "c") != digests(tmp_path / "a")


def test_interrupted_mix_resumes_to_identical_output(runs, tmp_path):
    mix.run(mix_cfg([runs["a"]], tmp_path / "clean"))
    with pytest.raises(IntegrityError, match="approximation"):
        mix_run.export_inputs(str(tmp_path / "clean"))
    with pytest.raises(Exception, match="fault injection"):
        mix.run(mix_cfg([runs["a"]], tmp_path / "resumed", fail_after_shards=1))
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    assert (tmp_path / "resumed" / "_work").exists()
    mix.run(mix_cfg([runs["a"]], tmp_path / "resumed"))
    assert digests(tmp_path / "resumed") == digests(tmp_path / "clean")
    mix_run.load(str(tmp_path / "resumed"))
    with pytest.raises(IntegrityError, match="another config"):
        mix.run(mix_cfg([runs["a"]], tmp_path / "resumed", seed=5))


def test_a_changed_input_is_refused_before_any_work(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs["a"], run)
    shard = sorted((run / "shards").glob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        mix.run(mix_cfg([str(run)], tmp_path / "mix"))
    assert not (tmp_path / "mix").exists()


def test_a_score_condition_on_a_missing_column_is_a_config_error(runs, tmp_path):
    cfg = mix_cfg([runs["a"]], tmp_path / "mix", domains=[{"name": "hq", "score": "quality.dclm >= 0.8"}],
                  weights={"alpha": 1.0})
    with pytest.raises(ConfigError, match="quality.dclm"):
        mix.run(cfg)
