"""Every HTML extractor side by side on one extraction set, one core: quality and throughput.

    python benchmarks/extraction.py [--set DIR] [--rounds N] [--json]

Quality is the mean token-level precision/recall/F1 of tamis.eval.metrics;
throughput is pages/s over the in-memory pages (decoding included). The
extractors run in rounds, round-robin, and each keeps its fastest round, so
load from other processes on a shared machine hits them all alike; compare
the ratios, not the absolute pages/s. `rule_choice` applies the rule behind
the default (fastest extractor whose F1 is at least trafilatura's) to this
run's figures, so a drift from tamis.io.html.DEFAULT shows up here.
"""

import os

os.environ["OMP_NUM_THREADS"] = "1"  # one core, before any native library loads

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

from tamis.eval.extraction import extract_all, load_set, score  # noqa: E402
from tamis.io.html import DEFAULT, EXTRACTORS  # noqa: E402

SHARED_SET = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "curation" / "extraction"
REFERENCE = "trafilatura"


def bench(set_dir: Path, rounds: int) -> dict:
    pages = load_set(set_dir)
    best: dict[str, float] = {}
    texts: dict[str, list[str]] = {}
    for _ in range(rounds):
        for name in EXTRACTORS:
            texts[name], seconds = extract_all(pages, name)
            best[name] = min(seconds, best.get(name, float("inf")))
    results = {name: score(pages, texts[name], name, best[name]) for name in EXTRACTORS}
    ref = results[REFERENCE]
    for r in results.values():
        r["speed_vs_trafilatura"] = round(ref["seconds"] / r["seconds"], 2)
    eligible = [r for r in results.values() if r["f1"] >= ref["f1"]]
    rule_choice = max(eligible, key=lambda r: r["pages_per_s"])["extractor"]
    return {
        "set": str(set_dir),
        "pages": len(pages),
        "rounds": rounds,
        "python": platform.python_version(),
        "default": DEFAULT,
        "default_f1": results[DEFAULT]["f1"],
        "default_speed_vs_trafilatura": results[DEFAULT]["speed_vs_trafilatura"],
        "rule_choice": rule_choice,
        "extractors": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=SHARED_SET, help="extraction set folder (default: shared data)")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; each extractor keeps its fastest")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    out = bench(args.set, args.rounds)
    if args.json:
        print(json.dumps(out))
        return
    print(f"{out['pages']} pages, {out['rounds']} rounds, one core; default = {out['default']}")
    print(f"{'extractor':<20} {'F1':>6} {'P':>6} {'R':>6} {'pages/s':>8} {'x traf':>7} {'empty':>5}")
    for r in out["extractors"].values():
        print(
            f"{r['extractor']:<20} {r['f1']:>6.3f} {r['precision']:>6.3f} {r['recall']:>6.3f} "
            f"{r['pages_per_s']:>8} {r['speed_vs_trafilatura']:>7} {r['empty']:>5}"
        )
    print(f"rule (fastest with F1 >= {REFERENCE}'s): {out['rule_choice']}")


if __name__ == "__main__":
    main()
