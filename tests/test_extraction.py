"""HTML→text extraction, its token-level F1 metric and `tamis eval extraction`."""

import gzip
import json
import shutil

import pytest

from tamis.cli import main
from tamis.errors import ConfigError, InputError
from tamis.eval.extraction import load_set
from tamis.eval.metrics import PRF, mean_prf, token_prf, tokens
from tamis.io.html import DEFAULT, EXTRACTORS, decode_html, extract


# --- metric: hand-computed cases ---------------------------------------------------------------
def test_tokens_lowercase_word_runs():
    assert tokens("Hello, World! Ça-va 42") == ["hello", "world", "ça", "va", "42"]


def test_token_prf_partial_overlap():
    s = token_prf("The cat sat", "the cat")  # tp=2, |pred|=2, |truth|=3
    assert s.precision == 1.0
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(0.8)


def test_token_prf_counts_multisets():
    s = token_prf("a a b", "a b b c")  # tp = min(2,1) + min(1,2) = 2
    assert (s.precision, s.recall, s.f1) == pytest.approx((2 / 4, 2 / 3, 4 / 7))


def test_token_prf_edge_cases():
    assert token_prf("", "") == PRF(1.0, 1.0, 1.0)
    assert token_prf("some text", "") == PRF(0.0, 0.0, 0.0)
    assert token_prf("", "invented text") == PRF(0.0, 0.0, 0.0)
    assert token_prf("Hello, world.", "hello WORLD") == PRF(1.0, 1.0, 1.0)


def test_mean_prf_is_macro_average():
    m = mean_prf([PRF(1.0, 0.5, 2 / 3), PRF(0.0, 0.0, 0.0)])
    assert (m.precision, m.recall, m.f1) == pytest.approx((0.5, 0.25, 1 / 3))
    with pytest.raises(ValueError):
        mean_prf([])


# --- extractors on real pages ------------------------------------------------------------------
@pytest.fixture(scope="module")
def real_pages(shared_data):
    return load_set(shared_data / "curation" / "extraction")[:5]


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_extractor_on_real_pages(real_pages, name):
    f1 = [token_prf(p.text, extract(p.html, url=p.url, extractor=name)).f1 for p in real_pages]
    assert min(f1) > 0.6, f1
    assert sum(f1) / len(f1) > 0.85, f1


def test_default_keeps_paragraphs_and_drops_headline(real_pages):
    page = real_pages[0]
    text = extract(page.html, url=page.url)
    assert "\n" in text
    assert "<" not in text and "script" not in text.lower().split()


SENTENCES = "<p>" + "The council voted on Tuesday to expand the library budget next year, officials said. " * 3 + "</p>"
ARTICLE = (
    "<article><div>Advertisement</div>" + SENTENCES + "<h2>What comes next</h2>" + SENTENCES
    + '<div class="c-credit">Photo by Jane Roe for Example Images</div>' + SENTENCES + "<p>Updated Monday</p></article>"
)  # fmt: skip


def _tags_only(html: str) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    from tamis.io.html import _SKIP_TAGS_ONLY

    return extract_plain_text(HTMLTree.parse(html), main_content=True, skip_elements=_SKIP_TAGS_ONLY)


def test_default_prunes_boilerplate_and_trims_edges():
    html = f"<html><body>{ARTICLE}</body></html>"
    assert "Jane Roe" in _tags_only(html)  # the class rule, not resiliparse, removes the credit
    text = extract(html)
    assert "Jane Roe" not in text
    assert text.startswith("The council") and text.endswith("officials said.")  # edge leftovers trimmed
    assert "\nWhat comes next\n" in text  # a short line inside the text is a subhead: kept


def test_class_rule_hitting_the_whole_article_falls_back_to_tag_rules():
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    from tamis.io.html import _SKIP

    html = f'<html><body><div class="page-header-wrapper">{ARTICLE}</div></body></html>'
    assert extract_plain_text(HTMLTree.parse(html), main_content=True, skip_elements=_SKIP).strip() == ""
    assert extract(html).count("The council voted") == 9


def test_unknown_extractor_is_a_config_error():
    with pytest.raises(ConfigError):
        extract("<p>x</p>", extractor="nope")


# --- bad input never raises --------------------------------------------------------------------
BAD = {
    "empty bytes": b"",
    "empty str": "",
    "whitespace": "  \n\t ",
    "binary garbage": bytes(range(256)) * 64,
    "nul bytes": b"\x00" * 1000,
    "not html": "just some words, no tags at all",
    "unclosed tags": "<html><body><div><p>Unclosed paragraph with words<div><span>more",
    "deep nesting": "<div>" * 5000 + "deep text" + "</div>" * 10,
    "lone surrogate": "<p>bad \ud800 char</p>",
}


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_returns_text_without_raising(name, case):
    out = extract(BAD[case], extractor=name)
    assert isinstance(out, str)
    assert not any(ord(c) < 32 and c not in "\t\n" for c in out), repr(out[:80])
    if case.startswith(("empty", "whitespace", "nul")):
        assert out == ""
    if case == "unclosed tags":
        assert "Unclosed paragraph with words" in out
    if case == "lone surrogate" and name.startswith("resiliparse"):
        assert out.startswith("bad") and out.endswith("char")


@pytest.mark.parametrize("name", sorted(EXTRACTORS))
def test_truncated_page_keeps_its_start(real_pages, name):
    page = real_pages[1]
    cut = page.html[: len(page.html) // 2]
    full = extract(page.html, url=page.url, extractor=name)
    out = extract(cut, url=page.url, extractor=name)
    assert len(out.split()) > 50
    assert full.startswith(out[:200])


PAGE = "<html><head>{meta}</head><body><article><p>{text}</p></article></body></html>"
WORDS = "Le café et la crème brûlée sont délicieux, dit l'élève à Noël. " * 5


def test_non_utf8_bytes_follow_the_meta_charset():
    data = PAGE.format(meta='<meta charset="windows-1252">', text=WORDS).encode("cp1252")
    assert "crème brûlée" in extract(data)


def test_non_utf8_bytes_follow_the_http_charset():
    data = PAGE.format(meta="", text=WORDS).encode("latin-1")
    assert "crème brûlée" in extract(data, encoding="ISO-8859-1")
    assert "crème brûlée" in extract(data, encoding='text/html; charset="iso-8859-1"')


def test_stale_latin1_header_over_utf8_body_decodes_as_utf8():
    data = PAGE.format(meta="", text=WORDS).encode("utf-8")
    assert "crème brûlée" in extract(data, encoding="iso-8859-1")


def test_decode_html_edge_cases():
    assert decode_html("é".encode("utf-16"), None) == "é"  # BOM
    assert decode_html("é".encode("utf-16-le"), "utf-16le") == "é"
    assert decode_html("é".encode("utf-8-sig"), "cp1252") == "é"
    assert decode_html(b"caf\xe9", "no-such-charset")  # undecodable label: detect, never raise
    assert "\ufffd" not in decode_html(b"plain ascii", "bogus")


def test_warcio_payload_with_charset(shared_data):
    """What tamis.io.readers hands over: the HTTP body of a response record and its charset."""
    from warcio.archiveiterator import ArchiveIterator

    texts = []
    with open(shared_data / "curation" / "warc" / "dolma_sample-0000.warc.gz", "rb") as f:
        for record in ArchiveIterator(f):
            if record.rec_type != "response" or len(texts) == 3:
                continue
            ctype = record.http_headers.get_header("Content-Type") or ""
            if ctype.startswith("text/html"):
                texts.append(extract(record.content_stream().read(), url=None, encoding=ctype))
    assert len(texts) == 3 and all(len(t.split()) > 5 for t in texts), texts


# --- `tamis eval extraction` end to end --------------------------------------------------------
@pytest.fixture
def small_set(shared_data, tmp_path):
    src = shared_data / "curation" / "extraction"
    rows = [json.loads(line) for line in (src / "ground_truth.jsonl").read_text().splitlines()[:3]]
    (tmp_path / "html").mkdir()
    for row in rows:
        shutil.copy(src / row["html_path"], tmp_path / row["html_path"])
    (tmp_path / "ground_truth.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path, rows


def test_eval_extraction_json(small_set, capsys):
    folder, rows = small_set
    assert main(["eval", "extraction", "--set", str(folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["pages"] == 3 and result["extractor"] == DEFAULT
    expected = mean_prf(
        token_prf(r["text"], extract(gzip.decompress((folder / r["html_path"]).read_bytes()), url=r["url"]))
        for r in rows
    )
    assert result["f1"] == pytest.approx(expected.f1, abs=1e-4)
    assert result["precision"] == pytest.approx(expected.precision, abs=1e-4)
    assert result["recall"] == pytest.approx(expected.recall, abs=1e-4)
    assert result["pages_per_s"] > 0


def test_eval_extraction_table_and_other_extractor(small_set, capsys):
    folder, _ = small_set
    assert main(["eval", "extraction", "--set", str(folder), "--extractor", "resiliparse"]) == 0
    out = capsys.readouterr().out
    assert "resiliparse" in out and "F1" in out


def test_eval_extraction_bad_sets(tmp_path, small_set, capsys):
    assert main(["eval", "extraction", "--set", str(tmp_path / "missing"), "--json"]) == InputError.exit_code
    assert "ground_truth.jsonl" in capsys.readouterr().err
    folder, _ = small_set
    with open(folder / "ground_truth.jsonl", "a") as f:
        f.write('{"html_path": "html/absent.html.gz", "text": "x"}\n')
    with pytest.raises(InputError, match="absent"):
        load_set(folder)
    (folder / "ground_truth.jsonl").write_text("not json\n")
    with pytest.raises(InputError, match=":1:"):
        load_set(folder)
