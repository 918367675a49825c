"""Secrets in source files (private keys, cloud keys, tokens, passwords in assignments), redacted in place.

The scorer returns the redacted text as `code_secrets.text`; the filter chain
(tamis.filters.chain.apply_chain) swaps a `<name>.text` column in for the
document text, so every later component and the written shard see only the
redacted text. Each secret becomes a typed placeholder such as `<AWS_ACCESS_KEY>`.

Each pattern opens with a literal or a small character class and has only
bounded repeats and no nested quantifiers, so a scan stays linear on any input.
"""

import re

import numpy as np

from tamis.filters.base import Scorer
from tamis.filters.registry import register
from tamis.filters.text import DocView

_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----")
_KEY_SPAN = 20000  # a PEM private key is a few KB; an END further away is not this key's


def _redact_private_keys(text: str) -> tuple[str, int]:
    """Replace each PEM private-key block (BEGIN line to its END line, or the BEGIN line alone) by <PRIVATE_KEY>.

    Done with finditer + a bounded search for the END line instead of one lazy
    regex, which would rescan the window for every BEGIN without an END.
    """
    pieces, pos, count = [], 0, 0
    for m in _KEY_BEGIN.finditer(text):
        if m.start() < pos:  # inside a block already replaced
            continue
        end = _KEY_END.search(text, m.end(), m.end() + _KEY_SPAN)
        pieces += [text[pos : m.start()], "<PRIVATE_KEY>"]
        pos = end.end() if end else m.end()
        count += 1
    return ("".join(pieces) + text[pos:] if count else text), count


# (placeholder kind, pattern); where group "v" exists only it is replaced (keeps `key = "` around it).
# Patterns open with a literal or a character class, never `\b` or a case-insensitive group, so that
# the regex engine can skip ahead to candidates; word boundaries are checked by a look-behind after it.
SECRETS: list[tuple[str, re.Pattern]] = [
    ("AWS_ACCESS_KEY", re.compile(r"A(?<![0-9A-Za-z]A)(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|NPA|NVA|IPA)[0-9A-Z]{16}(?![0-9A-Za-z])")),
    ("AWS_SECRET_KEY", re.compile(r"[Aa](?i:(?<=a)ws_?secret_?(?:access_?)?key)[\"']?\s{0,5}(?::=|=>|[:=])\s{0,5}[\"']?(?P<v>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])")),
    ("GCP_API_KEY", re.compile(r"AIza(?<![\w-]AIza)[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])")),
    ("GCP_CLIENT_SECRET", re.compile(r"GOCSPX-(?<![\w-]GOCSPX-)[0-9A-Za-z_-]{28}(?![0-9A-Za-z_-])")),
    ("GITHUB_TOKEN", re.compile(r"g(?<![0-9A-Za-z_]g)(?:h[pousr]_[A-Za-z0-9]{36}|ithub_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])")),
    ("SLACK_TOKEN", re.compile(r"x(?<![0-9A-Za-z]x)ox[abposr]-[A-Za-z0-9-]{10,100}(?![A-Za-z0-9-])")),
    ("SLACK_WEBHOOK", re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/[A-Za-z0-9]{20,32}")),
    # `password = "hunter22"`, `"apiKey": 's3cr3t…'`, `DB_PASSWD := "…"`: a keyword, an assignment, a quoted literal
    # of 6+ characters without spaces. Placeholders and interpolations (`${PASS}`, `%s`, `<pw>`, `****`) are kept.
    ("PASSWORD", re.compile(
        r"[PpSsAa](?i:(?<=p)ass(?:word|wd|phrase)|(?<=p)wd|(?<=s)ecret(?:_?key)?|(?<=a)pi_?key|(?<=a)ccess_?token"
        r"|(?<=a)uth_?token)[\"']?\s{0,5}(?::=|=>|[:=])\s{0,5}(?P<q>[\"'])"
        r"(?P<v>(?![$%{<*]|[xX]{3,}|\.\.\.)[^\"'\s\\]{6,200})(?P=q)"
    )),
]  # fmt: skip


def redact_secrets(text: str) -> tuple[str, int]:
    """(text with every secret replaced by `<KIND>`, number of secrets found)."""
    text, total = _redact_private_keys(text)
    for kind, pattern in SECRETS:
        placeholder = f"<{kind}>"

        def replace(m: re.Match, placeholder: str = placeholder) -> str:
            if "v" not in m.re.groupindex:
                return placeholder
            start, end = m.span("v")
            return m.string[m.start() : start] + placeholder + m.string[end : m.end()]

        text, n = pattern.subn(replace, text)
        total += n
    return text, total


@register
class CodeSecrets(Scorer):
    """Adds `code_secrets.text` (the redacted text, applied in place by the chain) and `code_secrets.count`."""

    name = "code_secrets"

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        out = [redact_secrets(t) for t in docs.texts]
        return {
            self.col("text"): np.array([t for t, _ in out], dtype=object),
            self.col("count"): np.array([n for _, n in out], dtype=np.int64),
        }
