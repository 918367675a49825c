"""TF-IDF + LR and ensemble quality classifiers: same scores as scikit-learn, CV choices, saved without pickle, verified."""

import json
import shutil

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from tamis.cli import main
from tamis.errors import ConfigError, IntegrityError
from tamis.filters import classifiers
from tamis.filters import ensemble_model as em
from tamis.filters import tfidf_model as tm
from tamis.filters.registry import build
from tamis.filters.text import DocView
from tamis.schema import documents


@pytest.fixture(scope="module")
def labeled(shared_data):
    """The shared human labels, cut to their first 600 characters so the 84-point grid runs in seconds."""
    rows = [json.loads(line) for line in (shared_data / "curation/quality/dclm_human_quality.jsonl").open()]
    return [{**r, "text": r["text"][:600]} for r in rows]


def _xy(rows):
    return [r["text"] for r in rows], np.array([r["quality_label"] for r in rows])


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "params",
    [
        tm.TfidfParams(),
        tm.TfidfParams(analyzer="char_wb", ngram_min=2, ngram_max=5, sublinear_tf=False, min_df=1, c=10.0),
    ],
)
def test_scores_equal_scikit_learns_pipeline(labeled, params):
    texts, y = _xy(labeled)
    clf = tm.fit(texts[:250], y[:250], params)
    vec, lr = tm._fit_sklearn(texts[:250], y[:250], params)
    want = lr.predict_proba(vec.transform(texts[250:]))[:, 1]
    np.testing.assert_allclose(clf.proba(texts[250:]), want, atol=1e-6)


def test_grid_predictions_equal_a_vectorizer_fit_per_fold(labeled):
    texts, y = _xy(labeled[:150])
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(y, y))
    points = [tm.GRID[0], tm.GRID[30], tm.GRID[-1]]
    got = tm.grid_predictions(texts, y, folds, points)
    for p in points:
        want = np.zeros(len(y))
        for train, test in folds:
            vec, lr = tm._fit_sklearn([texts[i] for i in train], y[train], p)
            want[test] = lr.predict_proba(vec.transform([texts[i] for i in test]))[:, 1]
        np.testing.assert_allclose(got[p], want, atol=1e-9)


def test_train_command_writes_a_verified_folder_that_the_filter_and_eval_load(labeled, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(
        tm, "GRID", tm.GRID[::12]
    )  # 7 of the 84 points (every shape, both tf kinds): seconds, not minutes
    judged = _write_jsonl(tmp_path / "judged.jsonl", labeled[:200])
    out = str(tmp_path / "model")
    assert main(["quality", "train", "--kind", "tfidf_lr", "--labeled", judged, "--out", out, "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["kind"] == tm.KIND and manifest["chosen_by"]["grid_size"] == 7
    assert tm.TfidfParams(**manifest["params"]) in tm.GRID
    assert manifest["examples"]["hq"] + manifest["examples"]["lq"] == 200
    assert sorted(f["path"] for f in manifest["files"]) == [tm.VOCABULARY, tm.WEIGHTS]
    clf = classifiers.load(out)
    texts, y = _xy(labeled[200:])
    p = clf.proba(texts)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.7  # 200 human labels rank the other 155
    again = str(tmp_path / "again")
    assert main(["quality", "train", "--kind", "tfidf_lr", "--labeled", judged, "--out", again]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {again}: tfidf_lr")
    assert classifiers.load(again).sha256 == clf.sha256  # deterministic: the same bytes
    batch = documents([{"id": str(i), "text": t} for i, t in enumerate(texts)])
    f = build("quality", {"models": {"m": out}, "threshold": 0.5})
    scores, keep, _ = f.apply(DocView(batch))
    np.testing.assert_allclose(scores["quality.m"], p, rtol=1e-6)
    assert f.params()["model_sha256"] == {"m": clf.sha256}
    rest = _write_jsonl(tmp_path / "rest.jsonl", labeled[200:])
    assert main(["eval", "quality", "--model", out, "--labeled", rest, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["auc"] == round(float(roc_auc_score(y, p)), 4)


def test_changed_files_and_fasttext_options_are_refused(labeled, tmp_path):
    texts, y = _xy(labeled[:80])
    out = str(tmp_path / "m")
    tm.save(tm.fit(texts, y, tm.TfidfParams()), out, {})
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    with open(copy / tm.WEIGHTS, "ab") as f:
        f.write(b"\0")
    with pytest.raises(IntegrityError):
        classifiers.load(str(copy))
    with pytest.raises(ConfigError, match="positive label"):
        classifiers.load(out, "good")
    judged = _write_jsonl(tmp_path / "j.jsonl", labeled[:80])
    argv = ["quality", "train", "--kind", "tfidf_lr", "--labeled", judged, "--out", str(tmp_path / "x")]
    assert main([*argv, "--epoch", "5"]) == 2  # a fastText option
    with pytest.raises(ConfigError, match="ngram_min"):
        tm.TfidfParams(ngram_min=3, ngram_max=2)


def test_empty_and_long_texts_score(labeled, tmp_path):
    texts, y = _xy(labeled[:80])
    clf = tm.fit(texts, y, tm.TfidfParams())
    p = clf.proba(["", "words " * 2_000_000])  # 12 MB: only the first MAX_CHARS count
    assert p.shape == (2,) and np.isfinite(p).all()
    assert clf.proba([]).shape == (0,)


@pytest.fixture(scope="module")
def unlabeled(shared_data, tmp_path_factory):
    """300 web pool documents (their first 1,000 characters): vectors and the ensemble's reference scores."""
    import gzip

    rows = []
    with gzip.open(shared_data / "curation/web_pool/pool.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            rows.append({"id": row["id"], "text": row["text"][:1000]})
            if len(rows) == 300:
                break
    return _write_jsonl(tmp_path_factory.mktemp("pool") / "pool.jsonl", rows)


def test_ensemble_is_the_mean_of_its_members_reference_quantiles(labeled, unlabeled, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tm, "GRID", tm.GRID[::12])
    judged = _write_jsonl(tmp_path / "judged.jsonl", labeled[:150])
    out = str(tmp_path / "ens")
    tiny = ["--dim", "16", "--bucket", "16384"]
    argv = ["quality", "train", "--labeled", judged, "--unlabeled", unlabeled, *tiny, "--out", out, "--json"]
    monkeypatch.setattr(em, "EPOCHS", (5, 10))
    assert main(argv) == 0  # the default kind
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["kind"] == em.KIND and set(manifest["members"]) == {"tfidf_lr", "fasttext"}
    assert set(manifest["members"]["fasttext"]["epoch_cv"]) == {"5", "10"}
    assert manifest["members"]["fasttext"]["params"]["dim"] == 16 and manifest["reference"]["documents"] == 300
    clf = classifiers.load(out)
    texts, y = _xy(labeled[150:])
    p = clf.proba(texts)
    members = clf.member_scores(texts)
    want = (
        em.cdf(clf.references["tfidf_lr"], members["tfidf_lr"])
        + em.cdf(clf.references["fasttext"], members["fasttext"])
    ) / 2
    np.testing.assert_allclose(p, want, rtol=1e-6)
    assert ((p >= 0) & (p <= 1)).all() and p.std() > 0
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.7
    batch = documents([{"id": str(i), "text": t} for i, t in enumerate(texts)])
    f = build("quality", {"models": {"m": out}, "top_fraction": 0.5, "cutoff": 0.5})
    scores, keep, _ = f.apply(DocView(batch))
    np.testing.assert_allclose(scores["quality.m"], p, rtol=1e-6)
    assert f.params()["model_sha256"] == {"m": clf.sha256}
    with open(tmp_path / "ens" / em.FASTTEXT, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(IntegrityError):
        classifiers.load(out)


def test_ensemble_needs_unlabeled_documents(labeled, tmp_path):
    judged = _write_jsonl(tmp_path / "judged.jsonl", labeled[:40])
    assert main(["quality", "train", "--labeled", judged, "--out", str(tmp_path / "e")]) == 2
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(IntegrityError, match="manifest"):
        classifiers.load(str(tmp_path / "notamodel"))
