"""tamis heuristic filters against datatrove's, side by side on real web documents, one core.

    python benchmarks/filters.py [--data POOL.jsonl.gz] [--docs N] [--batch-size B] [--rounds R] [--json]

Each entry of `PEERS` names a tamis filter, its parameters, and the datatrove
filter it must agree with. Both run on the same documents (a seeded sample of
`--docs` from the shared web pool; datatrove, at well under 1 MB/s, is what
makes the whole pool slow). tamis scores record batches with a fresh DocView
per batch and filter, so it gains nothing from tokens another filter cached;
datatrove's spaCy tokenizer is loaded and warmed up before timing. Each side
keeps its fastest of `--rounds` rounds, alternating, so load from other
processes hits both alike: read the ratios, not the absolute figures.

Printed: docs/s and MB/s of each side, their ratio, the share of documents on
which both take the same keep decision, and every disagreement class as
(tamis reason, datatrove reason) with its count and a few document ids; top
level `speedup_min` and `agreement_min` over the filters. The classes found
are explained in docs/filters.md.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one core, before any native library loads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from scorers import SHARED_POOL, load_pool  # noqa: E402

from tamis.filters.base import Filter  # noqa: E402
from tamis.filters.registry import available, build  # noqa: E402
from tamis.filters.text import DocView  # noqa: E402
from tamis.schema import documents  # noqa: E402

pa.set_cpu_count(1)


@dataclass(frozen=True)
class Peer:
    """A tamis filter and the datatrove filter (class in datatrove.pipeline.filters) it is compared with."""

    tamis: str
    datatrove: str
    tamis_params: dict[str, Any] = field(default_factory=dict)
    datatrove_params: dict[str, Any] = field(default_factory=dict)


PEERS = [
    Peer("gopher_quality", "GopherQualityFilter"),
    Peer("gopher_repetition", "GopherRepetitionFilter"),
    Peer("c4_quality", "C4QualityFilter"),
    Peer("fineweb_quality", "FineWebQualityFilter"),
]


def _datatrove(peer: Peer) -> Any:
    import datatrove.pipeline.filters as filters

    return getattr(filters, peer.datatrove)(**peer.datatrove_params)


def _decide(dt_filter: Any, doc_id: str, text: str) -> str:
    """datatrove's reason for dropping the text, "" if kept."""
    from datatrove.data import Document

    out = dt_filter.filter(Document(text=text, id=doc_id))
    if isinstance(out, tuple):
        return "" if out[0] else str(out[1])
    return "" if out else "dropped"


def _time_datatrove(dt_filter: Any, rows: list[dict]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    reasons = [_decide(dt_filter, r["id"], r["text"]) for r in rows]
    return time.perf_counter() - start, reasons


def _time_tamis(component: Filter, batches: list[pa.RecordBatch]) -> tuple[float, list[str]]:
    start = time.perf_counter()
    reasons = [component.apply(DocView(b))[2] for b in batches]
    return time.perf_counter() - start, [str(r) for r in np.concatenate(reasons)]


def _compare(peer: Peer, rows: list[dict], batches: list[pa.RecordBatch], n_bytes: int, rounds: int) -> dict:
    component = build(peer.tamis, peer.tamis_params)
    dt_filter = _datatrove(peer)
    _decide(dt_filter, "warmup", rows[0]["text"])  # loads spaCy outside the timing
    t_ours = t_theirs = float("inf")
    for _ in range(rounds):
        s, ours = _time_tamis(component, batches)
        t_ours = min(t_ours, s)
        s, theirs = _time_datatrove(dt_filter, rows)
        t_theirs = min(t_theirs, s)
    same = sum((a == "") == (b == "") for a, b in zip(ours, theirs, strict=True))
    classes: Counter = Counter()
    examples: dict[tuple[str, str], list[str]] = {}
    for r, a, b in zip(rows, ours, theirs, strict=True):
        if (a == "") != (b == ""):
            key = (a or "keep", b or "keep")
            classes[key] += 1
            examples.setdefault(key, []).append(r["id"])
    return {
        "tamis": component.key(),
        "datatrove": peer.datatrove,
        "tamis_docs_per_s": round(len(rows) / t_ours, 1),
        "tamis_mb_per_s": round(n_bytes / t_ours / 1e6, 3),
        "datatrove_docs_per_s": round(len(rows) / t_theirs, 1),
        "datatrove_mb_per_s": round(n_bytes / t_theirs / 1e6, 3),
        "speedup": round(t_theirs / t_ours, 2),
        "agreement": round(same / len(rows), 4),
        "kept": {"tamis": sum(a == "" for a in ours), "datatrove": sum(b == "" for b in theirs)},
        "disagreements": [
            {"tamis": k[0], "datatrove": k[1], "count": c, "examples": examples[k][:3]}
            for k, c in classes.most_common()
        ],
    }


def bench(path: Path, n_docs: int, batch_size: int, rounds: int, seed: int) -> dict:
    rows = load_pool(path, -1)
    total = len(rows)
    random.Random(seed).shuffle(rows)
    rows = rows[:n_docs] if n_docs > 0 else rows
    batches = [documents(rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
    n_bytes = sum(len(r["text"].encode("utf-8", "surrogatepass")) for r in rows)
    names = available()
    results, skipped = {}, {}
    for peer in PEERS:
        if peer.tamis not in names:
            skipped[peer.tamis] = "not registered in tamis yet"
            continue
        results[peer.tamis] = _compare(peer, rows, batches, n_bytes, rounds)
    return {
        "data": str(path),
        "pool_docs": total,
        "docs": len(rows),
        "sample": f"first {len(rows)} of the pool shuffled with seed {seed}",
        "bytes": n_bytes,
        "batch_size": batch_size,
        "rounds": rounds,
        "threads": 1,
        "python": platform.python_version(),
        "filters": results,
        "skipped": skipped,
        "speedup_min": min((r["speedup"] for r in results.values()), default=None),
        "agreement_min": min((r["agreement"] for r in results.values()), default=None),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=SHARED_POOL, help="JSONL(.gz) with id and text (default: web pool)"
    )
    parser.add_argument("--docs", type=int, default=2000, help="documents sampled from the pool (0: all; default 2000)")
    parser.add_argument("--batch-size", type=int, default=1000, help="documents per tamis record batch")
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds; each side keeps its fastest")
    parser.add_argument("--seed", type=int, default=0, help="seed of the document sample")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = bench(args.data, args.docs, args.batch_size, args.rounds, args.seed)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['docs']} docs, {out['bytes'] / 1e6:.1f} MB, one core, best of {out['rounds']} rounds")
    for name, r in out["filters"].items():
        print(
            f"  {name:<18} tamis {r['tamis_mb_per_s']:>8.3f} MB/s  datatrove {r['datatrove_mb_per_s']:>7.3f} MB/s"
            f"  speedup {r['speedup']:>6.1f}x  agreement {r['agreement']:.2%}"
        )
        for d in r["disagreements"]:
            print(
                f"      {d['count']:>4}  tamis {d['tamis']:<30} datatrove {d['datatrove']:<30} e.g. {d['examples'][0]}"
            )
    for name, why in out["skipped"].items():
        print(f"  {name:<18} skipped: {why}")
    print(f"speedup_min {out['speedup_min']}  agreement_min {out['agreement_min']}")


if __name__ == "__main__":
    main()
