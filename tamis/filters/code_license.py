"""License of a source file as an SPDX id, from its header comment or, for LICENSE/COPYING files, the whole text.

Only the head of a file is read (`header_lines`), where license notices sit;
a notice further down is rarer and costs a full scan of every file. An
explicit `SPDX-License-Identifier:` wins; otherwise the first matching
notice phrase in `NOTICES` (order matters: LGPL before GPL, BSD-3 before BSD-2).
"""

import posixpath
import re

import numpy as np

from tamis.errors import ConfigError
from tamis.filters.base import Scorer
from tamis.filters.code_lang import paths
from tamis.filters.registry import register
from tamis.filters.text import DocView

_SPDX_TAG = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+(?:\s+(?:OR|AND|WITH)\s+[A-Za-z0-9.+-]+)*)")
_GPL_LATER = r"(?: of the license)?(?:,?\s*or\s*(?:\(at your option\)\s*)?any\s+later\s+version)"
# (SPDX id, pattern) over the head lower-cased with comment marks and runs of whitespace collapsed to one space.
NOTICES: list[tuple[str, re.Pattern]] = [
    ("Apache-2.0", re.compile(r"licensed to the apache software foundation|apache license,? (?:version )?2\.0|apache\.org/licenses/license-2\.0")),
    ("Apache-1.1", re.compile(r"apache software license,? version 1\.1")),
    ("AGPL-3.0-or-later", re.compile(r"gnu affero general public license.{0,200}version 3" + _GPL_LATER)),
    ("AGPL-3.0-only", re.compile(r"gnu affero general public license")),
    ("LGPL-2.1-or-later", re.compile(r"gnu (?:lesser|library) general public license.{0,200}version 2(?:\.1)?" + _GPL_LATER)),
    ("LGPL-3.0-or-later", re.compile(r"gnu lesser general public license.{0,200}version 3" + _GPL_LATER)),
    ("LGPL-3.0-only", re.compile(r"gnu lesser general public license.{0,200}version 3")),
    ("LGPL-2.1-only", re.compile(r"gnu (?:lesser|library) general public license")),
    ("GPL-2.0-or-later", re.compile(r"gnu general public license.{0,200}version 2" + _GPL_LATER)),
    ("GPL-3.0-or-later", re.compile(r"gnu general public license.{0,200}version 3" + _GPL_LATER)),
    ("GPL-3.0-only", re.compile(r"gnu general public license.{0,200}version 3")),
    ("GPL-2.0-only", re.compile(r"gnu general public license")),
    ("MPL-2.0", re.compile(r"mozilla public license,? v(?:ersion|\.)? ?2\.0")),
    ("EPL-2.0", re.compile(r"eclipse public license,? (?:v(?:ersion|\.)? ?)?2\.0")),
    ("EPL-1.0", re.compile(r"eclipse public license")),
    ("BSL-1.0", re.compile(r"boost software license")),
    ("ISC", re.compile(r"permission to use, copy, modify, and(?:/or)? distribute this software for any purpose with or without fee")),
    ("MIT", re.compile(r"permission is hereby granted, free of charge, to any person obtaining a copy|\bmit license\b|licensed under the mit\b")),
    ("BSD-3-Clause", re.compile(r"redistribution and use in source and binary forms.{0,900}neither the name")),
    ("BSD-2-Clause", re.compile(r"redistribution and use in source and binary forms")),
    ("Zlib", re.compile(r"this software is provided 'as-is', without any express or implied warranty")),
    ("Unlicense", re.compile(r"this is free and unencumbered software released into the public domain")),
    ("CC0-1.0", re.compile(r"cc0 1\.0|creativecommons\.org/publicdomain/zero")),
    ("LicenseRef-public-domain", re.compile(r"\bpublic domain\b(?!\s+(?:software|data))")),
]  # fmt: skip
# Every NOTICES pattern contains one of these words, so a head without any cannot match.
_CUES = ("licen", "permission", "redistribution", "domain", "as-is", "unencumbered", "cc0")
_MARKS = re.compile(r"(?:^|\n)[ \t]*(?://+|#+|/?\*+/?|--+|;+|%+|!|rem\b)?", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
LICENSE_FILES = re.compile(r"^(?:license|licence|copying|unlicense)(?:[-._][\w.-]*)?$", re.IGNORECASE)


def detect_license(head: str) -> str:
    """SPDX id stated in a text (a file head or a LICENSE file), or "" when none is found."""
    tag = _SPDX_TAG.search(head)
    if tag:
        return tag.group(1)
    lower = head.lower()
    if not any(word in lower for word in _CUES):  # most heads state no license: skip the patterns
        return ""
    flat = _SPACE.sub(" ", _MARKS.sub("\n", lower))
    for spdx, pattern in NOTICES:
        if pattern.search(flat):
            return spdx
    return ""


def head_of(text: str, lines: int, max_chars: int = 16384) -> str:
    """The first `lines` lines, at most `max_chars` characters (minified files have one huge line)."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1, max_chars)
        if end < 0:
            return text[:max_chars]
    return text[:end]


@register
class CodeLicense(Scorer):
    """Adds `code_license.spdx` ("" when none found) and `code_license.where` ("header" | "license_file" | "")."""

    name = "code_license"
    header_lines: int = 40  # where a header notice may sit; LICENSE files are read whole (up to max_chars)
    max_chars: int = 65536

    def check(self) -> None:
        if self.header_lines < 1 or self.max_chars < 1:
            raise ConfigError(
                f"The 'header_lines' and 'max_chars' parameters of code_license must be >= 1. "
                f"Got {self.header_lines} and {self.max_chars} instead."
            )

    def score(self, docs: DocView) -> dict[str, np.ndarray]:
        spdx, where = [], []
        for path, text in zip(paths(docs), docs.texts, strict=True):
            whole = bool(LICENSE_FILES.match(posixpath.basename(path)))
            found = detect_license(
                text[: self.max_chars] if whole else head_of(text, self.header_lines, self.max_chars)
            )
            spdx.append(found)
            where.append(("license_file" if whole else "header") if found else "")
        return {self.col("spdx"): np.array(spdx, dtype=object), self.col("where"): np.array(where, dtype=object)}
