"""The batch tokenizer against spaCy English tokens written out by hand, and the shared accessors."""

import re

import numpy as np
import pyarrow as pa
import pytest

from tamis.filters import words as W
from tamis.filters.text import DocView
from tamis.schema import documents

# What spaCy 3's blank English tokenizer gives for each text.
SPACY = [
    ("The end.", ["The", "end", "."]),
    ("x-ray and COVID-19", ["x", "-", "ray", "and", "COVID-19"]),
    ("a/b /usr w/ micro- -23.6", ["a", "/", "b", "/usr", "w/", "micro-", "-23.6"]),
    ('(hello) "quoted"', ["(", "hello", ")", '"', "quoted", '"']),
    ("don't it's I'm", ["do", "n't", "it", "'s", "I", "'m"]),
    ("e.g. U.S. p.m. Mr. Smith p.", ["e.g.", "U.S.", "p.m.", "Mr.", "Smith", "p."]),
    ("1,000.50 10km $5 3.5", ["1,000.50", "10", "km", "$", "5", "3.5"]),
    ("http://x.com/a-b. www.example.com", ["http://x.com/a-b", ".", "www.example.com"]),
    ("in 2008) word... O'Brien AT&T", ["in", "2008", ")", "word", "...", "O'Brien", "AT&T"]),
    ("f(x)$. x^{3}$ \\frac{1}{10}$.", ["f(x)$.", "x^{3}$", "\\frac{1}{10}$."]),
    ("said.He .NET |---|---| 1990–2005", ["said", ".", "He", ".NET", "|---|---|", "1990–2005"]),
    ("dont cannot gonna", ["do", "nt", "can", "not", "gon", "na"]),
]


@pytest.mark.parametrize(("text", "tokens"), SPACY)
def test_tokens_match_spacy(text, tokens):
    assert W.split_words(pa.array([text])).values.to_pylist() == tokens


def test_batch_offsets_and_empty_rows():
    texts = ["a b", "", None, " \u3000\n", "c"]
    seg = W.split_words(pa.array(texts, pa.string()))
    assert seg.values.to_pylist() == ["a", "b", "c"]
    assert seg.offsets.tolist() == [0, 2, 2, 2, 2, 3]
    assert seg.rows.tolist() == [0, 0, 4]


def test_lines_and_pieces_follow_python():
    texts = ["a\nb\n", "", "x\r\ny\x0bz\u2028\n\n", "solo", "\n", "a\n\nb"]
    docs = DocView(documents([{"id": str(i), "text": t} for i, t in enumerate(texts)]))
    lines, pieces = W.lines(docs), W.pieces(docs, r"\n+")
    for i, text in enumerate(texts):
        assert lines.values.to_pylist()[lines.offsets[i] : lines.offsets[i + 1]] == text.splitlines()
        assert pieces.values.to_pylist()[pieces.offsets[i] : pieces.offsets[i + 1]] == re.split("\n+", text)
    assert W.char_counts(docs).tolist() == [len(t) for t in texts]
    assert W.words(docs) is W.words(docs)  # computed once per batch, shared by every filter


def test_take_keeps_per_row_entries_equal_to_recomputing():
    texts = ["a b.\nc", "", "x-ray\n\nsaid.He", None, "one\n two three", "solo"]
    docs = DocView(documents([{"id": str(i), "text": t} for i, t in enumerate(texts)]))
    before = (W.words(docs), W.lines(docs), W.pieces(docs, r"\n+"), W.char_counts(docs), docs.texts)
    W.word_lengths(docs)  # per token, not per row: recomputed after take
    rows = np.array([0, 2, 4])
    taken = docs.take(rows)
    fresh = DocView(docs.batch.take(pa.array(rows)))
    assert taken.batch.equals(fresh.batch)
    assert "words.en.lengths" not in taken._cache
    for get in (W.words, W.lines, lambda d: W.pieces(d, r"\n+")):
        mine, theirs = get(taken), get(fresh)
        assert mine.values.to_pylist() == theirs.values.to_pylist()
        assert mine.offsets.tolist() == theirs.offsets.tolist()
    assert W.words(taken) is taken._cache["words.en"]  # carried, not recomputed
    assert W.char_counts(taken).tolist() == W.char_counts(fresh).tolist()
    assert taken.texts == fresh.texts
    assert W.word_lengths(taken).tolist() == W.word_lengths(fresh).tolist()
    assert len(before[0].offsets) == len(texts) + 1  # the source view is left as it was
    assert docs.take(np.array([], dtype=np.int64)).texts == []
