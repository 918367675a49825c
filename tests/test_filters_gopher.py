"""Gopher quality and repetition filters: each rule on hand-made text, exactness of the
repetition statistics, agreement with datatrove on real web documents, bad input."""

import gzip
import itertools
import json
import random
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tamis.errors import ConfigError
from tamis.filters.chain import apply_chain
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.filters.words import Segments
from tamis.schema import documents


def view(*texts: str) -> DocView:
    return DocView(documents([{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]))


def run(name: str, *texts: str, **params):
    return build(name, params).apply(view(*texts))


# --- gopher_quality -----------------------------------------------------------------------

KEEP = " ".join(["the", "house", "with", "garden"] * 15) + "."  # 60 words of mean length 4.5


def test_quality_scores_by_hand():
    text = " ".join(["the", "cat", "sat", "with", "a", "dog"] * 10) + "."
    scores, keep, reason = run("gopher_quality", text)
    assert scores["gopher_quality.word_count"][0] == 60  # the final "." is punctuation, not a word
    assert scores["gopher_quality.mean_word_length"][0] == pytest.approx(17 / 6)
    assert scores["gopher_quality.alpha_word_fraction"][0] == pytest.approx(60 / 61)
    assert scores["gopher_quality.stop_word_count"][0] == 2  # the, with
    assert reason.tolist() == ["gopher_below_avg_threshold"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (KEEP, ""),
        ("the cat with a hat.", "gopher_short_doc"),
        (KEEP + " # # # # # #", ""),  # 6 of 67 tokens are '#': 0.0896
        (KEEP + " # # # # # # #", "gopher_too_many_hashes"),  # 7 of 68: 0.103
        ("\n".join(["- the house with a garden and trees"] * 10), "gopher_too_many_bullets"),
        (
            "\n".join(["the house with a garden and trees..."] * 4 + ["the house with a garden and trees"] * 6),
            "gopher_too_many_end_ellipsis",
        ),  # fmt: skip
        (KEEP + " 123" * 20, "gopher_below_alpha_threshold"),  # 60 of 81 tokens hold a letter
        (" ".join(["The", "house", "garden", "green"] * 15), "gopher_few_stop_words"),  # case-sensitive
    ],
)
def test_quality_rules(text, expected):
    assert run("gopher_quality", text)[2].tolist() == [expected]


def test_quality_rule_turned_off_and_bounds_configurable():
    no_stop = " ".join(["The", "house", "garden", "green"] * 15)
    assert run("gopher_quality", no_stop, min_stop_words=None)[1].tolist() == [True]
    assert run("gopher_quality", KEEP, max_doc_words=59)[2].tolist() == ["gopher_long_doc"]


# --- gopher_repetition --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "column", "value"),
    [
        ("a\nb\na\nc", "dup_line_frac", 1 / 4),
        ("a\nb\na\nc", "dup_line_char_frac", 1 / 7),
        ("foo bar\n\nfoo bar\n\nbaz", "dup_para_frac", 1 / 3),
        ("foo bar\n\nfoo bar\n\nbaz", "dup_para_char_frac", 7 / 21),
        ("a b a b c", "top_2_gram_char_frac", 6 / 9),  # "a b" twice
        ("x y y x", "top_2_gram_char_frac", 3 / 7),  # all once: the first seen wins
        ("a b c d e a b c d e", "dup_5_gram_char_frac", 5 / 19),  # one repeat, "abcde"
        ("a b c d e a b c d e", "dup_6_gram_char_frac", 0.0),
    ],
)
def test_repetition_scores_by_hand(text, column, value):
    assert run("gopher_repetition", text)[0][f"gopher_repetition.{column}"][0] == pytest.approx(value)


def test_repetition_reasons():
    assert run("gopher_repetition", "foo bar\n\nfoo bar\n\nbaz")[2].tolist() == ["gopher_dup_para_frac"]
    assert run("gopher_repetition", "")[2].tolist() == ["gopher_empty"]
    assert run("gopher_repetition", "a b a b c", top_n_grams={2: 0.7})[1].tolist() == [True]


def test_repetition_statistics_equal_datatrove_definitions():
    """Exact against datatrove's own n-gram functions, on whitespace tokens with many ties and repeats."""
    rep = pytest.importorskip("datatrove.pipeline.filters.gopher_repetition_filter")
    rng = random.Random(0)
    texts = []
    for _ in range(300):
        vocab = ["a", "bb", "ccc", "d", "ee"][: rng.randint(1, 5)]
        texts.append(" ".join(rng.choice(vocab) for _ in range(rng.randint(0, 40))))
    docs = view(*texts)
    docs.cached("words.en", lambda d: Segments.from_lists(pc.utf8_split_whitespace(pa.array(texts))))
    scores = build("gopher_repetition").score(docs)
    for i, text in enumerate(texts):
        words, chars = text.split(), max(len(text), 1)
        for n in (2, 3, 4):
            grams = rep.get_n_grams(words, n)
            expected = rep.find_top_duplicate(grams) / chars if grams else 0.0
            assert scores[f"gopher_repetition.top_{n}_gram_char_frac"][i] == pytest.approx(expected), (text, n)
        for n in range(5, 11):
            expected = rep.find_all_duplicate(words, n) / chars
            assert scores[f"gopher_repetition.dup_{n}_gram_char_frac"][i] == pytest.approx(expected), (text, n)
        lines = re.split("\n+", text)
        assert scores["gopher_repetition.dup_line_frac"][i] == rep.find_duplicates(lines)[0] / len(lines)


# --- against datatrove on real web documents ----------------------------------------------


@pytest.fixture(scope="module")
def pool_sample(shared_data):
    """150 pool documents under 3,000 characters, a seeded sample across sources."""
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    random.Random(1).shuffle(rows)
    return [{"id": r["id"], "text": r["text"]} for r in rows if len(r["text"]) < 3000][:150]


@pytest.mark.parametrize(
    ("name", "peer"), [("gopher_quality", "GopherQualityFilter"), ("gopher_repetition", "GopherRepetitionFilter")]
)
def test_agrees_with_datatrove_on_real_documents(name, peer, pool_sample):
    filters = pytest.importorskip("datatrove.pipeline.filters")
    from datatrove.data import Document

    theirs = getattr(filters, peer)()
    _, keep, _ = build(name).apply(DocView(documents(pool_sample)))
    expected = [theirs.filter(Document(text=r["text"], id=r["id"])) is True for r in pool_sample]
    assert 0 < sum(expected) < len(expected)  # the sample exercises both decisions
    assert np.mean(keep == np.array(expected)) >= 0.97


def test_chain_reusing_split_text_decides_as_fresh_views(pool_sample):
    """apply_chain hands each filter the survivors' cached words and lines; the decisions and
    scores must be those of every filter scoring a fresh view of what reaches it."""
    chain = [build(n) for n in ("gopher_repetition", "gopher_quality", "c4_quality", "fineweb_quality")]
    kept, drops = apply_chain(chain, documents(pool_sample))
    batch, reasons = documents(pool_sample), []
    for comp in chain:
        scores, keep, reason = comp.apply(DocView(batch))
        if comp.col("text") in scores:
            batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(scores[comp.col("text")]))
        reasons += [r for r in reason if r]
        batch = batch.filter(pa.array(keep))
    assert len(drops) >= 2 and kept.num_rows < len(pool_sample)
    assert kept.column("id").to_pylist() == batch.column("id").to_pylist()
    assert kept.column("text").equals(batch.column("text"))
    assert sorted(r for d in drops for r in d.column("reason").to_pylist()) == sorted(reasons)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kept"),
    [("gopher_quality", [False, False, False, False]), ("gopher_repetition", [False, True, False, False])],
)
def test_empty_blank_and_replacement_characters(name, kept):
    # U+FFFD is a symbol: a token of its own, as in spaCy, so the last text has 8 tokens of mean
    # length 23/8 (below 3) repeated 20 times; repetition keeps blank text (only "" is empty).
    texts = ["", " \n\t ", "\ufffd" * 300, "caf\ufffd du march\ufffd with the best " * 20]
    scores, keep, reason = run(name, *texts)
    assert keep.tolist() == kept and all(reason[~keep])
    for values in scores.values():
        assert np.isfinite(np.asarray(values, dtype=np.float64)).all()


def test_ten_megabyte_document(shared_data):
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        parts = list(itertools.islice((json.loads(line)["text"] for line in f), 4000))
    big = "\n\n".join(parts)
    big = big[:10_000_000] if len(big) >= 10_000_000 else (big * (10_000_000 // len(big) + 1))[:10_000_000]
    docs = view(big, KEEP)
    assert build("gopher_quality").apply(docs)[2].tolist() == ["gopher_long_doc", ""]
    scores, keep, _ = build("gopher_repetition").apply(docs)
    assert keep.shape == (2,) and scores["gopher_repetition.chars"].tolist() == [10_000_000, len(KEEP)]


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("gopher_quality", {"min_doc_words": "50"}),
        ("gopher_quality", {"stop_words": "the"}),
        ("gopher_quality", {"min_alpha_words_ratio": 80}),
        ("gopher_quality", {"max_words": 10}),
        ("gopher_repetition", {"top_n_grams": {"2": 0.2}}),
        ("gopher_repetition", {"dup_n_grams": {5: "high"}}),
        ("gopher_repetition", {"dup_line_frac": [0.3]}),
    ],
)
def test_bad_parameters_are_config_errors(name, params):
    with pytest.raises(ConfigError):
        build(name, params)
