"""`tamis eval extraction`: token-level F1 of an HTML extractor against human article text.

A set is a folder with `ground_truth.jsonl` (one page per line: `html_path`
relative to the folder, `text` the true main text, optional `id` and `url`)
and the HTML files it names (gzipped if they end in .gz), as in
`../shared/data/curation/extraction/`. Scores are defined in tamis.eval.metrics.
"""

import gzip
import time
from dataclasses import dataclass
from pathlib import Path

from tamis.errors import InputError
from tamis.eval.metrics import mean_prf, token_prf
from tamis.io.html import DEFAULT, extract
from tamis.io.side_files import jsonl_rows


@dataclass(frozen=True)
class Page:
    id: str
    url: str | None
    html: bytes
    text: str


def load_set(directory: str | Path) -> list[Page]:
    """Pages of an extraction set, raw bytes in memory so timing measures extraction only."""
    root = Path(directory)
    truth = root / "ground_truth.jsonl"
    if not truth.is_file():
        raise InputError(
            f"no ground_truth.jsonl in {root}", hint="--set takes a folder like ../shared/data/curation/extraction"
        )
    pages = []
    hint = "each line needs a JSON object with 'html_path' and 'text'"
    for n, row in jsonl_rows(truth, hint=hint):
        try:
            path = root / row["html_path"]
            text = row["text"]
        except (KeyError, TypeError) as e:
            raise InputError(f"{truth}:{n}: not a ground-truth row ({type(e).__name__}: {e})", hint=hint) from e
        try:
            data = path.read_bytes()
            html = gzip.decompress(data) if path.suffix == ".gz" else data
        except (OSError, EOFError) as e:
            raise InputError(
                f"{truth}:{n}: cannot read {path}: {e}", hint="html_path is relative to the set folder"
            ) from e
        pages.append(Page(str(row.get("id", row["html_path"])), row.get("url"), html, text))
    if not pages:
        raise InputError(f"{truth} has no pages", hint="add one JSON line per page")
    return pages


def extract_all(pages: list[Page], extractor: str) -> tuple[list[str], float]:
    """Extracted texts and the seconds they took (decoding included; one warm-up call excluded)."""
    extract(pages[0].html, url=pages[0].url, extractor=extractor)  # lazy imports outside the timing
    start = time.perf_counter()
    texts = [extract(p.html, url=p.url, extractor=extractor) for p in pages]
    return texts, time.perf_counter() - start


def score(pages: list[Page], texts: list[str], extractor: str, seconds: float) -> dict:
    """The JSON result: mean precision/recall/F1 over pages, throughput and empty extractions."""
    m = mean_prf(token_prf(p.text, t) for p, t in zip(pages, texts, strict=True))
    return {
        "extractor": extractor,
        "pages": len(pages),
        "f1": round(m.f1, 4),
        "precision": round(m.precision, 4),
        "recall": round(m.recall, 4),
        "pages_per_s": round(len(pages) / seconds, 1) if seconds > 0 else None,
        "seconds": round(seconds, 3),
        "empty": sum(not t for t in texts),
    }


def evaluate(directory: str | Path, extractor: str = DEFAULT) -> dict:
    pages = load_set(directory)
    texts, seconds = extract_all(pages, extractor)
    return score(pages, texts, extractor, seconds)
