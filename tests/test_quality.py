"""fastText quality classifiers on real shared data: training, manifest, scorer, eval command, bad input."""

import gzip
import json
import shutil

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from tamis.cli import main
from tamis.errors import ConfigError, InputError, IntegrityError, ResourceError
from tamis.filters import fasttext_model as fm
from tamis.filters.quality import BINS, cutoff_for_fraction, histogram
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.io import atomic
from tamis.pipelines.quality_cut import TopFractionCut
from tamis.pipelines.read import DROPPED
from tamis.schema import documents

TINY = ["--kind", "fasttext", "--dim", "16", "--bucket", "16384", "--epoch", "10", "--lr", "0.5"]


def _write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def model(shared_data, tmp_path_factory):
    """A tiny model: human-extracted article bodies vs raw web pages (with boilerplate) from the pool."""
    tmp = tmp_path_factory.mktemp("quality")
    truth = (shared_data / "curation/extraction/ground_truth.jsonl").read_text(encoding="utf-8").splitlines()
    pos = [{"id": str(i), "text": json.loads(line)["text"]} for i, line in enumerate(truth[:80])]
    neg = []
    with gzip.open(shared_data / "curation/web_pool/pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["source"] != "stackexchange":
                neg.append({"id": row["id"], "text": row["text"]})
            if len(neg) == 300:
                break
    out = str(tmp / "model.bin")
    argv = ["quality", "train", "--positive", _write_jsonl(tmp / "pos.jsonl", pos)]
    argv += ["--negative", _write_jsonl(tmp / "neg.jsonl", neg), "--out", out, *TINY]
    assert main(argv) == 0
    return out


@pytest.fixture(scope="module")
def labeled(shared_data):
    rows = [json.loads(line) for line in (shared_data / "curation/quality/dclm_human_quality.jsonl").open()]
    return rows


def _batch(texts):
    return documents([{"id": str(i), "text": t, "source": "t", "offset": i} for i, t in enumerate(texts)])


def test_manifest_records_model_data_and_params(model):
    manifest = json.loads(open(fm.manifest_path(model)).read())
    assert manifest["kind"] == fm.KIND
    assert manifest["model"]["sha256"] == atomic.sha256_file(model)
    assert manifest["labels"] == ["hq", "lq"]
    assert manifest["examples"] == {"hq": 80, "lq": 80}  # balanced by downsampling the negatives
    data = {d["label"]: d for d in manifest["training_data"]}
    assert data["hq"]["documents"] == 80 and data["lq"]["documents"] == 300
    assert data["lq"]["sha256"] == atomic.sha256_file(data["lq"]["path"])
    assert manifest["params"]["dim"] == 16 and manifest["normalization"] == fm.NORMALIZATION


def test_training_is_deterministic_wherever_the_files_lie(model, tmp_path):
    manifest = json.loads(open(fm.manifest_path(model)).read())
    pos, neg = (d["path"] for d in sorted(manifest["training_data"], key=lambda d: d["label"]))
    pos, neg = str(shutil.copy(pos, tmp_path / "p.jsonl")), str(shutil.copy(neg, tmp_path / "n.jsonl"))  # same bytes
    again = str(tmp_path / "again.bin")
    assert main(["quality", "train", "--positive", pos, "--negative", neg, "--out", again, *TINY]) == 0
    assert atomic.sha256_file(again) == manifest["model"]["sha256"]


def test_scorer_adds_one_probability_column_per_model(model, labeled):
    texts = [r["text"] for r in labeled[:50]]
    scorer = build("quality", {"models": {"a": model, "b": model}})
    scores = scorer.score(DocView(_batch(texts)))
    assert set(scores) == {"quality.a", "quality.b"}
    p = scores["quality.a"]
    assert p.shape == (50,) and ((p >= 0) & (p <= 1)).all() and p.std() > 0
    np.testing.assert_array_equal(p, scores["quality.b"])
    np.testing.assert_allclose(p, fm.load(model).proba(texts), rtol=1e-6)


def test_params_round_trip_and_pin_the_model_bytes(model):
    f = build("quality", {"models": {"m": model}, "threshold": 0.4})
    assert f.key() == "quality@1"
    assert build("quality", f.params()).params() == f.params()
    assert f.params()["model_sha256"] == {"m": atomic.sha256_file(model)}
    with pytest.raises(IntegrityError, match="pins"):
        build("quality", {"models": {"m": model}, "model_sha256": {"m": "0" * 64}})


def test_threshold_rule_keeps_scores_at_or_above(model, labeled):
    f = build("quality", {"models": {"m": model}, "threshold": 0.5})
    scores, keep, reason = f.apply(DocView(_batch([r["text"] for r in labeled[:60]])))
    np.testing.assert_array_equal(keep, scores["quality.m"] >= 0.5)
    assert set(reason[~keep]) == {"quality.m<0.5"} and set(reason[keep]) == {""}
    assert 0 < keep.sum() < 60


def test_eval_quality_prints_auc_accuracy_n(model, shared_data, capsys, labeled):
    path = str(shared_data / "curation/quality/dclm_human_quality.jsonl")
    assert main(["eval", "quality", "--model", model, "--labeled", path, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(labeled)
    assert 0.5 < result["auc"] <= 1.0  # clean articles vs raw pages already rank human labels above chance
    p = fm.load(model).proba([r["text"] for r in labeled])
    y = np.array([r["quality_label"] for r in labeled])
    assert result["accuracy"] == round(float(((p >= 0.5) == (y == 1)).mean()), 4)


def test_missing_model_is_a_resource_error(tmp_path):
    with pytest.raises(ResourceError):
        fm.load(str(tmp_path / "nope.bin"))
    with pytest.raises(ResourceError):
        build("quality", {"models": {"m": str(tmp_path / "nope.bin")}})


def test_changed_model_bytes_are_refused(model, tmp_path):
    copy = tmp_path / "m.bin"
    shutil.copy(model, copy)
    shutil.copy(fm.manifest_path(model), fm.manifest_path(str(copy)))
    with open(copy, "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError, match="sha256"):
        fm.load(str(copy))
    copy.with_name("bare.bin").write_bytes(copy.read_bytes())
    with pytest.raises(IntegrityError, match="manifest"):
        fm.load(str(copy.with_name("bare.bin")))


def test_model_trained_with_other_labels_is_refused(tmp_path):
    examples = [fm.LabeledText(str(i), fm.normalize(t), lab) for i, (t, lab) in enumerate([("good text", "good")] * 5)]
    examples += [fm.LabeledText(f"b{i}", "click here buy now", "bad") for i in range(5)]
    out = str(tmp_path / "other.bin")
    fm.train(examples, out, fm.FastTextParams(dim=4, bucket=128, epoch=1))
    with pytest.raises(ConfigError, match="labels"):
        build("quality", {"models": {"m": out}})
    assert build("quality", {"models": {"m": out}, "positive_label": "good"}).score(DocView(_batch(["good"])))


def test_empty_long_and_undecodable_texts_score(model):
    clf = fm.load(model)
    long_text = "The committee published its report on the river. " * 220_000  # 11 MB
    assert len(long_text.encode()) > 10_000_000
    p = clf.proba(["", long_text, "caf\udce9 au lait \udcff"])  # lone surrogates: bytes that were not UTF-8
    assert p.shape == (3,) and np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert fm.normalize("Caf\udce9!") == "caf \ufffd !"
    scores = build("quality", {"models": {"m": model}}).score(DocView(_batch(["", long_text])))
    np.testing.assert_allclose(scores["quality.m"], p[:2], rtol=1e-6)


def test_training_refuses_non_utf8_and_one_class(tmp_path, model):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "1", "text": "fine"}\n{"id": "2", "text": "caf\xe9"}\n')
    good = _write_jsonl(tmp_path / "good.jsonl", [{"id": "1", "text": "some words"}])
    with pytest.raises(InputError, match="cannot be read"):
        fm.read_labeled(str(bad), "lq")
    assert main(["quality", "train", "--positive", good, "--negative", str(bad), "--out", str(tmp_path / "x")]) == 3
    empty = _write_jsonl(tmp_path / "empty.jsonl", [{"id": "1", "text": "   "}])
    with pytest.raises(InputError, match="two labels"):
        fm.train(fm.read_labeled(good, "hq")[0] + fm.read_labeled(empty, "lq")[0], str(tmp_path / "y.bin"))


def test_config_errors():
    with pytest.raises(ConfigError):
        build("quality", {"models": {}})
    with pytest.raises(ConfigError, match="not both"):
        build("quality", {"models": {"m": "x"}, "threshold": 0.5, "top_fraction": 0.1})
    with pytest.raises(ConfigError, match="top_fraction"):
        build("quality", {"models": {"m": "x"}, "top_fraction": 1.5})


def test_top_fraction_needs_the_run_wide_cutoff(model):
    f = build("quality", {"models": {"m": model}, "top_fraction": 0.2})
    with pytest.raises(ConfigError, match="whole run"):
        f.apply(DocView(_batch(["some text"])))


def test_cutoff_keeps_the_top_fraction_of_a_histogram():
    p = np.random.default_rng(1).random(10_000)
    for fraction in (0.01, 0.1, 0.5, 1.0):
        kept = (p >= cutoff_for_fraction(histogram(p), fraction)).sum()
        assert kept >= np.ceil(fraction * len(p))
        assert kept <= np.ceil(fraction * len(p)) + 2  # only ties within one of BINS bins can add more
    assert histogram(np.array([0.0, 1.0, 0.5])).sum() == 3 and len(histogram(p)) == BINS


def _scored(model, texts, sizes):
    f = build("quality", {"models": {"m": model}})
    out, start = [], 0
    for n, size in enumerate(sizes):
        b = _batch(texts[start : start + size])
        ids = [f"d{start + i}" for i in range(b.num_rows)]
        b = b.set_column(0, "id", pa.array(ids))
        out.append(((n % 2, n), b.append_column("quality.m", f.score(DocView(b))["quality.m"])))
        start += size
    return out


def test_top_fraction_cut_is_global_and_shard_independent(model, labeled):
    texts = [r["text"] for r in labeled[:120]]
    f = build("quality", {"models": {"m": model}, "top_fraction": 0.25})
    one = _scored(model, texts, [120])
    p = one[0][1].column("quality.m").to_numpy()
    ids = one[0][1].column("id").to_pylist()
    expected = sorted(ids[i] for i in np.flatnonzero(p >= cutoff_for_fraction(histogram(p), 0.25)))
    assert 30 <= len(expected) <= 32 and set(expected) >= {ids[i] for i in np.argsort(-p)[:30]}
    for sizes in ([120], [70, 40, 10]):  # a per-batch cut would keep a quarter of each batch instead
        with beam.Pipeline() as pipe:
            out = pipe | beam.Create(_scored(model, texts, sizes)) | TopFractionCut(f)
            kept = out.kept | "Kept" >> beam.FlatMap(lambda kv: kv[1].column("id").to_pylist())
            dropped = out[DROPPED] | "Dropped" >> beam.FlatMap(lambda kv: kv[1][1].to_pylist())
            assert_that(kept, equal_to(expected), label="kept")
            reasons = dropped | "Reasons" >> beam.Map(lambda r: (r["stage"], r["reason"])) | beam.Distinct()
            assert_that(reasons, equal_to([("filter", "quality.m<top_0.25")]), label="reasons")
            count = dropped | beam.combiners.Count.Globally()
            assert_that(count, equal_to([120 - len(expected)]), label="balance")


@pytest.fixture(scope="module")
def pool_sample(shared_data, tmp_path_factory):
    """600 web pool documents: unlabeled text to pretrain vectors on."""
    rows = []
    with gzip.open(shared_data / "curation/web_pool/pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            rows.append({"id": json.loads(line)["id"], "text": json.loads(line)["text"]})
            if len(rows) == 600:
                break
    return _write_jsonl(tmp_path_factory.mktemp("unlabeled") / "pool.jsonl", rows)


def test_judged_labels_and_pretrained_vectors(shared_data, pool_sample, tmp_path, labeled):
    judged = _write_jsonl(tmp_path / "judged.jsonl", labeled[:120])
    out, again = str(tmp_path / "m.bin"), str(tmp_path / "again.bin")
    argv = ["quality", "train", "--labeled", judged, "--unlabeled", pool_sample, *TINY, "--balance", "false"]
    assert main([*argv, "--out", out]) == 0
    manifest = json.loads(open(fm.manifest_path(out)).read())
    want = sum(r["quality_label"] for r in labeled[:120])
    assert manifest["examples"] == {"hq": want, "lq": 120 - want}
    assert manifest["training_data"][0]["label"] == "quality_label"
    vectors = manifest["pretrained_vectors"]
    assert vectors["model"] == "skipgram" and vectors["dim"] == 16 and vectors["words"] > 1000
    assert vectors["sources"] == [{"path": pool_sample, "documents": 600, "sha256": atomic.sha256_file(pool_sample)}]
    assert vectors["params"] == {"epoch": 1, "ws": 5, "min_count": 3}
    assert main([*argv, "--out", again]) == 0  # vectors and classifier: the same bytes again
    assert atomic.sha256_file(again) == manifest["model"]["sha256"]
    assert main(["quality", "train", "--labeled", judged, *TINY, "--out", str(tmp_path / "plain.bin")]) == 0
    assert atomic.sha256_file(str(tmp_path / "plain.bin")) != manifest["model"]["sha256"]  # the vectors were used
    rest = labeled[120:]
    p = fm.load(out).proba([r["text"] for r in rest])
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(np.array([r["quality_label"] for r in rest]), p) > 0.6  # 120 human labels already rank the rest


def test_pretrained_vectors_bad_input(pool_sample, tmp_path, labeled):
    examples, _ = fm.read_judged(_write_jsonl(tmp_path / "judged.jsonl", labeled[:20]))
    vec = fm.pretrain_vectors([pool_sample], str(tmp_path / "v.vec"), fm.FastTextParams(dim=8))
    assert vec["dim"] == 8 and open(vec["path"]).readline().split()[1] == "8"
    with pytest.raises(ConfigError, match="dimension 8"):
        fm.train(examples, str(tmp_path / "m.bin"), fm.FastTextParams(dim=16), vectors=vec)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"id": "1", "text": "fine"}\n{"id": "2", "text": \n')
    with pytest.raises(InputError, match="cannot be read"):
        fm.pretrain_vectors([str(bad)], str(tmp_path / "b.vec"), fm.FastTextParams(dim=8))
    empty = _write_jsonl(tmp_path / "empty.jsonl", [])
    with pytest.raises(InputError, match="no documents"):
        fm.pretrain_vectors([empty], str(tmp_path / "e.vec"), fm.FastTextParams(dim=8))
    with pytest.raises(InputError, match="does not exist"):
        fm.pretrain_vectors([str(tmp_path / "nope.jsonl")], str(tmp_path / "n.vec"), fm.FastTextParams(dim=8))
    assert not list(tmp_path.glob("*.partial")) and not list(tmp_path.glob("*.vec.txt"))


def test_train_command_needs_both_classes_and_valid_judgements(tmp_path):
    good = _write_jsonl(tmp_path / "good.jsonl", [{"id": "1", "text": "some words"}])
    assert main(["quality", "train", "--positive", good, "--out", str(tmp_path / "x.bin")]) == 2
    judged = _write_jsonl(tmp_path / "j.jsonl", [{"text": "a", "quality_label": 1}, {"text": "b", "quality_label": 2}])
    assert main(["quality", "train", "--labeled", judged, "--out", str(tmp_path / "y.bin")]) == 3
