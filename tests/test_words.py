"""The batch tokenizer against spaCy English tokens written out by hand, and the shared accessors."""

import re

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
