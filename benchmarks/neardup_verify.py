"""Which verification makes the best near-dup defaults: a sweep on the human-judged Webis pairs.

Candidates come from tamis's LSH (word 5-grams, 128 permutations, bands for
`--lsh-target`), once per seed; every verification variant then scores the
same candidates: the 16-bit signature estimate, bottom-k sketches of word
n-grams (k values), and exact word n-gram Jaccard. Clusters are union-find
over verified pairs, as in tamis. Reported per (variant, threshold): F1 mean,
min and max over seeds on all pairs and on two halves split by a hash of the
pair (a threshold chosen on one half is then scored on the other), beside
datasketch's F1 per threshold on the same splits. Every figure here is a
dev figure (chosen and scored on the same pairs); the defaults are chosen by
cross-validation in benchmarks/neardup_cv.py, which reports out-of-fold F1.
Data is read at run time, never copied.

    python benchmarks/neardup_verify.py --json --seeds 8     # saves benchmarks/results/neardup_verify.json
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from neardup import load_webis, run_datasketch  # the sibling benchmark (this folder is on sys.path)

from tamis.dedup.bottomk import bottom_k, similarity
from tamis.dedup.minhash import MinHasher, band_keys, choose_bands
from tamis.dedup.neardup import UnionFind, candidate_pairs
from tamis.dedup.shingles import Shingling, shingles
from tamis.eval.neardup import score

RESULTS = Path(__file__).resolve().parent / "results"
THRESHOLDS = np.round(np.arange(0.575, 0.7001, 0.0125), 4)


def splits(pairs):
    half = [int(hashlib.sha1((a + b).encode()).hexdigest(), 16) % 2 for a, b, _ in pairs]
    return {"all": pairs, **{f"half{h}": [p for p, x in zip(pairs, half, strict=True) if x == h] for h in (0, 1)}}


def f1_of(candidates, estimates, threshold, split):
    uf = UnionFind()
    for (a, b), e in zip(candidates, estimates, strict=True):
        if e >= threshold:
            uf.union(a, b)
    root = {x: uf.find(x) for x in uf.parent}
    return {name: score(p, root)["f1"] for name, p in split.items()}


def exact(a: np.ndarray, b: np.ndarray) -> float:
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--lsh-target", type=float, default=0.475)
    ap.add_argument("--ngrams", default="3,4,5")
    ap.add_argument("--ks", default="256,384,512")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=str(RESULTS / "neardup_verify.json"), help="where the JSON is saved")
    args = ap.parse_args()
    docs, pairs = load_webis()
    split = splits(pairs)
    ids, texts = [d["id"] for d in docs], [d["text"] for d in docs]
    at = {x: i for i, x in enumerate(ids)}
    ds_sigs = run_datasketch(docs, 0.5)[1]
    datasketch = {}
    for t in np.round(np.arange(0.3, 0.91, 0.05), 2):
        root = run_datasketch(docs, float(t), signatures=ds_sigs)[0]
        datasketch[str(t)] = {name: score(p, root)["f1"] for name, p in split.items()}
    ngrams, ks = [int(n) for n in args.ngrams.split(",")], [int(k) for k in args.ks.split(",")]
    exact_sets = {}
    for n in ngrams:
        h, off = shingles(texts, Shingling("word", n))
        exact_sets[n] = [np.unique(h[off[i] : off[i + 1]]) for i in range(len(texts))]
    bands, rows = choose_bands(args.lsh_target, 128)
    found: dict[str, list] = {}
    for seed in range(args.seeds):
        sig = MinHasher(128, seed).of_texts(texts, Shingling("word", 5))
        owners = [x for x in ids for _ in range(bands)]
        cands = sorted(set(candidate_pairs(band_keys(sig, bands, rows).ravel(), owners, 32)))
        ia, ib = [at[a] for a, _ in cands], [at[b] for _, b in cands]
        sketch = (sig >> np.uint64(48)).astype(np.uint16)
        variants = {"signature": np.mean(sketch[ia] == sketch[ib], axis=1)}
        for n in ngrams:
            sets = exact_sets[n]
            variants[f"exact-w{n}"] = [exact(sets[i], sets[j]) for i, j in zip(ia, ib, strict=True)]
            h, off = shingles(texts, Shingling("word", n))
            for k in ks:
                v, o = bottom_k(h, off, k, seed)
                sk = [v[o[i] : o[i + 1]] for i in range(len(texts))]
                variants[f"bottomk{k}-w{n}"] = [similarity(sk[i], sk[j], k) for i, j in zip(ia, ib, strict=True)]
        for name, est in variants.items():
            for t in THRESHOLDS:
                found.setdefault(f"{name}@{t}", []).append(f1_of(cands, est, t, split))
    out = {
        "protocol": "dev: every threshold scored on the pairs it could be chosen on (see neardup_cv.py for out-of-fold)",
        "pairs": len(pairs),
        "seeds": args.seeds,
        "lsh": {"target": args.lsh_target, "bands": bands, "rows": rows},
        "datasketch": datasketch,
        "variants": {},
    }
    for key, runs in found.items():
        out["variants"][key] = {
            name: {"mean": round(float(np.mean(v)), 4), "min": round(min(v), 4), "max": round(max(v), 4)}
            for name in split
            for v in [[r[name] for r in runs]]
        }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out) if args.json else json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
