import gzip
import json
import time

import numpy as np
import pytest

from tamis.errors import ConfigError
from tamis.filters.chain import apply_chain
from tamis.filters.code_lang import language_of
from tamis.filters.code_secrets import redact_secrets
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.schema import documents

# Hand-checked truth for license-header detection (docs/code_signals.md): the dataset's `license` label
# ("file header" vs "no header"), corrected where reading the file showed otherwise.
TRUTH_OVERRIDES = {
    "lib/py/src/transport/sslcompat.py": "Apache-2.0",  # lower-cased ASF header, labelled "no header"
    "compiler/cpp/src/thrift/generate/sha256.h": "LicenseRef-public-domain",  # "Public domain — no copyright"
    "lib/nodejs/lib/thrift/json_parse.js": "LicenseRef-public-domain",  # Crockford's "Public Domain."
    "lib/js/test/phantomjs-qunit.js": "BSD",  # "License: .../LICENSE.BSD" (a pointer, no notice text)
}
CODE_NAMES = ["code_lang", "code_license", "code_secrets", "code_autogen", "code_starcoder"]


@pytest.fixture(scope="module")
def code_rows(shared_data):
    with gzip.open(shared_data / "curation" / "code" / "thrift_code.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _batch(rows):
    meta = [json.dumps({"path": r["path"], "lang": r.get("lang")}) for r in rows]
    return documents(
        [{"id": str(i), "text": r["text"], "meta": m} for i, (r, m) in enumerate(zip(rows, meta, strict=True))]
    )


def test_language_matches_dataset_labels(code_rows):
    scores = build("code_lang").score(DocView(_batch(code_rows)))
    assert list(scores["code_lang.lang"]) == [r["lang"] for r in code_rows]


@pytest.mark.parametrize(
    "path,text,lang",
    [("bin/tool", "#!/usr/bin/env python3\nprint(1)", "Python"), ("run", "#! /bin/sh\nls", "Shell"),
     ("x", "#!/usr/bin/perl -w\n", "Perl"), ("Makefile", "all:", "Makefile"), ("README", "hello", "")],
)  # fmt: skip
def test_language_from_shebang_and_filename(path, text, lang):
    assert language_of(path, text)[0] == lang


def test_license_header_precision_recall(code_rows):
    scores = build("code_license").score(DocView(_batch(code_rows)))
    found = scores["code_license.spdx"]
    truth = [TRUTH_OVERRIDES.get(r["path"], "" if "no header" in r["license"] else "Apache-2.0") for r in code_rows]
    pred_pos, true_pos = found != "", np.array(truth) != ""
    tp = int((pred_pos & true_pos).sum())
    precision, recall = tp / pred_pos.sum(), tp / true_pos.sum()
    assert precision >= 0.99 and recall >= 0.99, (precision, recall)
    apache = [f for f, t in zip(found, truth, strict=True) if t == "Apache-2.0"]
    assert apache.count("Apache-2.0") == len(apache)


@pytest.mark.parametrize(
    "text,spdx",
    [("// SPDX-License-Identifier: MIT OR Apache-2.0\nint x;", "MIT OR Apache-2.0"),
     ("# This program is free software; you can redistribute it under the terms of the GNU General Public\n"
      "# License as published by the Free Software Foundation; either version 2 of the License, or\n"
      "# (at your option) any later version.\n", "GPL-2.0-or-later"),
     ("/* Redistribution and use in source and binary forms, with or without modification, are permitted\n"
      " * ... Neither the name of the copyright holder nor ... */", "BSD-3-Clause"),
     ("int main() { return 0; }", "")],
)  # fmt: skip
def test_license_spdx_ids(text, spdx):
    assert build("code_license").score(DocView(documents([{"id": "a", "text": text}])))["code_license.spdx"][0] == spdx


def test_license_file_is_read_whole():
    text = (
        "MIT License\n\n" + "\n" * 60 + "Permission is hereby granted, free of charge, to any person obtaining a copy"
    )
    batch = documents([{"id": "a", "text": text, "meta": json.dumps({"path": "pkg/LICENSE"})}])
    scores = build("code_license").score(DocView(batch))
    assert (scores["code_license.spdx"][0], scores["code_license.where"][0]) == ("MIT", "license_file")


SECRETS = {
    "AWS_ACCESS_KEY": 'aws_key = "AKIAIOSFODNN7EXAMPLE"',
    "AWS_SECRET_KEY": "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "GCP_API_KEY": 'key: "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"',
    "GITHUB_TOKEN": "token ghp_" + "a1B2" * 9,
    "SLACK_TOKEN": "SLACK=xoxb-123456789012-1234567890123-abcdefABCDEF123456",
    "PASSWORD": 'db_password = "hunter2isgood"',
    "PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY-----",
}


def test_secrets_redacted_in_place_through_the_chain(code_rows):
    rows = [dict(r) for r in code_rows[: len(SECRETS)]]
    for r, secret in zip(rows, SECRETS.values(), strict=True):
        r["text"] = r["text"] + "\n" + secret + "\n"
    kept, drops = apply_chain([build("code_secrets")], _batch(rows))
    assert not drops and "code_secrets.text" not in kept.schema.names
    assert kept.column("code_secrets.count").to_pylist() == [1] * len(SECRETS)
    for text, (kind, secret) in zip(kept.column("text").to_pylist(), SECRETS.items(), strict=True):
        assert f"<{kind}>" in text and secret not in text
        assert "AKIAIOSFODNN7EXAMPLE" not in text and "hunter2isgood" not in text and "MIIEowIBAAKCAQEA" not in text


@pytest.mark.parametrize(
    "text", ['password = ""', 'password = "${DB_PASSWORD}"', 'PASSWORD_PROMPT = "Enter your password"',
             'api_key = "<your key here>"', "token_count = 12"],
)  # fmt: skip
def test_secrets_leave_placeholders_alone(text):
    assert redact_secrets(text) == (text, 0)


def test_secrets_none_in_real_code(code_rows):
    scores = build("code_secrets").score(DocView(_batch(code_rows)))
    assert scores["code_secrets.count"].sum() == 0  # apache/thrift has no live credentials
    assert list(scores["code_secrets.text"]) == [r["text"] for r in code_rows]


def test_autogen_flags_generator_banners(code_rows):
    scores, keep, reason = build("code_autogen").apply(DocView(_batch(code_rows)))
    flagged = {code_rows[i]["path"] for i in np.flatnonzero(~keep)}
    assert "lib/go/test/tests/protocol_mock.go" in flagged  # "Code generated by MockGen. DO NOT EDIT."
    assert "lib/php/src/ext/thrift_protocol/php_thrift_protocol_arginfo.h" in flagged  # "This is a generated file"
    assert len(flagged) <= 5 and set(reason[~keep]) == {"code_autogen"}


def test_starcoder_thresholds():
    long_line = "x = '" + "a" * 1200 + "'"
    rows = [
        {"path": "ok.py", "text": "def f(x):\n    # add one\n    return x + 1\n"},
        {"path": "min.js", "text": "x = 1;\n" * 40 + long_line},
        {"path": "data.py", "text": "# -*-\n" + "[0x00, 0x01, 0x02, ~~~ ]\n" * 3 + "@@@ ### ((( )))\n" * 20},
        {"path": "doc.py", "text": '"""\n' + "Long prose.\n" * 50 + '"""\nx = 1\n'},
    ]
    scores, keep, reason = build("code_starcoder").apply(DocView(_batch(rows)))
    assert keep.tolist() == [True, False, False, False]
    assert list(reason[1:]) == ["code_starcoder.max_line_length", "code_starcoder.alnum_fraction",
                                "code_starcoder.comment_fraction"]  # fmt: skip
    assert scores["code_starcoder.comment_fraction"][0] == pytest.approx(
        len("#addone") / len("deff(x):#addonereturnx+1")
    )
    with pytest.raises(ConfigError):
        build("code_starcoder", {"min_alnum_fraction": 2})


def test_comment_scanner_skips_strings():
    from tamis.filters.code_quality import comment_fraction

    assert comment_fraction('url = "http://example.com"; // c', "JavaScript") == pytest.approx(3 / 28)
    assert comment_fraction('s = "# not a comment"', "Python") == 0.0


@pytest.mark.parametrize("name", CODE_NAMES)
def test_code_scorers_bad_input(name):
    huge = ("/* " + "unterminated comment " * 10 + "\n") * 1 + ('x = "a\\' + "\n") * 1_400_000  # > 10 MB, pathological
    huge += "-----BEGIN PRIVATE KEY-----" + "A" * 200_000 + "password = '" * 10_000
    assert len(huge) > 10_000_000
    # Arrow cannot hold lone surrogates; readers decode bad bytes with replacement characters.
    texts = ["", b"caf\xe9 \xff\xfe bad bytes".decode("utf-8", "replace"), "\x00\x1b[0m", huge]
    batch = documents([{"id": str(i), "text": t, "meta": json.dumps({"path": "f.c"})} for i, t in enumerate(texts)])
    start = time.perf_counter()
    scores = build(name).score(DocView(batch))
    assert time.perf_counter() - start < 20
    assert all(len(v) == len(texts) for v in scores.values())


def test_pure_functions_accept_lone_surrogates():
    from tamis.filters.code_license import detect_license
    from tamis.filters.code_quality import comment_fraction

    text = b"// caf\xe9\npassword = 'abc\xff123456'".decode("utf-8", "surrogateescape")
    assert language_of("a.\udce9", text) == ("", "")
    assert detect_license(text) == ""
    assert 0 < comment_fraction(text, "C") < 1
    assert redact_secrets(text)[1] == 1
