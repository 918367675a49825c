"""Augmentation's pure parts: chunks tile their document, clusters join transitively, exclusions and over-fetching."""

import json

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.dedup.decontam import BenchmarkSet, DecontamConfig, build_index
from tamis.errors import ConfigError
from tamis.mixers.tokens import tokenizer_file
from tamis.retrievers.augment import (
    Augmenter,
    AugmentSpec,
    Excluder,
    OverlapConfig,
    RetrieverSpec,
    check_texts,
    clusters_from_links,
    merge_counts,
)
from tamis.retrievers.chunking import ChunkConfig, Chunker, _tokenizer, paragraph_spans

TEXTS = [
    "The quick brown fox jumps over the lazy dog. " * 30,
    "Héllo wörld, ça va? 日本語のテキスト 😀 done.\n\nA second paragraph, short.\n" * 12,
    "",
    "   \n\t ",
    "one",
]


def chunk_texts(cfg: ChunkConfig, texts: list[str]) -> dict[int, list[str]]:
    c = Chunker(cfg).chunk(texts)
    out: dict[int, list[str]] = {}
    for d, n, a, b in zip(c.doc.tolist(), c.number.tolist(), c.start.tolist(), c.end.tolist(), strict=True):
        assert n == len(out.get(d, []))
        out.setdefault(d, []).append(texts[d][a:b])
    return out


@pytest.mark.parametrize("cfg", [ChunkConfig(size=16), ChunkConfig(size=64), ChunkConfig(by="paragraphs", min_chars=50,
                                                                                         max_chars=300)])
def test_chunks_tile_every_document(cfg):
    found = chunk_texts(cfg, TEXTS)
    assert set(found) == {0, 1, 4}  # no chunk for the empty and the blank document
    for d, parts in found.items():
        assert "".join(parts) == TEXTS[d]


def test_token_chunks_hold_size_tokens_each_but_the_last():
    cfg = ChunkConfig(size=16)
    c = Chunker(cfg).chunk(TEXTS[:2])
    tok = _tokenizer(tokenizer_file(cfg.tokenizer))
    for d in (0, 1):
        starts = np.asarray([s for s, _ in tok.encode(TEXTS[d], add_special_tokens=False).offsets])
        mine = c.doc == d
        per_chunk = [int(((starts >= a) & (starts < b)).sum()) for a, b in zip(c.start[mine], c.end[mine], strict=True)]
        assert all(n == 16 for n in per_chunk[:-1]) and 1 <= per_chunk[-1] <= 16
        assert sum(per_chunk) == len(starts)
    capped = Chunker(ChunkConfig(size=16, max_chunks=2)).chunk(TEXTS[:2])
    assert np.bincount(capped.doc).tolist() == [2, 2]


def test_paragraph_chunks_respect_their_bounds():
    cfg = ChunkConfig(by="paragraphs", min_chars=60, max_chars=200)
    text = "\n".join(["short line"] * 10 + ["x" * 450] + ["a word " * 80, "tail"])
    spans = paragraph_spans(text, cfg)
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(b - a <= 200 for a, b in spans)
    sizes = [b - a for a, b in spans]  # short only where joining a neighbour would pass max_chars
    assert all(n >= 60 or n + after > 200 for n, after in zip(sizes, sizes[1:], strict=False))
    assert sizes[-1] >= 60 or sizes[-2] + sizes[-1] > 200
    assert len(spans) >= 5


@settings(max_examples=60, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("ab é\n\n  .日😀")), max_size=400), size=st.integers(1, 12),
       low=st.integers(1, 40), extra=st.integers(0, 60))
def test_any_text_is_tiled(text, size, low, extra):
    for cfg in (ChunkConfig(size=size), ChunkConfig(by="paragraphs", min_chars=low, max_chars=low + extra)):
        parts = chunk_texts(cfg, [text]).get(0, [])
        assert "".join(parts) == (text if parts else "")
        assert bool(parts) == bool(text.strip()) or cfg.by == "tokens"  # punctuation-free text may hold no token


def test_chunk_config_is_checked():
    with pytest.raises(ConfigError, match="min_chars"):
        ChunkConfig(by="paragraphs", min_chars=500, max_chars=100)
    with pytest.raises(ConfigError, match="size"):
        ChunkConfig(size=0)


def test_clusters_join_transitively_with_the_smallest_id_as_representative():
    found = clusters_from_links([("d", "b"), ("c", "d"), ("x", "y"), ("b", None), ("z", "z"), ("e", "c")])
    assert found == {"b": "b", "c": "b", "d": "b", "e": "b", "x": "x", "y": "x"}
    assert clusters_from_links(reversed([("d", "b"), ("c", "d"), ("e", "c")])) == {k: "b" for k in "bcde"}


class Texts:
    def __init__(self, texts: dict[str, str]):
        self.texts = texts

    def get(self, doc_id: str) -> str:
        return self.texts[doc_id]


LONG = " ".join(f"word{i}" for i in range(400))
QUOTE = " ".join(f"word{i}" for i in range(100, 130))


def test_exclusion_reasons_in_order(tmp_path):
    item = "A baker fills nine trays with twelve rolls each and sells all but seven of them by noon"
    (tmp_path / "bench.jsonl").write_text(json.dumps({"id": "q1", "text": item}) + "\n")
    texts = Texts({"me": LONG, "twin": LONG, "quoter": "intro " + QUOTE + " outro " * 50, "other": "unrelated " * 40,
                   "bench": f"Homework help. {item}. Thanks!"})
    bench = build_index(DecontamConfig(enabled=True, ngram=8, benchmarks=[
        BenchmarkSet(name="b", path=str(tmp_path / "bench.jsonl"))]))
    ex = Excluder({"twin": "me", "me": "me"}, texts, OverlapConfig(ngram=5, threshold=0.5), bench)
    ex.prepare({"me", "twin", "quoter", "other", "bench"})
    chunk = ex.chunk_shingles([QUOTE])[0]
    assert [ex.reason("me", chunk, c) for c in ("me", "twin", "bench", "quoter", "other")] == \
        ["self", "near_dup", "contaminated", "overlap", None]
    jaccard = Excluder({}, texts, OverlapConfig(ngram=5, measure="jaccard", threshold=0.5), None)
    jaccard.prepare({"quoter"})
    assert jaccard.reason("me", jaccard.chunk_shingles([QUOTE])[0], "quoter") is None  # a long quoter: low Jaccard


class Scripted:
    """A retriever answering every query with the same ranked list, cut at the depth asked; records the depths."""

    def __init__(self, ranked: list[str]):
        self.ranked, self.depths = ranked, []

    def search(self, queries, k=10):
        self.depths.append(k)
        ids = self.ranked[:k]
        return [ids for _ in queries], [np.linspace(1, 0, len(ids)) for _ in queries]


def spec(**neighbours) -> AugmentSpec:
    return AugmentSpec(inputs=["run"], output="out", retriever=RetrieverSpec(bm25="idx"),
                       chunking=ChunkConfig(size=8), neighbours={"text": False, **neighbours},
                       exclude={"overlap": None, "dup_runs": []})


def test_overfetch_doubles_the_depth_until_k_survive_or_the_index_is_exhausted():
    ranked = ["doc"] + [f"dup{i}" for i in range(9)] + ["n1", "n2", "n3"]
    clusters = {f"dup{i}": "doc" for i in range(9)} | {"doc": "doc"}
    r = Scripted(ranked)
    aug = Augmenter(spec(k=2, overfetch=2, max_depth=64), retriever=r, clusters=clusters)
    rows, counts = aug.augment(pa.table({"id": ["doc"], "text": ["alpha beta gamma"]}))
    assert rows.column("neighbour_ids").to_pylist() == [["n1", "n2"]]
    assert r.depths == [4, 8, 16]  # 4 and 8 candidates were all excluded; 16 reached two survivors
    assert counts["excluded_near_dup"] == 9 and counts["excluded_self"] == 1 and counts["requeried_chunks"] == 2
    short = Scripted(["doc", "n1"])
    rows, counts = Augmenter(spec(k=3, overfetch=1), retriever=short, clusters={}).augment(
        pa.table({"id": ["doc"], "text": ["alpha"]}))
    assert rows.column("neighbour_ids").to_pylist() == [["n1"]] and counts["short_chunks"] == 1
    assert short.depths == [3]  # fewer than asked came back: the index has no more


def test_rows_carry_ids_spans_and_scores():
    r = Scripted(["a", "b", "c"])
    rows, counts = Augmenter(spec(k=2), retriever=r, clusters={}).augment(
        pa.table({"id": ["x", "y"], "text": ["one two three four five six seven eight nine ten", ""]}))
    t = rows.to_pylist()
    assert [row["id"] for row in t] == ["x#0", "x#1"] and [row["chunk"] for row in t] == [0, 1]
    assert t[0]["start"] == 0 and t[0]["end"] == t[1]["start"] and t[1]["end"] == 48
    assert t[0]["neighbour_ids"] == ["a", "b"] and t[0]["neighbour_scores"] == pytest.approx([1.0, 0.5])
    assert merge_counts([counts, counts]) == {"documents": 4, "chunks": 4, "neighbours": 8, "short_chunks": 0,
                                              "requeried_chunks": 0, "retrieval_calls": 2,
                                              "excluded_by_reason": {"self": 0, "near_dup": 0, "contaminated": 0,
                                                                     "overlap": 0}}


def test_configs_are_checked():
    with pytest.raises(ConfigError, match="needs the 'dense' index"):
        RetrieverSpec(kind="hybrid", bm25="a")
    with pytest.raises(ConfigError, match="max_depth"):
        spec(k=5, max_depth=3)
    s = AugmentSpec(inputs=["r"], output="o", retriever=RetrieverSpec(bm25="idx"))
    with pytest.raises(ConfigError, match="store_text"):
        check_texts(s, {"bm25": {"config": {"store_text": False}}})
    check_texts(s, {"bm25": {"config": {"store_text": True}}})
    check_texts(spec(), {"bm25": {"config": {"store_text": False}}})  # nothing that needs texts
