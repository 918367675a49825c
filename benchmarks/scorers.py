"""Throughput of every registered scorer and filter on real web documents, one core, side by side.

    python benchmarks/scorers.py [--data POOL.jsonl.gz] [--limit N] [--batch-size B] [--rounds R] [--json]

Each component scores the same in-memory record batches (documents of the
shared web pool) with a fresh DocView per batch, so no component profits from
another's cached tokens; a filter's rule is timed with it. Components run in
rounds, round-robin, and keep their fastest round, so load from other
processes hits them alike: compare ratios, not absolute docs/s. A component
whose parameters have no defaults is built with `FIXTURES` when its artifact
is quick to build here (DSIR: fitted on the first documents; quality: a
fastText model trained on the shared human labels), else listed
under `skipped` with the reason.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one core, before any native library loads

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pyarrow as pa  # noqa: E402

from tamis.errors import TamisError  # noqa: E402
from tamis.filters.base import Filter, Scorer  # noqa: E402
from tamis.filters.registry import available, build  # noqa: E402
from tamis.filters.text import DocView  # noqa: E402
from tamis.schema import documents  # noqa: E402

SHARED_POOL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "curation" / "web_pool" / "pool.jsonl.gz"


def _dsir_params(rows: list[dict], workdir: str) -> dict:
    """A DSIR model fitted on the loaded documents as raw, their Stack Exchange posts (else the last fifth) as target."""
    from tamis.mixers.dsir import DSIRModel, DSIRParams

    target = [r["text"] for r in rows if json.loads(r["meta"])["source"] == "stackexchange"]
    target = target or [r["text"] for r in rows[-max(1, len(rows) // 5) :]]
    root = os.path.join(workdir, "dsir")
    DSIRModel.fit(DSIRParams(), [r["text"] for r in rows], [target]).save(root)
    return {"artifact": root}


def _quality_params(rows: list[dict], workdir: str) -> dict:
    """A fastText model of the default recipe's shape (dim 64, word bigrams) trained on the shared human labels.

    Scoring cost depends on the model's shape and the text, not on how the
    vectors started, so the benchmark skips the pretraining of benchmarks/quality.py.
    """
    from tamis.filters import fasttext_model as fm

    labels = SHARED_POOL.parents[1] / "quality" / "dclm_human_quality.jsonl"
    examples, entry = fm.read_judged(str(labels))
    model = os.path.join(workdir, "quality.bin")
    fm.train(examples, model, fm.FastTextParams(epoch=10, lr=0.5, balance=False), [entry])
    return {"models": {"dclm": model}, "threshold": 0.5}


FIXTURES: dict[str, Callable[[list[dict], str], dict]] = {"dsir": _dsir_params, "quality": _quality_params}


def load_pool(path: Path, limit: int) -> list[dict]:
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            meta = json.dumps({"url": r.get("url"), "source": r.get("source")})
            rows.append({"id": r["id"], "text": r["text"], "source": str(path), "meta": meta})
            if len(rows) == limit:
                break
    return rows


def _run(component: Scorer, batches: list[pa.RecordBatch]) -> float:
    start = time.perf_counter()
    for batch in batches:
        scores = component.score(DocView(batch))
        if isinstance(component, Filter):
            component.rule(scores)
    return time.perf_counter() - start


def bench(path: Path, limit: int, batch_size: int, rounds: int) -> dict:
    rows = load_pool(path, limit)
    batches = [documents(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    texts = [r["text"] for r in rows]
    n_bytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts)
    components: dict[str, Scorer] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in available():
            try:
                params = FIXTURES[name](rows, workdir) if name in FIXTURES else {}
                components[name] = build(name, params)
            except TamisError as e:  # a required artifact or parameter this benchmark cannot supply
                skipped[name] = str(e)
        best: dict[str, float] = {}
        for _ in range(rounds):
            for name, component in components.items():
                best[name] = min(_run(component, batches), best.get(name, float("inf")))
    results = {
        name: {
            "key": components[name].key(),
            "seconds": round(s, 4),
            "docs_per_s": round(len(rows) / s, 1),
            "mb_per_s": round(n_bytes / s / 1e6, 3),
        }
        for name, s in best.items()
    }
    return {
        "data": str(path),
        "docs": len(rows),
        "bytes": n_bytes,
        "batch_size": batch_size,
        "rounds": rounds,
        "threads": 1,
        "python": platform.python_version(),
        "scorers": results,
        "skipped": skipped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=SHARED_POOL, help="JSONL(.gz) with id and text (default: web pool)"
    )
    parser.add_argument("--limit", type=int, default=3000, help="documents to score (default 3000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="documents per record batch")
    parser.add_argument("--rounds", type=int, default=2, help="timing rounds; each component keeps its fastest")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = bench(args.data, args.limit, args.batch_size, args.rounds)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['docs']} docs, {out['bytes'] / 1e6:.1f} MB, one core, best of {out['rounds']} rounds")
    for r in sorted(out["scorers"].values(), key=lambda r: -r["docs_per_s"]):
        print(f"  {r['key']:<24} {r['docs_per_s']:>10.1f} docs/s {r['mb_per_s']:>8.3f} MB/s")
    for name, why in out["skipped"].items():
        print(f"  {name:<24} skipped: {why}")


if __name__ == "__main__":
    main()
