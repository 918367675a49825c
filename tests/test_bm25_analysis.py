from collections import Counter

import numpy as np
import pytest
from bm25_fixtures import real_corpus

from tamis.errors import ConfigError
from tamis.indexes import bm25
from tamis.indexes.analysis import AnalysisConfig, Analyzer, TermIds
from tamis.retrievers.bm25 import BM25Retriever


def test_default_chain_lowercases_drops_stopwords_and_stems():
    a = Analyzer()
    assert a.terms("The Runners were RUNNING to the café, x y") == ["runner", "were", "run", "café"]


def test_stopwords_and_stemmer_can_be_changed_or_switched_off():
    plain = Analyzer(AnalysisConfig(stopwords="none", stemmer="none"))
    assert plain.terms("The runners were running") == ["the", "runners", "were", "running"]
    custom = Analyzer(AnalysisConfig(stopwords=["runners"], stemmer="porter"))
    assert custom.terms("The runners were running") == ["the", "were", "run"]


def test_code_tokenizer_splits_identifiers_and_keeps_them_whole():
    a = Analyzer(AnalysisConfig(tokenizer="code", stemmer="none", stopwords="none"))
    assert a.terms("parseHTTPResponse(max_retry_count); x = TFileTransport") == [
        "parsehttpresponse",
        "parse",
        "http",
        "response",
        "max_retry_count",
        "max",
        "retry",
        "count",
        "tfiletransport",
        "file",
        "transport",
    ]


@pytest.mark.parametrize("bad", [{"stemmer": "klingon"}, {"stopwords": "french-ish"}, {"min_chars": 0}])
def test_bad_analysis_config_is_refused(bad):
    with pytest.raises(ConfigError):
        bm25.config_from_dict({"analysis": bad})


@pytest.mark.parametrize("tokenizer", ["word", "code"])
def test_batch_analysis_equals_per_text_analysis(shared_data, tokenizer):
    texts = real_corpus(shared_data, code_docs=40)["text"].to_pylist()
    a = Analyzer(AnalysisConfig(tokenizer=tokenizer))
    term_ids = TermIds(a)
    first, first_lengths = term_ids(texts[:20])
    ids, lengths = term_ids(texts)  # a second call reuses the words it has seen and adds new ones
    assert np.array_equal(ids[: len(first)], first) and np.array_equal(lengths[:20], first_lengths)
    terms = np.array(list(term_ids.terms), dtype=object)
    assert len(set(terms)) == len(terms)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    for i, text in enumerate(texts):
        assert list(terms[ids[bounds[i] : bounds[i + 1]]]) == Analyzer(a.config).terms(text)


def test_query_analysis_is_the_index_analysis_after_a_reload(shared_data, tmp_path):
    """Query a saved index with each document's own text: the query's terms are exactly that document's terms."""
    corpus = real_corpus(shared_data, code_docs=30)
    config = bm25.BM25Config(
        analysis=AnalysisConfig(tokenizer="code", stopwords=["licensed", "apache"], stemmer="porter")
    )
    bm25.save(bm25.build(corpus, config), str(tmp_path))
    retriever = BM25Retriever.open(str(tmp_path))
    assert retriever.analyzer.config == config.analysis
    shard = retriever.index.shards[0]
    term_of_posting = np.repeat(np.arange(len(shard.indptr) - 1), np.diff(shard.indptr))
    for d, text in enumerate(corpus["text"].to_pylist()):
        tids, qtf = retriever.query_terms(text)
        assert set(tids.tolist()) == set(term_of_posting[shard.indices == d].tolist())
        expected = Counter(Analyzer(config.analysis).terms(text))
        assert sorted(qtf.tolist()) == sorted(expected.values())


def test_a_full_stem_cache_is_emptied_without_changing_any_term(shared_data):
    texts = real_corpus(shared_data, code_docs=10)["text"].to_pylist()[:20]
    small = Analyzer(cache_size=50)
    assert small.word_terms_many(["runners", "the", "running", "the"]) == [("runner",), (), ("run",), ()]
    term_ids = TermIds(small)
    ids, lengths = term_ids(texts)
    terms = np.array(list(term_ids.terms), dtype=object)[ids].tolist()
    assert terms == [t for text in texts for t in Analyzer().terms(text)]
    assert len(small._terms) > 50  # one batch of new words is kept whole ...
    assert small.word_terms_many(["zzyzxes"]) == [("zzyzx",)] and len(small._terms) == 1  # ... then the cache empties
