"""c4_quality and fineweb_quality: each rule on hand-made pages, agreement with datatrove on real web text, bad input."""

import gzip
import json

import numpy as np
import pyarrow as pa
import pytest

from tamis.errors import ConfigError
from tamis.filters.chain import apply_chain
from tamis.filters.registry import build
from tamis.filters.sentences import count_sentences
from tamis.filters.text import DocView
from tamis.schema import documents

FIVE = "\n".join(f"Line number {w} says something true." for w in ("one", "two", "three", "four", "five"))


def run(name: str, texts: list[str], **params):
    comp = build(name, params)
    scores = comp.score(DocView(documents([{"id": f"d{i}", "text": t} for i, t in enumerate(texts)])))
    keep, reason = comp.rule(scores)
    return scores, keep, list(reason)


# --- sentences ---------------------------------------------------------------


def test_sentences_start_at_the_first_word_after_a_terminal():
    counts = count_sentences(pa.array(["Wait... what?! Yes.", "", "One. Two", "e.g. this one. (Really.) Yes"]))
    # `...` is punctuation but not a terminal; `?!` end one sentence; an empty text counts one; `e.g.` is a word.
    assert counts.tolist() == [2, 1, 2, 3]


# --- c4_quality --------------------------------------------------------------


def test_c4_removes_lines_by_each_rule_and_rewrites_the_text():
    page = "\n".join(
        [
            "The first sentence is here.",
            "Menu",  # no terminal mark
            "Too short.",  # two words
            "Enable JavaScript to see this page.",
            "Read our Privacy Policy before you go.",
            "Mountains rise in the west.[1] Rivers run east.",  # citation cut, two sentences
            "And then it went on and on...",  # an ellipsis is no terminal
            "  A padded line sits here!  ",
            "Who wrote this line of text?",
            'A quote closes the line: "yes"',
        ]
    )
    scores, keep, reason = run("c4_quality", [page])
    assert keep.tolist() == [True] and reason == [""]
    assert scores["c4_quality.text"][0] == (
        "The first sentence is here.\nMountains rise in the west. Rivers run east.\n"
        'A padded line sits here!\nWho wrote this line of text?\nA quote closes the line: "yes"'
    )
    assert scores["c4_quality.lines"][0] == 10
    assert scores["c4_quality.kept_lines"][0] == 5
    assert scores["c4_quality.sentences"][0] == 5  # at least as many lines as needed: the line count


def test_c4_counts_words_before_cutting_citations():
    # Three chunks before the cut ("Good", "[1]", "[2]."), so the line stays; the cut leaves "Good  .".
    scores, keep, _ = run("c4_quality", ["Good [1] [2].\n" + FIVE])
    assert keep[0]
    assert scores["c4_quality.text"][0].split("\n")[0] == "Good  ."


def test_c4_drops_a_page_for_lorem_ipsum_or_curly_bracket_on_a_surviving_line():
    scores, keep, reason = run(
        "c4_quality",
        [
            FIVE + "\nLorem ipsum dolor sit amet.",
            FIVE + "\nlorem ipsum dolor sit amet",  # no terminal mark: the line goes, the page stays
            "Call f() { return 1; } now.\n" + FIVE,
            "Enable javascript { here.\n" + FIVE,  # a javascript line is removed before the bracket check
            "Here { comes a bracket.\n" + FIVE + "\nLorem ipsum dolor sit amet.",
        ],
    )
    assert reason == ["c4_lorem_ipsum", "", "c4_curly_bracket", "", "c4_curly_bracket"]
    assert scores["c4_quality.lorem_ipsum_line"].tolist() == [5, -1, -1, -1, 6]
    assert scores["c4_quality.curly_bracket_line"].tolist() == [-1, -1, 0, -1, 0]


def test_c4_counts_sentences_in_kept_lines():
    four = "\n".join(FIVE.split("\n")[:4])
    two_long = "It is one. It is two. It is three.\nIt is four. It is five. It is six."
    scores, keep, reason = run("c4_quality", [four, two_long, "Nothing here"])
    assert reason == ["c4_too_few_sentences", "", "c4_too_few_sentences"]
    assert scores["c4_quality.sentences"].tolist() == [4, 6, 0]


def test_c4_parameters_switch_rules():
    js = "Enable JavaScript to see this page.\n" + FIVE
    _, _, reason = run("c4_quality", [js], filter_javascript=False)
    scores, _, _ = run("c4_quality", [js], filter_javascript=False)
    assert reason == [""] and scores["c4_quality.kept_lines"][0] == 6
    scores, keep, _ = run("c4_quality", ["A supercalifragilistic word here.\n" + FIVE], max_word_length=10)
    assert keep[0] and scores["c4_quality.kept_lines"][0] == 5
    _, _, reason = run("c4_quality", ["Only one line here.", "Menu"], min_num_sentences=-1)
    assert reason == ["", "c4_empty"]  # no line left: dropped even with the sentence count off
    scores, _, _ = run("c4_quality", ["Menu\n" + FIVE], filter_no_terminal_punct=False)
    assert scores["c4_quality.kept_lines"][0] == 5  # "Menu" still has too few words
    scores, _, _ = run("c4_quality", ["Menu\n" + FIVE], filter_no_terminal_punct=False, min_words_per_line=-1)
    assert scores["c4_quality.kept_lines"][0] == 6


def test_c4_in_a_chain_rewrites_kept_pages_and_drops_pages_as_read():
    page, bad = "Menu\n" + FIVE, "Nothing to keep\nhere"
    kept, drops = apply_chain([build("c4_quality")], documents([{"id": "a", "text": page}, {"id": "b", "text": bad}]))
    assert kept.column("text").to_pylist() == [FIVE]
    assert "c4_quality.text" not in kept.schema.names
    assert drops[0].column("text").to_pylist() == [bad]
    assert drops[0].column("reason").to_pylist() == ["c4_too_few_sentences"]


# --- fineweb_quality ---------------------------------------------------------


def test_fineweb_scores_by_hand():
    a = "Alpha beta gamma delta epsilon zeta."
    text = f"{a}\nshort\n\n   \n{a}"  # blank lines do not count as lines; newlines do count
    scores, keep, reason = run("fineweb_quality", [text])
    assert scores["fineweb_quality.lines"][0] == 3
    assert scores["fineweb_quality.line_punct_ratio"][0] == pytest.approx(2 / 3)
    assert scores["fineweb_quality.short_line_ratio"][0] == pytest.approx(1 / 3)
    assert scores["fineweb_quality.char_dup_ratio"][0] == pytest.approx(len(a) / (len(text) - 4))
    assert reason == ["fineweb_char_dup_ratio"]
    assert np.isnan(scores["fineweb_quality.newline_ratio"][0])  # not tokenized: a line rule dropped it
    scores, _, reason = run("fineweb_quality", [text], char_duplicates_ratio=0.5)
    assert scores["fineweb_quality.newline_ratio"][0] == pytest.approx(4 / 15)  # 7 + 1 + 7 tokens
    assert reason == [""]


def test_fineweb_drops_by_each_rule():
    prose = [f"This is a longer line of prose, number {i}" for i in range(10)]
    punct = "\n".join(prose[:9] + [prose[9] + "."])  # 1 of 10 lines ends in a terminal
    short = "Yes it is.\nNo it isn't.\nMaybe so.\n" + prose[0] + "."  # 3 of 4 lines at most 30 characters
    words = ["Pneumonoultramicroscopicsilicovolcanoconiosis", "Hippopotomonstrosesquippedaliophobia",
             "Supercalifragilisticexpialidocious", "Antidisestablishmentarianisms"]  # fmt: skip
    listing = "\n".join(w + "." for w in words)  # 3 newlines for 8 tokens
    _, keep, reason = run("fineweb_quality", [punct, short, listing, "", " \n\t\n", ". ".join(prose) + "."])
    assert reason == [
        "fineweb_line_punct_ratio",
        "fineweb_short_line_ratio",
        "fineweb_list_ratio",
        "fineweb_empty",
        "fineweb_empty",
        "",
    ]
    zero = "\n".join(prose)
    _, _, reason = run("fineweb_quality", [zero, punct], line_punct_exclude_zero=True)
    assert reason == ["", "fineweb_line_punct_ratio"]
    _, _, reason = run("fineweb_quality", [punct], stop_chars="0123456789")
    assert reason == [""]  # nine of ten lines end in a digit
    _, _, reason = run("fineweb_quality", [punct], line_punct_thr=0.1)
    assert reason == [""]


# --- agreement with datatrove on real web text -------------------------------


@pytest.fixture(scope="module")
def web_docs(shared_data):
    """Every 40th page of the shared web pool under 2,500 characters, 200 of them (keeps datatrove's side quick)."""
    rows = []
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i % 40 == 0:
                r = json.loads(line)
                if len(r["text"]) < 2500:
                    rows.append({"id": r["id"], "text": r["text"]})
            if len(rows) == 200:
                break
    return rows


def _datatrove_decisions(filter_name: str, rows: list[dict]) -> tuple[np.ndarray, list[str]]:
    import datatrove.pipeline.filters as dt
    from datatrove.data import Document

    flt = getattr(dt, filter_name)()
    keep, texts = [], []
    for r in rows:
        doc = Document(text=r["text"], id=r["id"])
        keep.append(flt.filter(doc) is True)
        texts.append(doc.text)
    return np.array(keep), texts


def test_c4_agrees_with_datatrove(web_docs):
    scores, keep, _ = run("c4_quality", [r["text"] for r in web_docs])
    theirs, texts = _datatrove_decisions("C4QualityFilter", web_docs)
    assert 0 < theirs.sum() < len(web_docs)
    assert (keep == theirs).mean() >= 0.98
    both = np.flatnonzero(keep & theirs)
    same_text = [scores["c4_quality.text"][i] == texts[i] for i in both]
    assert np.mean(same_text) >= 0.98


def test_fineweb_agrees_with_datatrove(web_docs):
    _, keep, _ = run("fineweb_quality", [r["text"] for r in web_docs])
    theirs, _ = _datatrove_decisions("FineWebQualityFilter", web_docs)
    assert 0 < theirs.sum() < len(web_docs)
    assert (keep == theirs).mean() >= 0.98


# --- bad input ---------------------------------------------------------------


def test_empty_and_blank_pages():
    scores, _, reason = run("c4_quality", ["", " \n\t\r\n"])
    assert reason == ["c4_too_few_sentences", "c4_too_few_sentences"]
    assert scores["c4_quality.lines"].tolist() == [0, 2] and scores["c4_quality.text"].tolist() == ["", ""]
    _, _, reason = run("c4_quality", ["", "Menu"], min_num_sentences=-1)
    assert reason == ["c4_empty", "c4_empty"]


def test_ten_megabyte_pages():
    many_lines = "This is a fine sentence of text.\n" * 300_000
    one_word = "x" * 10_000_000 + "."
    scores, keep, reason = run("c4_quality", [many_lines, one_word])
    assert reason == ["", "c4_too_few_sentences"]  # the 10-million-character word removes its line
    assert scores["c4_quality.text"][0] == many_lines.strip()
    _, _, reason = run("fineweb_quality", [many_lines, one_word])
    assert reason == ["fineweb_char_dup_ratio", ""]


@pytest.mark.parametrize(
    "name,params",
    [
        ("c4_quality", {"min_num_sentences": "five"}),
        ("c4_quality", {"min_num_sentences": -2}),
        ("c4_quality", {"filter_policy": 1}),
        ("c4_quality", {"split_paragraph": False}),
        ("fineweb_quality", {"line_punct_thr": "high"}),
        ("fineweb_quality", {"char_duplicates_ratio": 1.5}),
        ("fineweb_quality", {"stop_chars": ""}),
        ("fineweb_quality", {"stop_chars": ["."]}),
        ("fineweb_quality", {"short_line_length": 30.5}),
    ],
)
def test_bad_parameters_are_config_errors(name, params):
    with pytest.raises(ConfigError):
        build(name, params)
