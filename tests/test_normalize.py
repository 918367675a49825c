"""Text normalization: each rule by hand, and the fast path against the rules written as plain regexes."""

import gzip
import itertools
import json
import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.filters.normalize import NormalizeConfig, normalize_batch, normalize_text
from tamis.schema import documents

ON = NormalizeConfig()


def reference(text: str) -> str:
    """The whitespace rules as one regex each: what normalize_text must give, however it gets there."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]", "", text)
    text = re.sub(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]", " ", text)
    text = re.sub(r"(?<=\S)[ \t]{2,}", " ", text)
    text = re.sub(r"[ \t]+$", "", text, flags=re.MULTILINE)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a  b\t\tc \t d", "a b c d"),
        ("    indented  code\n\tstays", "indented code\n\tstays"),  # leading indentation of later lines is kept
        ("x\n    y  z", "x\n    y z"),
        ("line   \nnext\t\n", "line\nnext"),
        ("a\n\n\n\n\nb", "a\n\nb"),
        ("a\r\nb\rc", "a\nb\nc"),
        ("nb\u00a0sp\u3000wide\u2009thin", "nb sp wide thin"),
        ("ctrl\x00\x07\x1b[0m\x7f\x85 end", "ctrl[0m end"),
        ("e\u0301", "\u00e9"),  # NFC
        ("", ""),
        (" \t\n \n", ""),
    ],
)
def test_rules_by_hand(text, expected):
    assert normalize_text(text, ON) == expected == reference(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \t\n\r\u00a0\u3000\x0b\x00é")), max_size=60))
def test_fast_path_equals_the_regex_rules(text):
    assert normalize_text(text, ON) == reference(text)


def test_equals_the_regex_rules_on_real_pages(shared_data):
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in itertools.islice(f, 2000)]
    assert [normalize_text(t, ON) for t in texts] == [reference(t) for t in texts]
    assert sum(t != normalize_text(t, ON) for t in texts) > 100  # the pages exercise the rules


def test_switches_turn_rules_off():
    text = "a  b \x00\n\n\n\nc"
    assert normalize_text(text, NormalizeConfig(whitespace=False)) == "a  b \n\n\n\nc"
    assert normalize_text(text, NormalizeConfig(fix_control=False)) == "a b \x00\n\nc"
    assert normalize_text("e\u0301", NormalizeConfig(unicode_form="none")) == "e\u0301"
    batch = normalize_batch(documents([{"id": "1", "text": "x   y"}]), ON)
    assert batch.column("text").to_pylist() == ["x y"]
