"""Quality classifiers on human labels: tamis's default (ensemble) vs TF-IDF + LR tuned by CV vs the Gopher rules.

    python benchmarks/quality.py --labeled FILE [--json] [--out RESULT.json]
    python benchmarks/quality.py --nested [--repeats 0 1 2] [--cache DIR] [--json]

**Held-out mode** (`--labeled FILE`). Every learned model is trained from data
under `../shared/data/` and never scores a document it was trained on: FILE's
documents are removed from all training data, labeled and unlabeled, matched
by id and by normalized text (`tamis.eval.quality.drop_overlap`). L is the
shared human labels (`quality/dclm_human_quality.jsonl`, DCLM's annotations)
minus FILE; U is the web pool minus FILE.

- `auc_tamis`: the default, `tamis quality train --labeled L --unlabeled U`
  (tamis.filters.ensemble_model): TF-IDF + LR and fastText on skipgram vectors
  pretrained on U, each tuned by 5-fold CV on L, scores averaged as ranks
  against U.
- `auc_tfidf_lr`: the peer, scikit-learn's TfidfVectorizer + LogisticRegression
  with its settings (analyzer and n-grams, sublinear tf, min_df, C) chosen by
  GridSearchCV (5-fold, ROC AUC) on L, then refit on L.
- `auc_fasttext`: the ensemble's fastText member alone (the previous default).
- Gopher rules (tamis `gopher_quality`): a keep/drop decision.

When FILE is mostly the shared labels themselves (fewer than MIN_LABELS left
in L), the learned models are cross-fitted instead: FILE is cut into 5
stratified folds and each fold is scored by models trained on L plus FILE's
other folds (`protocol` "cross-fit").

**Nested mode** (`--nested`): the recipe choice itself under nested
cross-validation on the shared labels (benchmarks/quality_nested.py has the
protocol), saved as benchmarks/results/quality_nested.json. `--cache DIR`
keeps embeddings, vectors and finished outer folds for reruns.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score as roc_auc  # noqa: E402

from tamis.eval.quality import drop_overlap  # noqa: E402
from tamis.filters import ensemble_model  # noqa: E402
from tamis.filters import fasttext_model as fm  # noqa: E402
from tamis.filters.fasttext_model import load_labeled  # noqa: E402
from tamis.filters.registry import build  # noqa: E402
from tamis.filters.text import DocView  # noqa: E402
from tamis.io.side_files import jsonl_rows  # noqa: E402
from tamis.schema import documents  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
LABELS = "curation/quality/dclm_human_quality.jsonl"
POOL = "curation/web_pool/pool.jsonl.gz"
MIN_LABELS = 100  # fewer shared labels left outside FILE than this: cross-fit on FILE
FOLDS = 5


def read_rows(path: str | Path) -> list[dict]:
    """A labeled file's rows (id, text, quality_label), validated; rows without an id get their line number."""
    texts, labels = load_labeled(path)
    raw = [row for _, row in jsonl_rows(str(path))]
    return [
        {"id": str(r.get("id", f"line:{i}")), "text": t, "quality_label": int(y)}
        for i, (r, t, y) in enumerate(zip(raw, texts, labels, strict=True))
    ]


def read_pool(shared: Path) -> list[dict]:
    with gzip.open(shared / POOL, "rt", encoding="utf-8") as f:
        return [{"id": r["id"], "text": r["text"]} for r in map(json.loads, f)]


def _write(path: Path, rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return str(path)


def unlabeled(shared: Path, unseen: list[dict], workdir: Path, cache: Path | None) -> tuple[str, dict]:
    """The web pool minus `unseen`'s documents as a file, and skipgram vectors pretrained on it (cached by content)."""
    kept, removed = drop_overlap(read_pool(shared), {r["id"] for r in unseen}, [r["text"] for r in unseen])
    path = _write(workdir / "unlabeled.jsonl", kept)
    params = ensemble_model.member_params()
    digest = hashlib.sha256(json.dumps([[r["id"] for r in kept], params.model_dump()]).encode()).hexdigest()[:16]
    where = (cache or workdir) / f"pool-{digest}.vec"
    start = time.perf_counter()
    if cache and where.exists() and where.with_suffix(".json").exists():
        entry = json.loads(where.with_suffix(".json").read_text())
    else:
        entry = fm.pretrain_vectors([path], str(where), params)
        where.with_suffix(".json").write_text(json.dumps(entry))
    entry = {**entry, "path": str(where)}
    return path, {**entry, "seconds": round(time.perf_counter() - start, 1), "pool_documents_removed": removed}


def train_tamis(train: list[dict], pool_file: str, vectors: dict, workdir: Path) -> ensemble_model.EnsembleClassifier:
    """`tamis quality train --labeled train --unlabeled pool_file` (the default kind), reusing `vectors`."""
    out = workdir / "ensemble"
    shutil.rmtree(out, ignore_errors=True)
    texts, labels = [r["text"] for r in train], np.array([r["quality_label"] for r in train])
    source = {"path": "labels", "documents": len(train), "label": "quality_label"}
    ensemble_model.train(texts, labels, [pool_file], str(out), [source], vectors=vectors)
    return ensemble_model.load(str(out))


def train_tfidf_lr(train: list[dict]):
    """The peer: scikit-learn's TfidfVectorizer + LogisticRegression, tuned by GridSearchCV on the training labels.

    The grid is tamis.filters.tfidf_model.GRID (word 1-grams, 1–2-grams or char_wb 2–5-grams,
    sublinear tf or not, min_df 1 or 2, C from 0.1 to 100), in that order, under 5-fold stratified
    CV by mean fold ROC AUC, then refit on all of `train`: written with scikit-learn alone.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    from tamis.filters.tfidf_model import GRID

    grid = [
        {
            "tfidf__analyzer": [p.analyzer],
            "tfidf__ngram_range": [(p.ngram_min, p.ngram_max)],
            "tfidf__sublinear_tf": [p.sublinear_tf],
            "tfidf__min_df": [p.min_df],
            "lr__C": [p.c],
        }
        for p in GRID
    ]
    with tempfile.TemporaryDirectory() as cache:
        pipe = Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression(max_iter=2000))], memory=cache)
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        search = GridSearchCV(pipe, grid, scoring="roc_auc", cv=folds, refit=True)
        search.fit([r["text"] for r in train], [r["quality_label"] for r in train])
    return search.best_estimator_


def _models(train: list[dict], test: list[str], pool_file: str, vectors: dict, workdir: Path) -> dict:
    tamis = train_tamis(train, pool_file, vectors, workdir)
    members = tamis.member_scores(test)
    return {
        "tamis": tamis.proba(test),
        "tfidf_lr": train_tfidf_lr(train).predict_proba(test)[:, 1],
        "fasttext": members["fasttext"],
        "tamis_tfidf_member": members["tfidf_lr"],
        "chosen": tamis.manifest["members"],
    }


def score(file_rows: list[dict], human: list[dict], pool_file: str, vectors: dict, workdir: Path) -> dict:
    """Scores of FILE's documents by every learned model, and the protocol used."""
    rest, _ = drop_overlap(human, {r["id"] for r in file_rows}, [r["text"] for r in file_rows])
    texts = [r["text"] for r in file_rows]
    if len(rest) >= MIN_LABELS and len({r["quality_label"] for r in rest}) == 2:
        out = _models(rest, texts, pool_file, vectors, workdir)
        return {**out, "protocol": f"holdout: trained on the {len(rest)} shared human labels not in FILE"}
    from sklearn.model_selection import StratifiedKFold

    y = np.array([r["quality_label"] for r in file_rows])
    out = {name: np.zeros(len(y)) for name in ("tamis", "tfidf_lr", "fasttext", "tamis_tfidf_member")}
    chosen = []
    for train_idx, test_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(y, y):
        fold = _models(
            rest + [file_rows[i] for i in train_idx], [texts[i] for i in test_idx], pool_file, vectors, workdir
        )
        for name in out:
            out[name][test_idx] = fold[name]
        chosen.append(fold["chosen"])
    protocol = (
        f"cross-fit: only {len(rest)} shared human labels are not in FILE (< {MIN_LABELS}), so each of "
        f"{FOLDS} stratified folds of FILE is scored by models trained on them plus FILE's other folds"
    )
    return {**out, "chosen": chosen, "protocol": protocol}


def gopher_keep(texts: list[str]) -> np.ndarray:
    batch = documents([{"id": str(i), "text": t} for i, t in enumerate(texts)])
    _, keep, _ = build("gopher_quality").apply(DocView(batch))
    return np.asarray(keep, dtype=np.float64)


def _acc(labels: np.ndarray, p: np.ndarray, cut: float = 0.5) -> float:
    return round(float(((p >= cut) == (labels == 1)).mean()), 4)


def run(labeled: str, shared: Path, cache: Path | None) -> dict:
    file_rows, human = read_rows(labeled), read_rows(shared / LABELS)
    texts = [r["text"] for r in file_rows]
    labels = np.array([r["quality_label"] for r in file_rows])
    with tempfile.TemporaryDirectory() as tmp:
        pool_file, vectors = unlabeled(shared, file_rows + human, Path(tmp), cache)
        start = time.perf_counter()
        scores = score(file_rows, human, pool_file, vectors, Path(tmp))
        learned_s = time.perf_counter() - start
    keep = gopher_keep(texts)
    auc = {name: round(roc_auc(labels, scores[name]), 4) for name in ("tamis", "tfidf_lr", "fasttext")}
    return {
        "labeled": str(labeled),
        "n": len(texts),
        "positives": int(labels.sum()),
        "protocol": scores["protocol"],
        "auc_tamis": auc["tamis"],
        "auc_tfidf_lr": auc["tfidf_lr"],
        "auc_fasttext": auc["fasttext"],
        "auc_tamis_tfidf_member": round(roc_auc(labels, scores["tamis_tfidf_member"]), 4),
        "auc_gap_tamis_minus_tfidf_lr": round(auc["tamis"] - auc["tfidf_lr"], 4),
        "accuracy_tfidf_lr": _acc(labels, scores["tfidf_lr"]),
        "auc_gopher": round(roc_auc(labels, keep), 4),
        "accuracy_gopher": _acc(labels, keep),
        "gopher_kept_fraction": round(float(keep.mean()), 4),
        "tamis": {
            "recipe": "tamis quality train --labeled L --unlabeled U (kind ensemble)",
            "score": "mean of the members' quantiles among the pool's reference scores (not a probability)",
            "members": scores["chosen"],
            "vectors": {k: v for k, v in vectors.items() if k != "path"},
        },
        "peer": "sklearn TfidfVectorizer + LogisticRegression, GridSearchCV over tamis.filters.tfidf_model.GRID",
        "seconds": {"vectors": vectors["seconds"], "learned_models": round(learned_s, 1)},
        "python": platform.python_version(),
    }


def run_nested(shared: Path, repeats: list[int], cache: Path | None, log) -> dict:
    import quality_nested as qn  # the sibling module (this folder is on sys.path)

    human = read_rows(shared / LABELS)
    with tempfile.TemporaryDirectory() as tmp:
        _, vectors = unlabeled(shared, human, Path(tmp), cache)
        kept, _ = drop_overlap(read_pool(shared), {r["id"] for r in human}, [r["text"] for r in human])
        data = qn.build_data(human, kept, vectors, Path(tmp), cache)
        start = time.perf_counter()
        result = qn.run_nested(data, FOLDS, qn.INNER_FOLDS, repeats, cache, log)
    return {**result, "seconds": round(time.perf_counter() - start, 1), "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--labeled", help="held-out JSONL with text and quality_label (0/1)")
    what.add_argument("--nested", action="store_true", help="nested CV of the recipes on the shared labels")
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/data (training data comes from here)")
    parser.add_argument("--repeats", type=int, nargs="+", default=[0, 1, 2], help="--nested: outer split seeds")
    parser.add_argument("--cache", type=Path, help="keep embeddings, vectors and finished outer folds here")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--out", help="also save the JSON here (--nested: default benchmarks/results/quality_nested.json)"
    )
    args = parser.parse_args()
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
    if args.nested:
        log = (lambda m: None) if args.json else (lambda m: print(m, flush=True))
        result = run_nested(args.shared, args.repeats, args.cache, log)
        out = args.out or str(RESULTS / "quality_nested.json")
    else:
        result, out = run(args.labeled, args.shared, args.cache), args.out
    if out:
        Path(out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=None if args.json else 1))


if __name__ == "__main__":
    main()
