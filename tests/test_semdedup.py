"""SemDeDup on hand-made near copies among real web documents; the greedy keep rule; the Beam stage."""

import gzip
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from tamis import config
from tamis.dedup.semdedup import SemDedupConfig, cluster_drops, embedder, semantic_duplicates
from tamis.errors import ConfigError
from tamis.pipelines import curate
from tamis.schema import documents

# (original, near copy): the same sentences with a few words changed.
PLANTED = [
    ("The city council voted on Tuesday to extend the library's opening hours until nine in the evening, starting "
     "next month. Council members said the change responds to requests from students and working parents.",
     "On Tuesday the city council voted to extend the library's opening hours until 9 in the evening, beginning "
     "next month. Council members said the change answers requests from students and working parents."),
    ("To replace the filter, turn off the pump, unscrew the housing by hand and pull the old cartridge straight out. "
     "Rinse the housing before inserting the new cartridge.",
     "To replace the filter, switch off the pump, unscrew the housing by hand and pull the old cartridge straight out. "
     "Rinse the housing before you insert the new cartridge."),
    ("Our bakery uses only stone-ground flour from a mill twenty miles away, and every loaf is shaped by hand before "
     "it goes into the wood-fired oven.",
     "Our bakery only uses stone-ground flour from a mill twenty miles away, and each loaf is shaped by hand before "
     "it goes into our wood-fired brick oven."),
]
# Same topic as the first pair, different content: must stay.
RELATED = ("The library will close for two weeks in August while the heating system is replaced; books due in that "
           "period can be returned to the branch on Elm Street.")


class CachedModel:
    """The real embedder, memoized by text, so repeated runs in this module embed each text once."""

    def __init__(self, model):
        self.model, self.device, self.cache = model, model.device, {}

    def encode(self, texts):
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        for t, v in zip(todo, self.model.encode(todo), strict=True):
            self.cache[t] = v
        return np.stack([self.cache[t] for t in texts]) if texts else self.model.encode([])


@pytest.fixture(scope="module")
def model():
    return CachedModel(embedder(SemDedupConfig(device="cpu")))


@pytest.fixture(scope="module")
def web_rows(shared_data):
    rows = []
    with gzip.open(shared_data / "curation/web_pool/pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["source"] == "stackexchange" and 300 <= len(r["text"]) <= 1000:
                rows.append({"id": f"web-{len(rows):02d}", "text": r["text"]})
                if len(rows) == 40:
                    break
    return rows


def corpus(web_rows) -> list[dict]:
    rows = list(web_rows) + [{"id": "related", "text": RELATED}]
    for i, (orig, copy) in enumerate(PLANTED):
        rows += [{"id": f"orig-{i}", "text": orig}, {"id": f"para-{i}", "text": copy}]
    return rows


def test_planted_near_copies_are_dropped_with_the_kept_id(model, web_rows):
    rows = corpus(web_rows)
    cfg = SemDedupConfig(enabled=True, clusters=4)
    drops = semantic_duplicates([documents(rows[:25]), documents(rows[25:])], cfg, model)
    assert {d.dropped: d.kept for d in drops} == {f"para-{i}": f"orig-{i}" for i in range(len(PLANTED))}
    assert all(d.cosine > 1 - cfg.eps for d in drops)


def test_keep_longest_keeps_the_longer_copy(model, web_rows):
    cfg = SemDedupConfig(enabled=True, clusters=2, keep="longest")
    drops = semantic_duplicates([documents(corpus(web_rows))], cfg, model)
    longer_copy = [len(copy) > len(orig) for orig, copy in PLANTED]
    assert any(longer_copy) and not all(longer_copy)
    expected = {(f"orig-{i}" if c else f"para-{i}"): (f"para-{i}" if c else f"orig-{i}") for i, c in enumerate(longer_copy)}
    assert {d.dropped: d.kept for d in drops} == expected


def test_same_drops_whatever_the_batching_and_order(model, web_rows):
    rows = corpus(web_rows)
    cfg = SemDedupConfig(enabled=True, clusters=3, eps=0.3)  # loose, so more than the planted pairs are in play
    first = semantic_duplicates([documents(rows)], cfg, model)
    order = np.random.default_rng(0).permutation(len(rows))
    shuffled = [rows[i] for i in order]
    second = semantic_duplicates([documents(shuffled[:17]), documents(shuffled[17:])], cfg, model)
    assert len(first) > len(PLANTED)
    assert first == second


def test_greedy_compares_with_kept_documents_only():
    # b is within 0.04 of a; c is within 0.04 of b but not of a: b is dropped, so c stays.
    angles = np.radians([0.0, 16.0, 32.0, 90.0])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    rank = [(0.0, 0.0, x) for x in "abcd"]
    drops = cluster_drops(vectors, rank, eps=0.05)
    assert [(d.row, d.kept) for d in drops] == [(1, 0)]
    assert drops[0].cosine == pytest.approx(np.cos(np.radians(16.0)), abs=1e-6)
    reversed_drops = cluster_drops(vectors[::-1].copy(), rank[::-1], eps=0.05)
    assert [(3 - d.row, 3 - d.kept) for d in reversed_drops] == [(1, 0)]


def test_curate_runs_semantic_dedup_and_records_the_kept_id(model, web_rows, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rows = corpus(web_rows)
    for f, part in enumerate((rows[::2], rows[1::2])):
        (src / f"part{f}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    cfg = config.parse({
        "inputs": [{"path": str(src / "*.jsonl")}],
        "output": str(tmp_path / "run"),
        "runner": {"batch_size": 16},
        "semantic_dedup": {"enabled": True, "clusters": 4, "device": "cpu"},
    })
    assert "semantic_dedup" in curate.stages(cfg)
    manifest = curate.run(cfg)
    c = manifest["counts"]
    assert c["dropped_by_reason"] == {"semantic_dup": len(PLANTED)}
    assert c["read"] == c["kept"] + c["dropped"] == len(rows)
    dropped = pq.read_table(tmp_path / "run" / "dropped").to_pylist()
    assert {d["id"]: d["dup_of"] for d in dropped} == {f"para-{i}": f"orig-{i}" for i in range(len(PLANTED))}
    assert all(d["stage"] == "semantic_dedup" and json.loads(d["detail"])["cosine"] > 0.95 for d in dropped)


@pytest.mark.parametrize(
    "bad, message",
    [({"eps": 1.0}, "eps"), ({"clusters": 0}, "clusters"), ({"keep": "score"}, "score_column"),
     ({"keep": "oldest"}, "keep")],
)
def test_bad_config_is_refused(bad, message):
    with pytest.raises(ConfigError, match=message):
        config.parse({"inputs": [{"path": "x.jsonl"}], "output": "out", "semantic_dedup": {"enabled": True, **bad}})
