"""langid: the bundled lid.176 model on real pages of several languages, the rule, bad input."""

import gzip
import json
import re

import numpy as np
import pytest

from tamis.errors import ConfigError, ResourceError
from tamis.filters.langid import MODEL
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.schema import documents

# Country domains of the web pool whose pages are mostly in one language.
TLD_LANGUAGE = {"de": "de", "at": "de", "fr": "fr", "pl": "pl", "ru": "ru", "jp": "ja", "br": "pt"}


def view(*texts: str) -> DocView:
    return DocView(documents([{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]))


@pytest.fixture(scope="module")
def pages_by_language(shared_data):
    """Pool pages of 500+ characters whose URL has one of the country domains above, by expected language."""
    out: dict[str, list[str]] = {}
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            m = re.match(r"https?://[^/:]*\.([a-z]{2})(?:[:/]|$)", r.get("url") or "")
            if m and m.group(1) in TLD_LANGUAGE and len(r["text"]) >= 500:
                out.setdefault(TLD_LANGUAGE[m.group(1)], []).append(r["text"])
    return out


def test_real_pages_get_their_country_language(pages_by_language):
    assert set(pages_by_language) == set(TLD_LANGUAGE.values())
    for language, texts in pages_by_language.items():
        scores = build("langid").score(view(*texts[:100]))
        found = scores["langid.language"]
        assert np.mean(found == language) >= 0.8, (language, found.tolist())
        assert np.all((scores["langid.confidence"] >= 0) & (scores["langid.confidence"] <= 1))


def test_rule_keeps_listed_confident_languages():
    texts = [
        "The committee will publish its final report on the new railway line next spring.",
        "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnstrecke im Frühjahr veröffentlichen.",
        "12 34 ## 56",
        "",
    ]
    scores, keep, reason = build("langid", {"languages": ["en"], "min_confidence": 0.65}).apply(view(*texts))
    assert scores["langid.language"][:2].tolist() == ["en", "de"]
    assert scores["langid.language"][3] == "" and scores["langid.confidence"][3] == 0.0
    assert keep.tolist() == [True, False, False, False]
    assert reason[1] == "language" and reason[3] == "low_language_confidence"
    assert build("langid").apply(view(*texts[:2]))[1].tolist() == [True, True]  # no list: any language


def test_newlines_do_not_cut_the_text():
    """fastText refuses text with a newline; joined into one line, the German majority decides."""
    german = "Der Ausschuss wird seinen Abschlussbericht über die neue Bahnstrecke veröffentlichen. " * 5
    scores = build("langid").score(view("Hello\n" + german.replace(". ", ".\n")))
    assert scores["langid.language"][0] == "de"


def test_ten_megabyte_document_and_replacement_characters():
    big = "Die neue Bahnstrecke verbindet die beiden Städte in weniger als einer Stunde. " * 130_000
    scores, keep, _ = build("langid").apply(view(big[:10_000_000], "\ufffd" * 500))
    assert scores["langid.language"][0] == "de" and keep.shape == (2,)


def test_bad_parameters_and_missing_model(tmp_path):
    for params in ({"languages": "en"}, {"languages": ["english"]}, {"min_confidence": 1.5}, {"min_confidence": "x"}):
        with pytest.raises(ConfigError):
            build("langid", params)
    with pytest.raises(ResourceError):
        build("langid", {"model_path": str(tmp_path / "lid.176.ftz")})
    assert MODEL.is_file() and (MODEL.parent / "NOTICE.md").is_file()
