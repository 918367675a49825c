"""Nested cross-validation of quality-classifier recipes on the shared DCLM human labels.

Outer splits are stratified 5-fold, repeated with several seeds. Inside each
outer training set, an inner stratified 4-fold CV (mean of the inner folds'
ROC AUC) chooses each family's grid point; the family is refit at that
point on the whole outer training set and scored on the outer test fold,
which took no part in any choice. The families:

- `tfidf_lr`: TF-IDF + logistic regression over `tfidf_model.GRID` (84
  points: word 1-grams, 1–2-grams or char_wb 2–5-grams, sublinear tf or not,
  min_df 1 or 2, C 0.1–100): the peer at its best, tuned the same way;
  `tfidf_lr_fixed` is the untuned setting earlier comparisons used (word
  1–2-grams, sublinear tf, min_df 2, C 1), for reference;
- `fasttext_vectors`: fastText (dim 64, word bigrams, lr 0.5) starting from
  skipgram vectors pretrained on the web pool, epochs 5 / 10 / 20;
  `fasttext`: the same without vectors at epoch 20 (a fixed reference: what
  the unlabeled text adds);
- `minilm_lr`: logistic regression on MiniLM embeddings (C 0.1–30);
- `distilled`: BETR-style, the MiniLM + LR teacher (its inner choice of C)
  labels DISTILL_SAMPLE pool documents, and fastText on pool vectors learns
  those labels plus the human ones;
- rank-average ensembles of two families (each at its own inner choice): on
  the outer fold each model's score goes through its CDF on the pool sample,
  as the shipped ensemble does (`tamis.filters.ensemble_model`);
- `nested_choice`: the recipe choice itself made by inner CV, i.e. per outer
  fold the shippable candidate with the best inner score (MiniLM + LR needs a
  transformer at scoring time, 64× slower than fastText, so it is a reference).

Per candidate: mean AUC over all outer folds, their SD, and against TF-IDF + LR
the paired per-fold difference with two standard errors: the naive SD/sqrt(J)
and the Nadeau–Bengio corrected one, SD·sqrt(1/J + n_test/n_train), which
allows for the training sets that folds and repeats share.
"""

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from tamis.filters import fasttext_model as fm
from tamis.filters import tfidf_model

INNER_FOLDS = 4
MINILM_C = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
FASTTEXT_GRID = ((5, 0.5), (10, 0.5), (20, 0.5))  # (epoch, lr)
FASTTEXT_PLAIN = (20, 0.5)  # a fixed reference: no pretrained vectors, not among the choices
SHIPPABLE = ("tfidf_lr", "fasttext_vectors", "distilled", "fasttext_vectors+tfidf_lr", "distilled+tfidf_lr")
ENSEMBLES = (("fasttext_vectors", "tfidf_lr"), ("distilled", "tfidf_lr"), ("minilm_lr", "tfidf_lr"))


@dataclass
class Data:
    texts: list[str]
    ids: list[str]
    y: np.ndarray
    emb: np.ndarray  # MiniLM embeddings of the labeled texts
    pool_texts: list[str]  # the unlabeled pool sample (distillation data, ensemble CDFs)
    pool_emb: np.ndarray
    vectors: dict  # pretrained skipgram vectors (fm.pretrain_vectors entry)
    workdir: Path


def _fasttext(data: Data, train: np.ndarray, epoch: int, lr: float, vectors: bool, extra=()) -> fm.Classifier:
    examples = [
        fm.LabeledText(data.ids[i], fm.normalize(data.texts[i]), fm.POSITIVE if data.y[i] else fm.NEGATIVE)
        for i in train
    ] + list(extra)
    key = hashlib.sha1(json.dumps([sorted(data.ids[i] for i in train), epoch, lr, vectors, len(extra)]).encode())
    out = str(data.workdir / f"ft-{key.hexdigest()[:16]}.bin")
    params = fm.FastTextParams(epoch=epoch, lr=lr, balance=False)
    fm.train(examples, out, params, vectors=data.vectors if vectors else None)
    return fm.load(out)


def _minilm(data: Data, train: np.ndarray, c: float) -> LogisticRegression:
    return LogisticRegression(C=c, max_iter=2000).fit(data.emb[train], data.y[train])


def _distilled(data: Data, train: np.ndarray, teacher_c: float) -> fm.Classifier:
    """BETR-style: MiniLM + LR labels the pool sample; fastText (pool vectors) learns those labels and the human ones."""
    teacher = _minilm(data, train, teacher_c)
    hq = teacher.predict_proba(data.pool_emb)[:, 1] >= 0.5
    extra = [
        fm.LabeledText(f"pool:{i}", fm.normalize(t), fm.POSITIVE if h else fm.NEGATIVE)
        for i, (t, h) in enumerate(zip(data.pool_texts, hq, strict=True))
    ]
    return _fasttext(data, train, 5, 0.5, True, extra)


def _grid_scores(
    data: Data, train: np.ndarray, folds: list, predict: Callable[[np.ndarray, np.ndarray, object], np.ndarray], grid
) -> dict:
    """{config: inner out-of-fold predictions over `train`} for every grid point."""
    out = {}
    for config in grid:
        p = np.zeros(len(train))
        for tr, te in folds:
            p[te] = predict(train[tr], train[te], config)
        out[config] = p
    return out


def _inner_auc(y: np.ndarray, folds: list, p: np.ndarray) -> float:
    return float(np.mean([roc_auc_score(y[te], p[te]) for _, te in folds]))


def _rank(p: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(p, kind="stable"), kind="stable") / max(len(p) - 1, 1)


def _rank_in_folds(folds: list, p: np.ndarray) -> np.ndarray:
    out = np.zeros(len(p))
    for _, te in folds:
        out[te] = _rank(p[te])
    return out


def _cdf(reference: np.ndarray, p: np.ndarray) -> np.ndarray:
    ref = np.sort(reference)
    return (np.searchsorted(ref, p, side="left") + np.searchsorted(ref, p, side="right")) / (2 * len(ref))


def outer_fold(data: Data, train: np.ndarray, test: np.ndarray, inner_k: int, seed: int, log) -> dict:
    """Inner CV choices on `train`, refits, and the outer test predictions of every candidate."""
    y_tr = data.y[train]
    folds = list(StratifiedKFold(inner_k, shuffle=True, random_state=seed).split(y_tr, y_tr))
    texts = np.array(data.texts, dtype=object)
    inner: dict[str, dict] = {}
    t0 = time.perf_counter()
    inner["tfidf_lr"] = tfidf_model.grid_predictions(list(texts[train]), y_tr, folds)
    inner["minilm_lr"] = _grid_scores(
        data, train, folds, lambda tr, te, c: _minilm(data, tr, c).predict_proba(data.emb[te])[:, 1], MINILM_C
    )
    inner["fasttext_vectors"] = _grid_scores(
        data, train, folds, lambda tr, te, g: _fasttext(data, tr, *g, True).proba(texts[te]), FASTTEXT_GRID
    )
    scores = {f: {c: _inner_auc(y_tr, folds, p) for c, p in grid.items()} for f, grid in inner.items()}
    chosen = {f: max(s, key=s.get) for f, s in scores.items()}
    teacher_c = chosen["minilm_lr"]
    inner["distilled"] = _grid_scores(
        data, train, folds, lambda tr, te, c: _distilled(data, tr, c).proba(texts[te]), (teacher_c,)
    )
    scores["distilled"] = {teacher_c: _inner_auc(y_tr, folds, inner["distilled"][teacher_c])}
    chosen["distilled"] = teacher_c
    log(f"  inner CV {time.perf_counter() - t0:.0f}s; chosen {chosen}")

    best = {f: {"config": _jsonable(chosen[f]), "inner_auc": scores[f][chosen[f]]} for f in inner}
    for a, b in ENSEMBLES:
        ens = (_rank_in_folds(folds, inner[a][chosen[a]]) + _rank_in_folds(folds, inner[b][chosen[b]])) / 2
        best[f"{a}+{b}"] = {"config": None, "inner_auc": _inner_auc(y_tr, folds, ens)}

    # refit each family at its choice on the whole outer training set
    test_texts, pool = list(texts[test]), data.pool_texts
    tfidf = tfidf_model.fit(list(texts[train]), y_tr, chosen["tfidf_lr"])
    fixed = tfidf_model.fit(list(texts[train]), y_tr, tfidf_model.TfidfParams())  # the previous peer, untuned
    minilm = _minilm(data, train, chosen["minilm_lr"])
    ft = _fasttext(data, train, *FASTTEXT_PLAIN, False)
    ftv = _fasttext(data, train, *chosen["fasttext_vectors"], True)
    dist = _distilled(data, train, teacher_c)
    models = {
        "tfidf_lr": (tfidf.proba(test_texts), tfidf.proba(pool)),
        "tfidf_lr_fixed": (fixed.proba(test_texts), fixed.proba(pool)),
        "minilm_lr": (minilm.predict_proba(data.emb[test])[:, 1], minilm.predict_proba(data.pool_emb)[:, 1]),
        "fasttext": (ft.proba(test_texts), ft.proba(pool)),
        "fasttext_vectors": (ftv.proba(test_texts), ftv.proba(pool)),
        "distilled": (dist.proba(test_texts), dist.proba(pool)),
    }
    preds = {f: p for f, (p, _) in models.items()}
    for a, b in ENSEMBLES:
        preds[f"{a}+{b}"] = (_cdf(models[a][1], models[a][0]) + _cdf(models[b][1], models[b][0])) / 2
    pick = max(SHIPPABLE, key=lambda f: best[f]["inner_auc"])
    preds["nested_choice"] = preds[pick]
    best["nested_choice"] = {"config": pick, "inner_auc": best[pick]["inner_auc"]}
    y_te = data.y[test]
    return {
        "test": test.tolist(),
        "chosen": best,
        "auc": {f: float(roc_auc_score(y_te, p)) for f, p in preds.items()},
        "preds": {f: np.asarray(p, dtype=float).round(6).tolist() for f, p in preds.items()},
    }


def _jsonable(config):
    if isinstance(config, tfidf_model.TfidfParams):
        return config.model_dump()
    return list(config) if isinstance(config, tuple) else config


def run_nested(data: Data, outer_k: int, inner_k: int, repeats: list[int], cache: Path | None, log=print) -> dict:
    """Every outer fold of every repeat (cached per fold when `cache` is given), and the summary table."""
    folds = []
    for r in repeats:
        for k, (train, test) in enumerate(StratifiedKFold(outer_k, shuffle=True, random_state=r).split(data.y, data.y)):
            path = cache and cache / f"outer-r{r}-k{k}.json"
            if path and path.exists():
                folds.append({**json.loads(path.read_text()), "from_cache": True})
                continue
            log(f"repeat {r} outer fold {k}")
            fold = {"repeat": r, "fold": k, **outer_fold(data, train, test, inner_k, 1000 * r + k, log)}
            if path:
                path.write_text(json.dumps(fold))
            folds.append(fold)
    return summarize(folds, len(data.y), outer_k)


def summarize(folds: list[dict], n: int, outer_k: int) -> dict:
    names = list(folds[0]["auc"])
    j = len(folds)
    ratio = 1 / (outer_k - 1)  # n_test / n_train
    table = {}
    peer = np.array([f["auc"]["tfidf_lr"] for f in folds])
    for name in names:
        auc = np.array([f["auc"][name] for f in folds])
        d = auc - peer
        table[name] = {
            "auc_mean": round(float(auc.mean()), 4),
            "auc_sd": round(float(auc.std(ddof=1)), 4),
            "auc_min": round(float(auc.min()), 4),
            "auc_max": round(float(auc.max()), 4),
            "diff_vs_tfidf_lr": round(float(d.mean()), 4),
            "diff_se_naive": round(float(d.std(ddof=1) / np.sqrt(j)), 4),
            "diff_se_corrected": round(float(d.std(ddof=1) * np.sqrt(1 / j + ratio)), 4),
            "folds_ahead_of_tfidf_lr": f"{int((d > 0).sum())}/{j}",
            "auc_mean_by_repeat": {
                str(r): round(float(np.mean([f["auc"][name] for f in folds if f["repeat"] == r])), 4)
                for r in sorted({f["repeat"] for f in folds})
            },
        }
    choices: dict[str, int] = {}
    for f in folds:
        choices[f["chosen"]["nested_choice"]["config"]] = choices.get(f["chosen"]["nested_choice"]["config"], 0) + 1
    return {
        "n": n,
        "outer_folds": outer_k,
        "repeats": sorted({f["repeat"] for f in folds}),
        "outer_fold_count": j,
        "outer_folds_from_cache": sum(bool(f.get("from_cache")) for f in folds),
        "table": table,
        "nested_choice_picks": choices,
        "inner_choices": [{"repeat": f["repeat"], "fold": f["fold"], **f["chosen"]} for f in folds],
    }


DISTILL_SAMPLE = 4000  # pool documents the teacher labels (and the ensembles' CDFs are read on)
EMBED_CHARS = 2000  # MiniLM reads 256 word pieces; this prefix covers them


def pool_sample(pool: list[dict], n: int = DISTILL_SAMPLE, seed: int = 0) -> list[dict]:
    """The n pool documents with the smallest hash of (seed, id): the same sample whatever the file order."""
    key = lambda r: hashlib.blake2b(f"{seed}\x00{r['id']}".encode("utf-8", "surrogatepass"), digest_size=8).digest()  # noqa: E731
    return sorted(pool, key=key)[:n]


def embed(texts: list[str], ids: list[str], cache: Path | None, name: str) -> np.ndarray:
    """MiniLM embeddings of texts' first EMBED_CHARS characters, one thread, kept in `cache` for reruns."""
    digest = hashlib.sha256(json.dumps(ids).encode()).hexdigest()[:16]
    path = cache and cache / f"minilm-{name}-{digest}.npy"
    if path and path.exists():
        return np.load(path, allow_pickle=False)
    import torch

    from tamis.embeddings import Embedder

    torch.set_num_threads(1)
    vectors = Embedder(device="cpu").encode([t[:EMBED_CHARS] for t in texts])
    if path:
        np.save(path, vectors)
    return vectors


def build_data(human: list[dict], pool: list[dict], vectors: dict, workdir: Path, cache: Path | None) -> Data:
    sample = pool_sample(pool)
    ids = [r["id"] for r in human]
    return Data(
        texts=[r["text"] for r in human],
        ids=ids,
        y=np.array([r["quality_label"] for r in human]),
        emb=embed([r["text"] for r in human], ids, cache, "labels"),
        pool_texts=[r["text"] for r in sample],
        pool_emb=embed([r["text"] for r in sample], [r["id"] for r in sample], cache, "pool"),
        vectors=vectors,
        workdir=workdir,
    )
