"""`tamis mix` on 100k+ web documents: achieved vs target token shares, the blend's prefixes, and two peers.

    python benchmarks/mix.py [--docs N] [--work DIR] [--workers W] [--json]

Grows N documents from the shared web pool's real text (each a random run of
3-12 lines of one pool source, fixed seed) as Parquet files named by source
group, curates them with a config that keeps every document (gopher_quality
scores only, no thresholds, no dedup), then mixes four domains defined the
three ways a config can: by source glob (stackexchange-*.parquet), by a meta
field (the pool source l3s-gn1, news pages), by a score bucket
(gopher_quality.word_count >= 350), and the rest. Tokens are counted with the
MiniLM tokenizer.json. The news domain is capped at 2 epochs, so the shortfall
redistribution shows.

Peers, side by side on the same documents and token counts (chars/4 here, so
they run in seconds): Dolma-style Bernoulli sampling (each document kept with
probability target/size, repeats for whole epochs, by a hash of the id) against
tamis's hash-threshold selection, both measured as the largest |achieved -
target| token share over the domains. For the blend, the largest deviation of
any domain's token share over the prefixes (every 1% of the mixture) of the
written output (blended by tokens), against the same samples blended by
Megatron's rule on sample counts, in random order, and concatenated domain by
domain.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from tamis import config  # noqa: E402
from tamis.io import run_dir  # noqa: E402
from tamis.mixers.blend import interleave  # noqa: E402
from tamis.mixers.domains import assign  # noqa: E402
from tamis.mixers.plan import Docs, build  # noqa: E402
from tamis.mixers.sampling import doc_keys  # noqa: E402
from tamis.mixers.spec import TokenizerSpec  # noqa: E402
from tamis.mixers.tokens import TokenCounter  # noqa: E402
from tamis.pipelines import curate, mix  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POOL = SHARED / "curation" / "web_pool" / "pool.jsonl.gz"
RESULTS = Path(__file__).resolve().parent / "results" / "mix.json"
_NO_LIMITS = {k: None for k in ("min_doc_words", "max_doc_words", "min_mean_word_length", "max_mean_word_length",
                                "max_symbol_word_ratio", "max_bullet_lines_ratio", "max_ellipsis_lines_ratio",
                                "min_alpha_words_ratio", "min_stop_words")}
DOMAINS = [
    {"name": "stackexchange", "source": "*/stackexchange-*.parquet"},
    {"name": "news", "meta": {"source": "l3s-gn1"}, "max_epochs": 2},
    {"name": "long_web", "score": "gopher_quality.word_count >= 350"},
    {"name": "web"},
]
WEIGHTS = {"stackexchange": 0.3, "news": 0.2, "long_web": 0.25, "web": 0.25}


def grow(n_docs: int, folder: Path, per_file: int = 20_000, seed: int = 0) -> None:
    """N documents of 3-12 lines (>= 40 chars) of one pool source each; sources drawn by their share of lines."""
    by_source: dict[str, list[str]] = {}
    with gzip.open(POOL, "rt", encoding="utf-8") as f:
        for row in f:
            r = json.loads(row)
            by_source.setdefault(r["source"], []).extend(ln for ln in r["text"].split("\n") if len(ln) >= 40)
    names = sorted(by_source)
    lines = {s: np.array(by_source[s], dtype=object) for s in names}
    p = np.array([len(lines[s]) for s in names], dtype=np.float64)
    rng = np.random.default_rng(seed)
    source = np.array(names)[rng.choice(len(names), size=n_docs, p=p / p.sum())]
    folder.mkdir(parents=True, exist_ok=True)
    for group in ("stackexchange", "web"):
        idx = np.flatnonzero((source == "stackexchange") == (group == "stackexchange"))
        for k, start in enumerate(range(0, len(idx), per_file)):
            rows = idx[start : start + per_file]
            texts = []
            for i in rows:
                pool = lines[source[i]]
                texts.append("\n".join(pool[rng.integers(0, len(pool), size=int(rng.integers(3, 13)))]))
            pq.write_table(pa.table({"id": [f"syn-{i:07d}" for i in rows], "text": texts,
                                     "source": source[rows].tolist()}), folder / f"{group}-{k:05d}.parquet")


def curate_cfg(src: Path, out: Path, workers: int) -> config.CurateConfig:
    return config.parse({
        "inputs": [{"path": str(src / "*.parquet")}],
        "output": str(out),
        "exact_dedup": {"enabled": False},
        "filters": [{"name": "gopher_quality", "params": _NO_LIMITS}],
        "runner": {"workers": workers},
    })


def mix_cfg(run: str, out: Path, budget: int, workers: int, tokenizer: dict) -> mix.MixConfig:
    return mix.MixConfig(inputs=[run], output=str(out), budget_tokens=budget, tokenizer=tokenizer, domains=DOMAINS,
                         weights={"given": WEIGHTS}, max_epochs=4, runner={"workers": workers})


def approx_docs(run: str, spec: mix.MixConfig) -> Docs:
    """The plan's per-document table with chars/4 token counts, read straight from the curated shards."""
    counter = TokenCounter(TokenizerSpec(chars_per_token=4.0))
    tables = []
    m = run_dir.load(run, verify=False)
    for p, s in enumerate(m["shards"]):
        t = pq.read_table(Path(run) / s["path"], columns=["id", "text", "source", "meta", "gopher_quality.word_count"])
        b = t.combine_chunks().to_batches()[0]
        dom = assign(b, spec.domains)
        tok = counter.count(b.column("text"))
        tables.append(Docs(np.full(b.num_rows, p, np.int32), np.arange(b.num_rows), dom, tok, tok * 4,
                           doc_keys(b.column("id").to_pylist(), spec.seed)))
    return Docs.concat(tables)


def bernoulli_error(docs: Docs, spec: mix.MixConfig, targets: dict[str, int]) -> float:
    """Largest |achieved - target| share when each document is kept with probability frac(r) (Dolma-style)."""
    names = [d.name for d in spec.domains]
    u = (docs.key >> np.uint64(11)).astype(np.float64) / 2.0**53
    achieved = np.zeros(len(names))
    for d, name in enumerate(names):
        sel = docs.domain == d
        size = docs.tokens[sel].sum()
        r = targets[name] / size if size else 0.0
        copies = np.floor(r) + (u[sel] < r - np.floor(r))
        achieved[d] = (copies * docs.tokens[sel]).sum()
    target = np.array([targets[n] for n in names], dtype=np.float64)
    return float(np.abs(achieved / achieved.sum() - target / target.sum()).max())


def prefix_error(domain: np.ndarray, tokens: np.ndarray, target: np.ndarray, points: int = 100) -> float:
    """Largest |token share - target share| of any domain over the prefixes ending every 1/points of the samples."""
    cum = np.zeros((len(domain), len(target)))
    cum[np.arange(len(domain)), domain] = tokens
    cum = np.cumsum(cum, axis=0)
    ends = np.unique(np.linspace(len(domain) // points, len(domain), points).astype(int)) - 1
    shares = cum[ends] / cum[ends].sum(1, keepdims=True)
    return float(np.abs(shares - target[None, :]).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", type=int, default=110_000)
    ap.add_argument("--work", default="/tmp/tamis-mix-bench")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--budget-fraction", type=float, default=0.6,
                    help="token budget as a share of the corpus's chars/4 token estimate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    src, run = work / f"corpus-{args.docs}", work / f"curated-{args.docs}"
    times = {}
    t = time.time()
    if not src.exists():
        grow(args.docs, src.with_suffix(".tmp"))
        src.with_suffix(".tmp").rename(src)
    times["grow_s"] = round(time.time() - t, 1)
    t = time.time()
    curated = curate.run(curate_cfg(src, run, args.workers))
    times["curate_s"] = round(time.time() - t, 1)
    real = {"path": "all-MiniLM-L6-v2"}
    approx = approx_docs(str(run), mix_cfg(str(run), work / "unused", 1, 1, real))
    budget = int(approx.tokens[approx.domain >= 0].sum() * args.budget_fraction)  # of the chars/4 estimate
    out = work / f"mix-{args.docs}-{budget}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, timed whole
    t = time.time()
    m = mix.run(mix_cfg(str(run), out, budget, args.workers, real))
    times["mix_s"] = round(time.time() - t, 1)

    names = list(m["domains"])
    target = np.array([m["domains"][n]["target_share"] for n in names])
    table = pq.read_table(out / "shards", columns=["position", "domain", "tokens"])
    table = table.sort_by("position")
    dom = np.array([names.index(d) for d in table.column("domain").to_pylist()])
    tok = table.column("tokens").to_numpy()
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(dom))
    concat = np.argsort(dom, kind="stable")
    # Megatron's rule on sample counts, over the same samples in the same order within each domain.
    by_samples = interleave(np.bincount(dom, minlength=len(names)))
    megatron = np.empty(len(dom), dtype=np.int64)
    for d in range(len(names)):
        megatron[by_samples == d] = np.flatnonzero(dom == d)

    spec = mix_cfg(str(run), out, budget, 1, {"chars_per_token": 4.0})
    _, report = build(approx, spec)
    targets = {n: d["target_tokens"] for n, d in report["domains"].items()}
    result = {
        "documents": curated["counts"]["kept"],
        "budget_tokens": m["budget_tokens"],
        "achieved_tokens": m["achieved_tokens"],
        "tokenizer": m["tokenizer"],
        "domains": {n: {k: d[k] for k in ("documents", "tokens", "weight", "target_share", "achieved_share",
                                          "share_error", "epochs", "capped")} for n, d in m["domains"].items()},
        "max_abs_share_error": max(abs(d["share_error"]) for d in m["domains"].values()),
        "max_rel_share_error": max(abs(d["share_error"]) / d["target_share"] for d in m["domains"].values()),
        "redistributed": m["redistributed"],
        "samples": m["samples"], "repeated_samples": m["repeated_samples"], "shards": len(m["shards"]),
        "blend": {**m["blend"],
                  "prefix_token_share_error": {
                      "tamis_blend_tokens": prefix_error(dom, tok, target),
                      "megatron_blend_samples": prefix_error(dom[megatron], tok[megatron], target),
                      "random_order": prefix_error(dom[shuffled], tok[shuffled], target),
                      "concatenated": prefix_error(dom[concat], tok[concat], target)}},
        "selection_peers_chars4": {
            "tamis_hash_threshold_max_share_error": max(abs(d["share_error"]) for d in report["domains"].values()),
            "bernoulli_max_share_error": bernoulli_error(approx, spec, targets),
        },
        "approx_chars4_vs_minilm_tokens": {
            n: round(float(approx.tokens[approx.domain == i].sum()) / m["domains"][n]["tokens"], 4)
            for i, n in enumerate(names)},
        "times": times,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "workers": args.workers},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        from tamis.cli.mix import print_summary

        print_summary(m, str(out))
        print(json.dumps({k: result[k] for k in ("blend", "selection_peers_chars4", "times")}, indent=1))


if __name__ == "__main__":
    main()
