"""Quality classifiers on human labels: tamis's default fastText recipe vs TF-IDF + LR vs the Gopher rules.

    python benchmarks/quality.py --labeled FILE [--json] [--out RESULT.json] [--simulate]

Every learned model is trained from data under `../shared/data/` and never
scores a document it was trained on. FILE's documents are removed from all
training data, matched by id and by normalized text
(`tamis.eval.quality.drop_overlap`); L below is what is left of the shared
human labels (`quality/dclm_human_quality.jsonl`, DCLM's annotations).

- tamis, the default recipe (`train_tamis`), i.e. `tamis quality train
  --labeled L --unlabeled U --epoch 10 --lr 0.5 --balance false`: skipgram word
  vectors (dim 64, one epoch) are pretrained on U, the web pool's 13,652 real
  web documents minus FILE's, and the fastText classifier trained on L starts
  from them. docs/quality.md has the measurements behind the recipe.
- TF-IDF + logistic regression: trained on L, the same labels.
- Gopher rules (tamis `gopher_quality`): a keep/drop decision; accuracy is
  the number usually quoted.

When FILE is a held-out set, one model of each kind is trained on L and
scores FILE (`protocol` "holdout"). When FILE is mostly the shared labels
themselves (fewer than MIN_LABELS left in L), both learned models are
cross-fitted instead: FILE is cut into 5 stratified folds and each fold is
scored by models trained on L plus FILE's other folds (`protocol`
"cross-fit").

`--simulate` also runs the holdout protocol with FILE = each fold of the
shared labels in turn (5 stratified folds, 3 split seeds): what a held-back
split of those labels looks like to this benchmark.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score as roc_auc  # noqa: E402

from tamis.eval.quality import drop_overlap  # noqa: E402
from tamis.filters import fasttext_model as fm  # noqa: E402
from tamis.filters.fasttext_model import load_labeled  # noqa: E402
from tamis.filters.registry import build  # noqa: E402
from tamis.filters.text import DocView  # noqa: E402
from tamis.io.side_files import jsonl_rows  # noqa: E402
from tamis.schema import documents  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LABELS = "curation/quality/dclm_human_quality.jsonl"
POOL = "curation/web_pool/pool.jsonl.gz"
# A few hundred labels: ten passes at a high rate from pretrained vectors; the labels are
# near balanced (185/170), so none is dropped to balance them.
RECIPE = fm.FastTextParams(epoch=10, lr=0.5, balance=False)
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


def _write(path: Path, rows: list[dict]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return str(path)


def pretrain(shared: Path, unseen: list[dict], workdir: Path) -> dict:
    """Skipgram vectors on the web pool minus the documents in `unseen`; the entry `fm.train` takes."""
    with gzip.open(shared / POOL, "rt", encoding="utf-8") as f:
        pool = [{"id": r["id"], "text": r["text"]} for r in map(json.loads, f)]
    kept, removed = drop_overlap(pool, {r["id"] for r in unseen}, [r["text"] for r in unseen])
    start = time.perf_counter()
    entry = fm.pretrain_vectors([_write(workdir / "unlabeled.jsonl", kept)], str(workdir / "pool.vec"), RECIPE)
    return {**entry, "seconds": round(time.perf_counter() - start, 1), "pool_documents_removed": removed}


def train_tamis(train: list[dict], vectors: dict, workdir: Path, seed: int = 0) -> fm.Classifier:
    """`tamis quality train --labeled train` with the recipe's parameters, starting from `vectors`."""
    examples, entry = fm.read_judged(_write(workdir / "judged.jsonl", train))
    model = str(workdir / f"quality-{seed}.bin")
    fm.train(examples, model, RECIPE.model_copy(update={"seed": seed}), [entry], vectors=vectors)
    return fm.load(model)


def train_tfidf_lr(train: list[dict]):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2), LogisticRegression(max_iter=1000)
    )
    return pipe.fit([r["text"] for r in train], [r["quality_label"] for r in train])


def score(file_rows: list[dict], human: list[dict], vectors: dict, workdir: Path, seeds: list[int]) -> dict:
    """P(hq) of FILE's documents by tamis (one array per seed) and by TF-IDF + LR, and the protocol used."""
    rest, _ = drop_overlap(human, {r["id"] for r in file_rows}, [r["text"] for r in file_rows])
    texts = [r["text"] for r in file_rows]
    if len(rest) >= MIN_LABELS and len({r["quality_label"] for r in rest}) == 2:
        tamis = [train_tamis(rest, vectors, workdir, s).proba(texts) for s in seeds]
        protocol = f"holdout: trained on the {len(rest)} shared human labels not in FILE"
        return {"tamis": tamis, "tfidf_lr": train_tfidf_lr(rest).predict_proba(texts)[:, 1], "protocol": protocol}
    from sklearn.model_selection import StratifiedKFold

    y = np.array([r["quality_label"] for r in file_rows])
    tamis, tfidf = [np.zeros(len(y)) for _ in seeds], np.zeros(len(y))
    for train_idx, test_idx in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(y, y):
        train = rest + [file_rows[i] for i in train_idx]
        test = [texts[i] for i in test_idx]
        for p, s in zip(tamis, seeds, strict=True):
            p[test_idx] = train_tamis(train, vectors, workdir, s).proba(test)
        tfidf[test_idx] = train_tfidf_lr(train).predict_proba(test)[:, 1]
    protocol = (
        f"cross-fit: only {len(rest)} shared human labels are not in FILE (< {MIN_LABELS}), so each of "
        f"{FOLDS} stratified folds of FILE is scored by models trained on them plus FILE's other folds"
    )
    return {"tamis": tamis, "tfidf_lr": tfidf, "protocol": protocol}


def gopher_keep(texts: list[str]) -> np.ndarray:
    batch = documents([{"id": str(i), "text": t} for i, t in enumerate(texts)])
    _, keep, _ = build("gopher_quality").apply(DocView(batch))
    return np.asarray(keep, dtype=np.float64)


def _acc(labels: np.ndarray, p: np.ndarray) -> float:
    return round(float(((p >= 0.5) == (labels == 1)).mean()), 4)


def simulate(human: list[dict], vectors: dict, workdir: Path, split_seeds: list[int]) -> dict:
    """The holdout protocol with FILE = each stratified fold of the shared labels, for each split seed."""
    from sklearn.model_selection import StratifiedKFold

    y = np.array([r["quality_label"] for r in human])
    by_seed, gaps = {}, []
    for split in split_seeds:
        p_tamis, p_tfidf, folds = np.zeros(len(y)), np.zeros(len(y)), []
        for _, test in StratifiedKFold(FOLDS, shuffle=True, random_state=split).split(y, y):
            s = score([human[i] for i in test], human, vectors, workdir, [0])
            p_tamis[test], p_tfidf[test] = s["tamis"][0], s["tfidf_lr"]
            folds.append((roc_auc(y[test], p_tamis[test]), roc_auc(y[test], p_tfidf[test])))
        gaps += [t - f for t, f in folds]
        by_seed[str(split)] = {
            "auc_tamis_pooled": round(roc_auc(y, p_tamis), 4),
            "auc_tfidf_lr_pooled": round(roc_auc(y, p_tfidf), 4),
            "auc_tamis_folds": [round(t, 4) for t, _ in folds],
            "auc_tfidf_lr_folds": [round(f, 4) for _, f in folds],
        }
    mean = {
        k: round(float(np.mean([v[k] for v in by_seed.values()])), 4)
        for k in ("auc_tamis_pooled", "auc_tfidf_lr_pooled")
    }
    return {
        "folds": FOLDS,
        "split_seeds": split_seeds,
        **{f"{k}_mean": v for k, v in mean.items()},
        "fold_auc_gap_tamis_minus_tfidf_lr": {
            "mean": round(float(np.mean(gaps)), 4),
            "min": round(float(np.min(gaps)), 4),
            "folds_tamis_wins": f"{sum(g > 0 for g in gaps)}/{len(gaps)}",
        },
        "by_split_seed": by_seed,
    }


def run(labeled: str, shared: Path, seeds: list[int], simulate_splits: list[int]) -> dict:
    file_rows, human = read_rows(labeled), read_rows(shared / LABELS)
    texts = [r["text"] for r in file_rows]
    labels = np.array([r["quality_label"] for r in file_rows])
    with tempfile.TemporaryDirectory() as tmp:
        vectors = pretrain(shared, file_rows + human, Path(tmp))
        start = time.perf_counter()
        scores = score(file_rows, human, vectors, Path(tmp), seeds)
        learned_s = time.perf_counter() - start
        simulated = simulate(human, vectors, Path(tmp), simulate_splits) if simulate_splits else None
    aucs = [roc_auc(labels, p) for p in scores["tamis"]]
    keep = gopher_keep(texts)
    return {
        "labeled": str(labeled),
        "n": len(texts),
        "positives": int(labels.sum()),
        "protocol": scores["protocol"],
        "auc_tamis": round(aucs[0], 4),
        "accuracy_tamis": _acc(labels, scores["tamis"][0]),
        "auc_tamis_mean_over_seeds": round(float(np.mean(aucs)), 4),
        "auc_tamis_by_seed": {str(s): round(a, 4) for s, a in zip(seeds, aucs, strict=True)},
        "auc_tfidf_lr": round(roc_auc(labels, scores["tfidf_lr"]), 4),
        "accuracy_tfidf_lr": _acc(labels, scores["tfidf_lr"]),
        "auc_gopher": round(roc_auc(labels, keep), 4),
        "accuracy_gopher": _acc(labels, keep),
        "gopher_kept_fraction": round(float(keep.mean()), 4),
        "tamis_recipe": {
            "params": RECIPE.model_dump(),
            "vectors": {k: v for k, v in vectors.items() if k != "path"},
        },
        "simulated_holdout": simulated,
        "seconds": {"vectors": vectors["seconds"], "learned_models": round(learned_s, 1)},
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labeled", required=True, help="JSONL with text and quality_label (0/1)")
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/data (training data comes from here)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=[0, 1, 2], help="tamis training seeds; the first is auc_tamis"
    )
    parser.add_argument("--simulate", action="store_true", help="also run the simulated holdout on the shared labels")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", help="also save the JSON here")
    args = parser.parse_args()
    result = run(args.labeled, args.shared, args.seeds, [0, 1, 2] if args.simulate else [])
    text = json.dumps(result, indent=None if args.json else 1)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
