"""PII redaction for text: e-mail addresses, IP addresses and phone numbers become typed placeholders.

The scorer returns the redacted text as `pii.text`, which the filter chain
(tamis.filters.chain.apply_chain) swaps in for the document text, plus one
count column per kind. Placeholders are `<EMAIL>`, `<IP_ADDRESS>`, `<PHONE_NUMBER>`.

Precision matters as much as recall: redacting a version number, a date or a
C++ `std::map` damages good text. So IPv4 skips dotted quads inside longer
dotted numbers or after "version"; IPv6 needs `::` or eight groups and a
digit; a phone number needs 10 to 15 digits (8 with a `+` country code or an
area code in parentheses), separators used consistently, and is not a date.
Kinds run in the order e-mail, IPv6, IPv4, phone, each on the previous output.
Every pattern has bounded repeats and no nested quantifiers, so it is linear.
"""

import re
from collections.abc import Callable

import numpy as np
from pydantic import Field

from tamis.errors import ConfigError
from tamis.filters.base import Scorer
from tamis.filters.registry import register
from tamis.filters.text import DocView

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"[A-Za-z]{2,24}(?![\w-])"
)
# Candidates first, checked in Python after: a pattern that opens with a character class (not a look-behind)
# lets the regex engine skip ahead, which is several times faster on long texts.
_IPV4 = re.compile(r"[0-9](?<![\w.][0-9])[0-9]?[0-9]?\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(?![\w.]|\.[0-9])")
_VERSION_BEFORE = re.compile(r"(?i)(?:version|ver\.|release|v)\s*$")
_H = r"[0-9A-Fa-f]{1,4}"
_IPV6 = re.compile(
    rf"(?<![\w:.])(?:(?:{_H}:){{7}}{_H}|(?:{_H}:){{1,6}}(?::{_H}){{1,6}}|(?:{_H}:){{2,7}}:|::(?:{_H}:){{1,6}}{_H})"
    rf"(?![\w:])"
)
_PHONE = re.compile(
    r"(?:\+(?<![\w+.-]\+)[0-9]{1,3}[ .-]?(?:\([0-9]{1,4}\)[ .-]?|[0-9]{1,4}[ .-])|\((?<![\w+.-]\()[0-9]{1,4}\)[ .-]?"
    r"|[0-9](?<![\w+.-][0-9])[0-9]{0,3}[ .-])[0-9]{2,4}(?:[ .-][0-9]{2,4}){0,3}(?![\w:/]|[.,-][0-9])"
)
_DATE = re.compile(
    r"(?:19|20)\d\d[ ./-](?:0?[1-9]|1[0-2])\b|\b(?:0?[1-9]|[12]\d|3[01])[ ./-](?:0?[1-9]|1[0-2])[ ./-](?:19|20)\d\d"
)
_SEPS = re.compile(r"[ .-]")
_COUNTRY = re.compile(r"^\+\d{1,3}[ .-]?")


def _ipv4_ok(m: re.Match) -> bool:
    if any(int(octet) > 255 for octet in m.group().split(".")):
        return False
    return not _VERSION_BEFORE.search(m.string, max(0, m.start() - 12), m.start())


def _ipv6_ok(m: re.Match) -> bool:
    s = m.group()
    return any(c.isdigit() for c in s) and s.count("::") <= 1 and len(s.replace("::", ":").strip(":").split(":")) <= 8


def _phone_ok(m: re.Match) -> bool:
    s = m.group()
    digits = sum(c.isdigit() for c in s)
    international = s.startswith(("+", "("))
    if not (8 if international else 10) <= digits <= 15 or _DATE.search(s):
        return False
    if international:  # "+1 555-123-4567": separators may mix, but dots not with others
        seps = set(_SEPS.findall(_COUNTRY.sub("", s)))
        return "." not in seps or seps == {"."}
    # National form: one separator kind, later groups of 3+ digits (page ranges, scores, tables of numbers fail).
    groups = _SEPS.split(s)
    return len(set(_SEPS.findall(s))) == 1 and all(len(g) >= 3 for g in groups[1:])


# kind -> (cheap test a text must pass to be scanned at all, pattern, check of a match, placeholder)
KINDS: dict[str, tuple[Callable[[str], bool], re.Pattern, Callable[[re.Match], bool] | None, str]] = {
    "email": (lambda t: "@" in t, _EMAIL, None, "<EMAIL>"),
    "ipv6": (lambda t: "::" in t or t.count(":") >= 7, _IPV6, _ipv6_ok, "<IP_ADDRESS>"),
    "ipv4": (lambda t: "." in t, _IPV4, _ipv4_ok, "<IP_ADDRESS>"),
    "phone_number": (lambda t: True, _PHONE, _phone_ok, "<PHONE_NUMBER>"),
}
COLUMNS = {"email": "email", "ipv6": "ip_address", "ipv4": "ip_address", "phone_number": "phone_number"}


def redact_pii(text: str, kinds: list[str] | tuple[str, ...] = tuple(KINDS)) -> tuple[str, dict[str, int]]:
    """(redacted text, count per column: email, ip_address, phone_number)."""
    counts = dict.fromkeys(COLUMNS.values(), 0)
    for kind in KINDS:
        if kind not in kinds:
            continue
        gate, pattern, accept, placeholder = KINDS[kind]
        if not gate(text):
            continue
        found = 0

        def replace(m: re.Match, accept=accept, placeholder=placeholder) -> str:
            nonlocal found
            if accept is not None and not accept(m):
                return m.group()
            found += 1
            return placeholder

        text = pattern.sub(replace, text)
        counts[COLUMNS[kind]] += found
    return text, counts


@register
class PII(Scorer):
    """Adds `pii.text` (redacted, applied in place by the chain) and counts `pii.email`, `pii.ip_address`, `pii.phone_number`."""

    name = "pii"
    kinds: list[str] = Field(default_factory=lambda: list(KINDS))

    def check(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown:
            raise ConfigError(
                f"The 'kinds' parameter of pii must be a subset of {list(KINDS)}. Got {self.kinds} instead."
            )

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        out = [redact_pii(t, self.kinds) for t in docs.texts]
        cols = {self.col("text"): np.array([t for t, _ in out], dtype=object)}
        for column in dict.fromkeys(COLUMNS.values()):
            cols[self.col(column)] = np.array([c[column] for _, c in out], dtype=np.int64)
        return cols
