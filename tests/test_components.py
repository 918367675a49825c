"""Every registered scorer and filter honours the component contract, checked the same way for all.

As scikit-learn's estimator checks do, this runs each component that builds
from its defaults on one batch of real web text plus edge cases (empty text,
whitespace only, French and Japanese text, 1 MB documents) and
checks shapes, purity, naming and the keep/reason rule. Components that need
an artifact to build (a DSIR model, a quality classifier) are checked by
their own tests; the list of them is explicit so none is skipped by accident.
"""

import gzip
import itertools
import json

import numpy as np
import pytest

from tamis.errors import ConfigError
from tamis.filters.base import Filter
from tamis.filters.chain import apply_chain
from tamis.filters.registry import available, build
from tamis.filters.text import DocView
from tamis.schema import documents

NEEDS_ARTIFACT = {"dsir", "quality"}  # required constructor parameters: a model to load


@pytest.fixture(scope="module")
def batch(shared_data):
    with gzip.open(shared_data / "curation" / "web_pool" / "pool.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in itertools.islice(f, 120)]
    edge = ["", "   \n\t ", "Ceci est un texte en français, écrit pour voir.", "日本語のテキストです。",
            "word " * 200_000, "line one\nline two\n" * 5000]
    return documents([{"id": r["id"], "text": r["text"]} for r in rows] + [{"id": f"edge{i}", "text": t}
                                                                         for i, t in enumerate(edge)])


def buildable() -> list[str]:
    return [name for name in available() if name not in NEEDS_ARTIFACT]


def test_the_registry_holds_the_spine_components():
    assert {"langid", "gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality", "pii"} <= set(available())


@pytest.mark.parametrize("name", sorted(NEEDS_ARTIFACT & set(available())))
def test_components_needing_an_artifact_refuse_to_build_without_one(name):
    with pytest.raises(ConfigError):
        build(name, {})


@pytest.mark.parametrize("name", buildable())
def test_component_contract(name, batch):
    comp = build(name, {})
    assert comp.key() == f"{name}@{comp.version}"
    assert build(name, comp.params()).params() == comp.params()  # params round-trip through a config
    first = comp.score(DocView(batch))
    second = comp.score(DocView(batch))
    assert first, "a scorer adds at least one column"
    for col, values in first.items():
        assert col.startswith(f"{name}."), col
        assert len(values) == batch.num_rows, col
        a, b = np.asarray(values), np.asarray(second[col])
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b)  # pure: same batch in, same columns out (NaN == NaN)
        else:
            assert a.tolist() == b.tolist(), col
    if isinstance(comp, Filter):
        keep, reason = comp.rule({k: v for k, v in first.items() if not k.endswith(".text")})
        keep, reason = np.asarray(keep, dtype=bool), np.asarray(reason, dtype=object)
        assert keep.shape == reason.shape == (batch.num_rows,)
        assert all(r == "" for r in reason[keep]) and all(isinstance(r, str) and r for r in reason[~keep])


@pytest.mark.parametrize("name", buildable())
def test_chain_balances(name, batch):
    kept, drops = apply_chain([build(name, {})], batch)
    assert kept.num_rows + sum(d.num_rows for d in drops) == batch.num_rows
    dropped_ids = [i for d in drops for i in d.column("id").to_pylist()]
    assert sorted(kept.column("id").to_pylist() + dropped_ids) == sorted(batch.column("id").to_pylist())


def test_a_rewriting_filter_keeps_the_original_text_of_what_it_drops():
    kept_text = "\n".join(f"This is sentence number {i} of a proper page." for i in range(6)) + "\nmenu link"
    dropped_text = "Too short page.\nnav bar"
    batch = documents([{"id": "k", "text": kept_text}, {"id": "d", "text": dropped_text}])
    kept, drops = apply_chain([build("c4_quality", {})], batch)
    assert kept.column("text").to_pylist() == [kept_text.removesuffix("\nmenu link")]  # lines cut
    assert [d.column("text").to_pylist() for d in drops] == [[dropped_text]]  # as it came in
