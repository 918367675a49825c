"""HTML → main text for web pages (WARC responses), by a named extractor.

Default: `resiliparse_pruned`, chosen by measurement (`benchmarks/extraction.py`,
`docs/extraction.md`) on the article-extraction-benchmark pages in
`../shared/data/curation/extraction/` (125 pages, mean token-level F1, one core):

    extractor            F1     speed vs trafilatura (same run; noisy shared machine)
    resiliparse          0.894  ~11-14x  main_content=True, as the benchmark runs it
    trafilatura          0.950  1x       trafilatura.extract defaults (40-75 pages/s here)
    trafilatura_fast     0.969  ~1.2-2x  fast=True, no comments, favor_recall
    resiliparse_pruned   0.968  ~6x      main_content plus the pruning below

Why it is the default: trafilatura_fast's F1 (0.968 vs 0.969, beating
trafilatura's default 0.950) at about half of resiliparse's speed, 3x
trafilatura_fast's. resiliparse's main-content heuristics keep high recall
(0.99) but let headlines, captions, bylines, share/consent/newsletter boxes,
menus and user comments through (precision 0.83). Skipping those by tag and by
generic class/id words lifts precision to 0.96 at 0.986 recall. Class/id
substrings also hit whole-article containers ("page-header-wrapper"): alone
they drop F1 to 0.896, so a safeguard keeps the tag-rules-only text whenever
the class/id rules remove more than half of it, at the cost of a second text
pass over the same parsed tree (about half resiliparse's speed). The rules are
generic (no site names) but were picked by reading errors on this set, the
development split; both halves of it (by page hash) gain alike over plain
resiliparse (0.904 -> 0.972, 0.886 -> 0.965), yet a held-out split is the
real test. Ablation: docs/extraction.md.

Bytes are decoded in this order: a BOM; strict UTF-8, even before the
declared charset, since headers often keep a stale ISO-8859-1/cp1252 default
over a UTF-8 body while non-UTF-8 text with non-ASCII bytes is almost never
valid UTF-8; the charset the caller passes (HTTP Content-Type); the page's
meta charset or uchardet's guess, with invalid bytes as U+FFFD. A declared
UTF-16/32 goes first, as its ASCII subset is valid UTF-8 by accident.

`extract` never raises on bad input (empty, binary, truncated, mis-encoded):
it returns "" when nothing readable remains. The pipeline sends a document
left empty (here: a page with no main text) to `dropped/` with reason
`empty_text` at the normalize stage, not to `errors/`: the record was read fine.
"""

import codecs
import logging
from collections.abc import Callable

from tamis.errors import ConfigError

log = logging.getLogger(__name__)

# Boilerplate that resiliparse's main-content heuristics keep: the headline (articles repeat it in
# <title>), media captions, fine print and page chrome; then class/id substrings of consent, sign-up,
# sharing, credit, byline and menu boxes, which match BEM-style names ("c-caption", "cookie-banner").
_SKIP_TAGS = ["h1", "figure", "figcaption", "header", "footer", "nav", "aside", "small"]
_SKIP_WORDS = [
    "caption", "cookie", "consent", "newsletter", "subscribe", "share", "credit", "print",
    "banner", "menu", "footer", "widget", "header", "author", "modal",
]  # fmt: skip
# one selector list each: lexbor compiles and matches it in one pass
_SKIP = [", ".join(_SKIP_TAGS + [f'[{attr}*="{w}"]' for w in _SKIP_WORDS for attr in ("class", "id")])]
_SKIP_TAGS_ONLY = [", ".join(_SKIP_TAGS)]
# A substring rule can hit a container of the whole article ("header-wrapper", "no-sidebar"): when
# the class/id rules remove more than half of what the tag rules alone keep, the tag-only text wins.
_KEEP_AT_LEAST = 0.5
# Lines at the start or end of the text that are short and do not end a sentence are leftovers
# (section labels, datelines, "Advertisement", share prompts); inside the text they are subheads.
_EDGE_MIN_WORDS = 6
_SENTENCE_END = tuple(".!?\"'”’…:)»。")


def _resiliparse(html: str, url: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    return extract_plain_text(HTMLTree.parse(html), main_content=True)


def _trim_edges(text: str) -> str:
    lines = text.split("\n")
    keep = [i for i, line in enumerate(lines) if _is_body_line(line.strip())]
    return "\n".join(lines[keep[0] : keep[-1] + 1]) if keep else text  # all short: nothing to tell apart


def _is_body_line(line: str) -> bool:
    return bool(line) and (line.endswith(_SENTENCE_END) or len(line.split()) >= _EDGE_MIN_WORDS)


def _resiliparse_pruned(html: str, url: str | None) -> str:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    options = dict(preserve_formatting=True, main_content=True, alt_texts=False, comments=False, post_meta=False)
    text = extract_plain_text(tree, skip_elements=_SKIP, **options)
    tags_only = extract_plain_text(tree, skip_elements=_SKIP_TAGS_ONLY, **options)
    if len(text.split()) < _KEEP_AT_LEAST * len(tags_only.split()):
        text = tags_only
    return _trim_edges(text)


def _trafilatura(html: str, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url) or ""


def _trafilatura_fast(html: str, url: str | None) -> str:
    import trafilatura

    return trafilatura.extract(html, url=url, fast=True, include_comments=False, favor_recall=True) or ""


EXTRACTORS: dict[str, Callable[[str, str | None], str]] = {
    "resiliparse_pruned": _resiliparse_pruned,
    "resiliparse": _resiliparse,
    "trafilatura": _trafilatura,
    "trafilatura_fast": _trafilatura_fast,
}
DEFAULT = "resiliparse_pruned"

_WIDE = ("utf-16", "utf-32")
# C0 controls other than tab and newline: never text, but binary garbage parses to them
_CONTROL = dict.fromkeys(c for c in range(32) if c not in (9, 10))


def check_extractor(name: str) -> None:
    """Raise ConfigError for an unknown extractor name (call it when a config is loaded)."""
    if name not in EXTRACTORS:
        raise ConfigError(
            f"The 'extractor' parameter must be one of {sorted(EXTRACTORS)}. Got {name!r} instead.",
            hint=f"use {DEFAULT!r} (the measured default) or leave 'extractor' out",
        )


def _codec(label: str | None) -> str | None:
    """A Python codec name for a charset label ('"ISO-8859-1"', or a whole Content-Type), None if unknown."""
    if not label:
        return None
    from resiliparse.parse.encoding import map_encoding_to_html5

    label = label.lower().rpartition("charset=")[2].split(";")[0].strip().strip("'\"")
    whatwg = map_encoding_to_html5(label, fallback_utf8=False)  # as browsers do: latin-1 means cp1252
    try:
        return codecs.lookup(whatwg).name if whatwg else None
    except LookupError:
        return None


def decode_html(data: bytes, encoding: str | None = None) -> str:
    """Bytes → str in the order given in the module docstring; never raises."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            return data.decode(codec, errors="replace")
    declared = _codec(encoding)
    if declared and declared.startswith(_WIDE):
        return data.decode(declared, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if declared:
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            log.debug("declared charset %s does not decode the page; detecting", encoding)
    from resiliparse.parse.encoding import detect_encoding

    detected = _codec(detect_encoding(data, from_html_meta=True)) or "cp1252"
    return data.decode(detected, errors="replace")


def extract(html: str | bytes, url: str | None = None, extractor: str = DEFAULT, encoding: str | None = None) -> str:
    """Main text of one page ("" if none); `encoding` is the HTTP charset for bytes input, if known.

    Raises ConfigError only for an unknown extractor name; bad HTML gives "" or whatever text survives.
    """
    check_extractor(extractor)
    try:
        if isinstance(html, bytes | bytearray | memoryview):
            html = decode_html(bytes(html), encoding)
        else:  # lone surrogates (from lenient JSON) make the parsers fail; keep the rest of the page
            html = html.encode("utf-8", errors="replace").decode("utf-8")
        if not html.strip():
            return ""
        return EXTRACTORS[extractor](html, url).translate(_CONTROL).strip()
    except Exception as e:  # parsers raise many types on hostile input; the contract is "no text", not a crash
        log.debug("extraction with %s failed on %s: %s: %s", extractor, url, type(e).__name__, e)
        return ""
