"""Benchmark decontamination: find documents that share a word n-gram with a benchmark test item.

Both sides are normalized and split into words by the same code
(tamis.dedup.shingles: lowercase, punctuation as spaces, optionally digits
as 0), and every run of exactly `ngram` words is hashed to 64 bits. The
benchmark side becomes one sorted array of (hash, item) pairs, 12 bytes per
distinct n-gram of an item (GSM8K test + HumanEval: ~2 MB); a batch of
documents is looked up in it with one `searchsorted`. Items shorter than
`ngram` words cannot match and are counted as `short`.

Modes: `drop` drops a matching document (reason `contaminated`, detail = the
benchmark and item ids); `cut` removes every matched span, from the first
character of its first word to the last character of its last word (the
normalization keeps text lengths, so word offsets are string offsets), and
drops the document only if less than `min_kept_fraction` of its characters remain.
Per benchmark, `stats` counts the documents hit and lists the items that leaked.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.dedup.shingles import Shingling, code_points, mix64, word_hashes, words
from tamis.errors import ConfigError, InputError
from tamis.io import atomic
from tamis.io.side_files import jsonl_rows
from tamis.schema import dropped
from tamis.validation import Params

STAGE = "decontaminate"
REASON = "contaminated"
_P = np.uint64(0x9E3779B97F4A7C15)
_PREFIX_BITS = 24
_DETAIL_ITEMS = 10  # item ids listed per benchmark in a dropped document's detail


class BenchmarkSet(Params):
    """A benchmark's test items: JSONL or Parquet, whose `text_fields` are joined into one item text."""

    name: str
    path: str
    text_fields: list[str] = ["text"]
    id_field: str = "id"


class DecontamConfig(Params):
    """Drop (or cut) documents sharing a word n-gram with any benchmark item."""

    enabled: bool = False
    benchmarks: list[BenchmarkSet] = []
    ngram: int = 13
    mode: Literal["drop", "cut"] = "drop"
    min_kept_fraction: float = 0.5  # cut: a document keeping less than this fraction of its characters is dropped
    lowercase: bool = True
    punctuation: bool = True
    digits: bool = False

    def check(self) -> None:
        if self.enabled and not self.benchmarks:
            raise ConfigError("decontaminate is enabled but lists no benchmarks.", hint="add entries under 'benchmarks'")
        if self.ngram < 1:
            raise ConfigError(f"The 'ngram' parameter of decontaminate must be >= 1. Got {self.ngram} instead.")
        if not 0.0 <= self.min_kept_fraction <= 1.0:
            raise ConfigError(
                f"The 'min_kept_fraction' parameter of decontaminate must be in [0, 1]. Got {self.min_kept_fraction} instead."
            )
        if len({b.name for b in self.benchmarks}) != len(self.benchmarks):
            raise ConfigError("decontaminate lists two benchmarks with the same name.", hint="give each a unique 'name'")


def shingling(cfg) -> Shingling:
    return Shingling("word", cfg.ngram, cfg.lowercase, cfg.punctuation, cfg.digits)


def _records(bench) -> Iterator[tuple[int, dict]]:
    path = bench.path
    if not atomic.exists(path):
        raise InputError(f"Benchmark {bench.name!r}: file {path} does not exist.", hint="check its 'path'")
    if path.lower().endswith(".parquet"):
        with atomic.open_read(path) as f:
            yield from enumerate(pq.read_table(f).to_pylist())
        return
    rows = jsonl_rows(path, f"Benchmark {bench.name!r}: ", "benchmarks are JSONL (optionally .gz) or Parquet")
    yield from ((n - 1, row) for n, row in rows)


def _text(value) -> str:
    if isinstance(value, list):
        return "\n".join(map(str, value))
    return str(value)


def load_items(bench) -> list[tuple[str, str]]:
    """(item id, text) of a BenchmarkSet; the text joins `text_fields` with newlines."""
    items = []
    for n, record in _records(bench):
        missing = [f for f in bench.text_fields if record.get(f) is None]
        if missing:
            raise InputError(
                f"Benchmark {bench.name!r}: item {n + 1} of {bench.path} has no field {missing[0]!r}.",
                hint=f"set 'text_fields' to fields it has: {', '.join(sorted(record))}",
            )
        item_id = record.get(bench.id_field)
        items.append((str(item_id if item_id is not None else n), "\n".join(_text(record[f]) for f in bench.text_fields)))
    if not items:
        raise InputError(f"Benchmark {bench.name!r}: {bench.path} holds no items.", hint="check its 'path'")
    return items


@dataclass
class NGrams:
    """Every full word n-gram of a batch of texts, with where it sits."""

    hashes: np.ndarray  # uint64
    text: np.ndarray  # int64: which text
    word: np.ndarray  # int64: its first word, an index into the word arrays below
    begin: np.ndarray  # int64 per word: first character, relative to its text
    end: np.ndarray  # int64 per word: one past its last character


def ngrams(texts: list[str], sh: Shingling) -> NGrams:
    c = code_points(texts, sh)
    w = words(c)
    wh = word_hashes(c, w)
    counts = np.diff(w.first)
    per_text = np.maximum(counts - sh.n + 1, 0)
    offsets = np.concatenate([[0], np.cumsum(per_text)])
    owner = np.repeat(np.arange(len(texts)), per_text)
    start = w.first[owner] + (np.arange(offsets[-1]) - offsets[owner])
    acc = np.zeros(len(start), np.uint64)
    for j in range(sh.n):  # Horner over the n word hashes; uint64 arithmetic wraps mod 2**64
        acc = acc * _P + wh[start + j]
    word_text = np.repeat(np.arange(len(texts)), counts)
    rel = c.starts[word_text]
    return NGrams(mix64(acc), owner, start, w.begin - rel, w.end - rel)


@dataclass
class BenchmarkIndex:
    """Sorted (n-gram hash, item) pairs of all benchmarks; `items[i]` = (benchmark, item id)."""

    shingling: Shingling
    hashes: np.ndarray  # uint64, sorted
    item: np.ndarray  # int32, parallel to hashes
    items: list[tuple[str, str]]
    sizes: dict[str, int]  # benchmark → items
    short: dict[str, int]  # benchmark → items with fewer than n words
    _bitmap: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def nbytes(self) -> int:
        return self.hashes.nbytes + self.item.nbytes

    def candidates(self, hashes: np.ndarray) -> np.ndarray:
        """Positions of `hashes` that may be in the index: one gather in a 16 MB bitmap of top-24-bit prefixes
        (built on first use, per process), so the binary search only sees the few that pass."""
        bitmap = self._bitmap
        if bitmap is None:
            bitmap = np.zeros(1 << _PREFIX_BITS, bool)
            bitmap[self.hashes >> np.uint64(64 - _PREFIX_BITS)] = True
            self._bitmap = bitmap
        return np.flatnonzero(bitmap[hashes >> np.uint64(64 - _PREFIX_BITS)])


def build_index(cfg) -> BenchmarkIndex:
    """Load and hash every benchmark of a DecontamConfig; bad files raise InputError now, not mid-run."""
    sh = shingling(cfg)
    items: list[tuple[str, str]] = []
    hashes, owners = [], []
    sizes, short = {}, {}
    for bench in cfg.benchmarks:
        loaded = load_items(bench)
        g = ngrams([t for _, t in loaded], sh)
        hashes.append(g.hashes)
        owners.append(g.text + len(items))
        sizes[bench.name] = len(loaded)
        short[bench.name] = len(loaded) - len(np.unique(g.text))
        items += [(bench.name, i) for i, _ in loaded]
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    o = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    order = np.lexsort((o, h))
    h, o = h[order], o[order]
    distinct = np.ones(len(h), bool)
    distinct[1:] = (h[1:] != h[:-1]) | (o[1:] != o[:-1])
    return BenchmarkIndex(sh, h[distinct], o[distinct].astype(np.int32), items, sizes, short)


@dataclass
class Matches:
    """The n-grams of a batch found in the index: per match, its text, first word and item."""

    grams: NGrams
    gram: np.ndarray  # index into grams of each match (one per matching item)
    item: np.ndarray


def match(index: BenchmarkIndex, texts: list[str]) -> Matches:
    g = ngrams(texts, index.shingling)
    cand = index.candidates(g.hashes)
    lo = np.minimum(np.searchsorted(index.hashes, g.hashes[cand], "left"), max(len(index.hashes) - 1, 0))
    hit = index.hashes[lo] == g.hashes[cand] if len(index.hashes) else np.zeros(len(cand), bool)
    found, lo = cand[hit], lo[hit]
    span = np.searchsorted(index.hashes, g.hashes[found], "right") - lo
    gram = np.repeat(found, span)
    pair = np.repeat(lo, span) + (np.arange(span.sum()) - np.repeat(np.cumsum(span) - span, span))
    return Matches(g, gram, index.item[pair].astype(np.int64))


def cut_spans(m: Matches, n: int, text: int) -> list[tuple[int, int]]:
    """Merged character spans [begin, end) of a text's matched n-grams."""
    first = np.unique(m.grams.word[m.gram[m.grams.text[m.gram] == text]])
    spans: list[tuple[int, int]] = []
    for w in first.tolist():
        b, e = int(m.grams.begin[w]), int(m.grams.end[w + n - 1])
        if spans and b <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], e))
        else:
            spans.append((b, e))
    return spans


def remove_spans(text: str, spans: list[tuple[int, int]]) -> str:
    out, pos = [], 0
    for b, e in spans:
        out.append(text[pos:b])
        pos = e
    out.append(text[pos:])
    return "".join(out)


@dataclass
class Result:
    kept: pa.RecordBatch
    dropped: pa.RecordBatch | None
    stats: dict = field(default_factory=dict)  # benchmark → {items, items_short, documents, dropped, cut, leaked}


def _leaks(index: BenchmarkIndex, items: set[int]) -> dict[str, list[str]]:
    by_bench: dict[str, list[str]] = {}
    for i in sorted(items):
        bench, item_id = index.items[i]
        by_bench.setdefault(bench, []).append(item_id)
    return by_bench


def decontaminate(batch: pa.RecordBatch, index: BenchmarkIndex, mode: str, min_kept_fraction: float) -> Result:
    texts = batch.column("text").to_pylist()
    m = match(index, texts)
    hit_items: dict[int, set[int]] = {}
    for t, i in zip(m.grams.text[m.gram].tolist(), m.item.tolist(), strict=True):
        hit_items.setdefault(t, set()).add(i)
    stats = {b: {"items": n, "items_short": index.short[b], "documents": 0, "dropped": 0, "cut": 0, "leaked": set()}
             for b, n in index.sizes.items()}
    drop_rows, details = [], []
    new_texts = list(texts)
    for t in sorted(hit_items):
        leaks = _leaks(index, hit_items[t])
        detail = {"benchmarks": {b: ids[:_DETAIL_ITEMS] for b, ids in leaks.items()},
                  "items": {b: len(ids) for b, ids in leaks.items()}}
        action = "dropped"
        if mode == "cut":
            cut = remove_spans(texts[t], cut_spans(m, index.shingling.n, t))
            detail["kept_fraction"] = round(len(cut) / len(texts[t]), 4)
            if cut.strip() and len(cut) >= min_kept_fraction * len(texts[t]):
                new_texts[t], action = cut, "cut"
        if action == "dropped":
            drop_rows.append(t)
            details.append(json.dumps(detail, sort_keys=True))
        for b, ids in leaks.items():
            stats[b]["documents"] += 1
            stats[b][action] += 1
            stats[b]["leaked"].update(ids)
    if mode == "cut" and new_texts != texts:
        batch = batch.set_column(batch.schema.get_field_index("text"), "text", pa.array(new_texts, pa.string()))
    gone = None
    if drop_rows:
        gone = dropped(batch.take(pa.array(drop_rows)), STAGE, [REASON] * len(drop_rows), None, details)
        mask = np.ones(batch.num_rows, bool)
        mask[drop_rows] = False
        batch = batch.filter(pa.array(mask))
    for s in stats.values():
        s["leaked"] = sorted(s["leaked"])
    return Result(batch, gone, stats)


_CONSTANT = ("items", "items_short")  # the same in every batch's stats


def merge_stats(a: dict, b: dict) -> dict:
    """Per benchmark: sum the document counts, union the leaked item ids."""
    out = {k: dict(v) for k, v in a.items()}
    for bench, s in b.items():
        if bench not in out:
            out[bench] = dict(s)
            continue
        o = out[bench]
        for k, v in s.items():
            if k == "leaked":
                o[k] = sorted(set(o[k]) | set(v))
            else:
                o[k] = max(o[k], v) if k in _CONSTANT else o[k] + v
    return out


def report(stats: dict) -> dict:
    """Per benchmark: items, those too short to match, those leaked (count and ids), documents hit/dropped/cut."""
    return {bench: {**{k: v for k, v in s.items() if k != "leaked"}, "items_leaked": len(s["leaked"]),
                    "leaked": s["leaked"]} for bench, s in sorted(stats.items())}
