"""Near-dup defaults chosen by cross-validation on the judged Webis pairs, and their out-of-fold F1 against datasketch.

    python benchmarks/neardup_cv.py --json            # saves benchmarks/results/neardup_cv.json

Every setting in a grid runs once over all 304 Webis documents (the near-dup
step is unsupervised; only the pair labels are training data), which gives
each judged pair a same-cluster-or-not prediction per setting. The pairs are
then cut into K folds by connected component of the pair graph (no document
lies in two folds; `StratifiedGroupKFold`, repeated with several seeds). For
each fold, each method's setting is chosen on the other folds' pairs, by the
method's criterion, and scored on the held-out fold:

- tamis: the `NearDupConfig` grid (verification shingles and sketch size ×
  threshold), chosen by `best_f1` (F1 on the training pairs) or by
  `smooth_f1` (F1 averaged over the threshold and its two neighbours in the
  grid, so a lucky spike between two bad thresholds is not taken);
- datasketch: `MinHashLSH(threshold=t, num_perm=128)` over MinHash
  signatures (128 permutations, as its docs use) of lowercased whitespace
  word n-grams, t in 0.30–0.90 and n in {1, 3, 5}, chosen the same two ways.

Reported per method: out-of-fold F1 (the held-out folds' predictions pooled,
per repeat; mean and range over repeats), the per-fold F1's mean and SD over
all folds, P and R, and how often each setting was chosen. The setting the
same rule picks on all pairs is what NearDupConfig's defaults should be
(`chosen_on_all_pairs`); it is a choice, not a result.
Data is read at run time from ../shared/data/curation/neardup/ and never copied.
"""

import argparse
import itertools
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from neardup import DATA, clusters_from_pairs, load_webis  # noqa: E402  (the sibling benchmark; this folder is on sys.path)
from sklearn.model_selection import StratifiedGroupKFold  # noqa: E402

from tamis.dedup.neardup import NearDupConfig, UnionFind, near_duplicates  # noqa: E402
from tamis.schema import documents  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = tuple(float(round(t, 3)) for t in np.arange(0.45, 0.8001, 0.025))
VERIFY = tuple(itertools.product((2, 3, 4, 5), (256, 384, 1024)))  # (verify_ngram, verify_k)
DS_THRESHOLDS = tuple(float(round(t, 2)) for t in np.arange(0.3, 0.901, 0.05))
DS_NGRAMS = (1, 3, 5)
FOLDS = 5
RULES = ("best_f1", "smooth_f1")


def components(pairs) -> np.ndarray:
    """The connected component of each pair in the graph of judged pairs (documents as nodes)."""
    uf = UnionFind()
    for a, b, _ in pairs:
        uf.union(a, b)
    roots = sorted({uf.find(a) for a, _, _ in pairs})
    at = {r: i for i, r in enumerate(roots)}
    return np.array([at[uf.find(a)] for a, _, _ in pairs])


def same_cluster(pairs, dup_of: dict[str, str]) -> np.ndarray:
    return np.array([dup_of.get(a, a) == dup_of.get(b, b) for a, b, _ in pairs])


def tamis_grid(docs, pairs, log) -> dict[tuple, np.ndarray]:
    """{(verify_ngram, verify_k, threshold): prediction per pair} for every grid point, on all documents."""
    batches = [documents([{"id": d["id"], "text": d["text"]} for d in docs[i : i + 1000]]) for i in range(0, len(docs), 1000)]
    out = {}
    for (n, k), t in itertools.product(VERIFY, THRESHOLDS):
        out[(n, k, t)] = same_cluster(pairs, near_duplicates(batches, NearDupConfig(verify_ngram=n, verify_k=k, threshold=t)))
    log(f"tamis grid: {len(out)} settings")
    return out


def word_ngrams(text: str, n: int) -> set[bytes]:
    w = text.lower().split()
    return {" ".join(w[i : i + n]).encode() for i in range(max(1, len(w) - n + 1))}


def datasketch_grid(docs, pairs, log) -> dict[tuple, np.ndarray]:
    """{(ngram, threshold): prediction per pair}: clusters of MinHashLSH candidates, as in benchmarks/neardup.py."""
    from datasketch import MinHash, MinHashLSH

    out = {}
    for n in DS_NGRAMS:
        sigs = {}
        for d in docs:
            sigs[d["id"]] = m = MinHash(num_perm=128, seed=1)
            m.update_batch(list(word_ngrams(d["text"], n)))
        for t in DS_THRESHOLDS:
            lsh, found = MinHashLSH(threshold=float(t), num_perm=128), []
            for d in docs:
                found += [(d["id"], o) for o in lsh.query(sigs[d["id"]])]
                lsh.insert(d["id"], sigs[d["id"]])
            out[(n, t)] = same_cluster(pairs, clusters_from_pairs(found))
    log(f"datasketch grid: {len(out)} settings")
    return out


def prf(labels: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int((pred & labels).sum())
    fp = int((pred & ~labels).sum())
    fn = int((~pred & labels).sum())
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def choose(grid: dict[tuple, np.ndarray], labels: np.ndarray, mask: np.ndarray, rule: str) -> tuple:
    """The grid point the rule picks on the pairs in `mask` (ties: the first in grid order)."""
    f1 = {key: prf(labels[mask], pred[mask])["f1"] for key, pred in grid.items()}
    if rule == "best_f1":
        return max(grid, key=lambda key: f1[key])

    def smooth(key: tuple) -> float:  # the threshold is the key's last field
        *rest, t = key
        near = [k for k in grid if tuple(k[:-1]) == tuple(rest)]
        ts = sorted(k[-1] for k in near)
        i = ts.index(t)
        return float(np.mean([f1[(*rest, x)] for x in ts[max(i - 1, 0) : i + 2]]))

    return max(grid, key=smooth)


def cross_validate(grid, labels, groups, subsets, rule: str, seeds: list[int]) -> dict:
    per_fold, pooled, picks, by_subset = [], [], {}, {name: [] for name in sorted(set(subsets))}
    for seed in seeds:
        pred = np.zeros(len(labels), bool)
        cv = StratifiedGroupKFold(FOLDS, shuffle=True, random_state=seed)
        for train, test in cv.split(labels, labels, groups):
            mask = np.zeros(len(labels), bool)
            mask[train] = True
            key = choose(grid, labels, mask, rule)
            picks[str(list(key))] = picks.get(str(list(key)), 0) + 1
            pred[test] = grid[key][test]
            per_fold.append(prf(labels[test], pred[test]))
        pooled.append(prf(labels, pred))
        for name, runs in by_subset.items():
            runs.append(prf(labels[subsets == name], pred[subsets == name])["f1"])
    f1s = np.array([f["f1"] for f in per_fold])
    oof = np.array([p["f1"] for p in pooled])
    return {
        "oof_f1_mean": round(float(oof.mean()), 4),
        "oof_f1_min": round(float(oof.min()), 4),
        "oof_f1_max": round(float(oof.max()), 4),
        "oof_precision_mean": round(float(np.mean([p["precision"] for p in pooled])), 4),
        "oof_recall_mean": round(float(np.mean([p["recall"] for p in pooled])), 4),
        "fold_f1_mean": round(float(f1s.mean()), 4),
        "fold_f1_sd": round(float(f1s.std(ddof=1)), 4),
        "oof_f1_by_subset": {str(name): round(float(np.mean(v)), 4) for name, v in by_subset.items()},
        "oof_f1_by_seed": [round(float(x), 4) for x in oof],
        "fold_f1": f1s.round(4).tolist(),
        "picks": dict(sorted(picks.items(), key=lambda kv: -kv[1])),
    }


def paired(a: dict, b: dict, n_seeds: int) -> dict:
    """a − b over the same folds: the mean of per-fold F1 differences, its SD and standard errors.

    The naive SE treats the folds as independent; the corrected one (Nadeau and Bengio) adds
    n_test/n_train = 1/(K-1) for the overlap of training sets across folds and repeats.
    """
    d = np.array(a["fold_f1"]) - np.array(b["fold_f1"])
    j = len(d)
    return {
        "oof_f1_gain": round(a["oof_f1_mean"] - b["oof_f1_mean"], 4),
        "fold_gain_mean": round(float(d.mean()), 4),
        "fold_gain_sd": round(float(d.std(ddof=1)), 4),
        "se_naive": round(float(d.std(ddof=1) / np.sqrt(j)), 4),
        "se_corrected": round(float(d.std(ddof=1) * np.sqrt(1 / j + 1 / (FOLDS - 1))), 4),
        "folds_ahead": f"{int((d > 0).sum())}/{j} ({int((d == 0).sum())} tied)",
    }


def run(seeds: list[int], log) -> dict:
    docs, pairs = load_webis()
    labels = np.array([bool(lab) for _, _, lab in pairs])
    subsets = np.array(pair_subsets())
    groups = components(pairs)
    started = time.perf_counter()
    tamis, datasketch = tamis_grid(docs, pairs, log), datasketch_grid(docs, pairs, log)
    grids = {
        "tamis": tamis,
        "tamis_k384": {key: v for key, v in tamis.items() if key[1] == 384},
        "datasketch": datasketch,
        "datasketch_5gram": {key: v for key, v in datasketch.items() if key[0] == 5},
    }
    everything = np.ones(len(labels), bool)
    out: dict = {
        "pairs": len(pairs),
        "positives": int(labels.sum()),
        "components": int(groups.max() + 1),
        "docs": len(docs),
        "folds": FOLDS,
        "seeds": seeds,
        "grid": {
            "tamis": {"verify_ngram_k": VERIFY, "thresholds": THRESHOLDS, "rest": "NearDupConfig defaults"},
            "datasketch": {"ngram": DS_NGRAMS, "thresholds": DS_THRESHOLDS, "num_perm": 128},
        },
        "methods": {},
    }
    for (name, grid), rule in itertools.product(grids.items(), RULES):
        cv = cross_validate(grid, labels, groups, subsets, rule, seeds)
        key = choose(grid, labels, everything, rule)
        cv["chosen_on_all_pairs"] = {
            "setting": [float(x) for x in key],
            "dev": {k: round(v, 4) for k, v in prf(labels, grid[key]).items()},
        }
        out["methods"][f"{name}/{rule}"] = cv
    out["paired_vs_datasketch"] = {
        f"{name}/{rule}": paired(out["methods"][f"{name}/{rule}"], out["methods"][f"datasketch/{rule}"], len(seeds))
        for name in ("tamis", "tamis_k384")
        for rule in RULES
    }
    cfg = NearDupConfig()
    default = (cfg.verify_ngram, cfg.verify_k, cfg.threshold)
    if default in tamis:
        out["tamis_default_dev"] = {"setting": list(default), **{k: round(v, 4) for k, v in prf(labels, tamis[default]).items()}}
    out["seconds"] = round(time.perf_counter() - started, 1)
    out["python"] = platform.python_version()
    return out


def pair_subsets() -> list[str]:
    with open(DATA / "neardup" / "webis_s3_pairs.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["subset"] for line in f]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10, help="repeated fold splits (seeds 0..N-1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--out", default=str(RESULTS / "neardup_cv.json"), help="where the JSON is saved")
    args = ap.parse_args()
    result = run(list(range(args.seeds)), log=lambda m: print(m, flush=True) if not args.json else None)
    text = json.dumps(result, indent=None if args.json else 1)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
