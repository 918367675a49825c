"""`tamis eval neardup`: precision and recall of near-duplicate clusters against judged pairs.

A judged pair (`a`, `b`, `label` 1 or 0, as in `../shared/data/curation/neardup/`)
is predicted duplicate when the near-dup stage puts both ids in one cluster;
only judged pairs count. Throughput is text megabytes (UTF-8) over the
seconds the stage takes on the loaded documents (reading excluded).
"""

import time
from typing import Any

from tamis.errors import InputError
from tamis.io.side_files import jsonl_rows


def load_pairs(path: str) -> list[tuple[str, str, int]]:
    hint = "each line needs 'a', 'b' and 'label'"
    pairs = []
    for n, row in jsonl_rows(path, "Pairs file ", hint):
        try:
            pairs.append((str(row["a"]), str(row["b"]), int(row["label"])))
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(f"{path}:{n}: not a judged pair ({e})", hint=hint) from e
    return pairs


def load_config(path: str | None, overrides: dict[str, Any]):
    """NearDupConfig from a YAML file (its `near_dedup` section, or the fields at top level) plus overrides."""

    from tamis.dedup.neardup import NearDupConfig
    from tamis.io.side_files import read_yaml
    from tamis.validation import parse

    raw: dict[str, Any] = {}
    if path:
        loaded = read_yaml(path)
        raw = dict(loaded.get("near_dedup", loaded))
    raw.pop("enabled", None)
    raw.update({k: v for k, v in overrides.items() if v is not None})
    return parse(NearDupConfig, {"enabled": True, **raw}, owner="near_dedup")


def score(pairs: list[tuple[str, str, int]], dup_of: dict[str, str]) -> dict[str, float]:
    tp = fp = fn = 0
    for a, b, label in pairs:
        same = dup_of.get(a, a) == dup_of.get(b, b)
        tp += same and label == 1
        fp += same and label == 0
        fn += not same and label == 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def evaluate(docs_path: str, pairs_path: str, cfg) -> dict[str, Any]:
    import pyarrow.compute as pc

    from tamis.dedup.neardup import lsh_params, near_duplicates
    from tamis.io.readers import InputConfig, read_file

    batches = [b for kind, b in read_file(docs_path, InputConfig(path=docs_path), 1000) if kind == "docs"]
    if not batches:
        raise InputError(f"No documents in {docs_path}.")
    pairs = load_pairs(pairs_path)
    n_bytes = sum(pc.sum(pc.binary_length(b.column("text").cast("binary"))).as_py() or 0 for b in batches)
    started = time.perf_counter()
    dup_of = near_duplicates(batches, cfg)
    seconds = time.perf_counter() - started
    lsh = lsh_params(cfg)
    return {
        **score(pairs, dup_of),
        "pairs": len(pairs),
        "docs": sum(b.num_rows for b in batches),
        "dropped": len(dup_of),
        "mb": n_bytes / 1e6,
        "seconds": seconds,
        "mb_per_s": n_bytes / 1e6 / seconds if seconds else 0.0,
        "threshold": cfg.threshold,
        "bands": lsh.bands,
        "rows": lsh.rows,
        "config": {k: v for k, v in vars(cfg).items() if k != "enabled"},
    }
