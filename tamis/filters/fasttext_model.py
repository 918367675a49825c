"""fastText document classifiers: train, save with a manifest, load verified, predict in batch.

Training and scoring share one text normalization (`normalize`), so a model
sees at scoring time exactly the kind of text it was trained on. A model is a
fastText `.bin` file plus `<model>.manifest.json` beside it: the model's
sha256, the training files' checksums and document counts, the parameters,
the label names and the normalization. Loading refuses a model whose bytes do
not match its manifest, and a model without the positive label asked for.

Defaults follow the DCLM recipe (fastText supervised with word bigrams), with
a smaller hash table and dimension than DCLM's so a model stays tens of MB.
With unlabeled documents, word vectors are first pretrained on them (fastText
skipgram) and the classifier starts from those vectors: a few hundred labels
then go much further (docs/quality.md has the measurements).
"""

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import numpy as np

from tamis.errors import ConfigError, InputError, IntegrityError, ResourceError
from tamis.io import atomic
from tamis.io.manifest import versions
from tamis.io.side_files import jsonl_rows
from tamis.validation import Params

log = logging.getLogger(__name__)

KIND = "fasttext_classifier"
FORMAT_VERSION = 1
LABEL_PREFIX = "__label__"
POSITIVE, NEGATIVE = "hq", "lq"
MAX_CHARS = 100_000  # a document's head; bounds the cost of a 10 MB document
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_SURROGATE = re.compile("[\ud800-\udfff]")
NORMALIZATION = (
    f"first {MAX_CHARS} chars, invalid UTF-8 replaced, lowercased, words and punctuation marks joined by one space"
)


def normalize(text: str) -> str:
    """One line of lowercased tokens; lone surrogates (undecodable bytes) become U+FFFD."""
    head = _SURROGATE.sub("\ufffd", text[:MAX_CHARS])
    return " ".join(_TOKEN.findall(head.lower()))


def manifest_path(model: str) -> str:
    return f"{model}.manifest.json"


class FastTextParams(Params):
    """fastText supervised options; names are fastText's, in snake case."""

    dim: int = 64
    word_ngrams: int = 2
    epoch: int = 5
    lr: float = 0.1
    min_count: int = 1
    bucket: int = 1 << 18
    minn: int = 0  # character n-grams of words, from minn to maxn characters; 0 = none
    maxn: int = 0
    seed: int = 0
    balance: bool = True  # downsample the larger class to the smaller one's size (by hash of id)
    # skipgram word vectors pretrained on unlabeled documents, when some are given (dimension `dim`)
    vectors_epoch: int = 1
    vectors_ws: int = 5
    vectors_min_count: int = 3

    def check(self) -> None:
        for name in (
            "dim",
            "word_ngrams",
            "epoch",
            "min_count",
            "bucket",
            "vectors_epoch",
            "vectors_ws",
            "vectors_min_count",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"The {name!r} parameter of fastText must be >= 1. Got {getattr(self, name)} instead."
                )
        if self.minn < 0 or self.maxn < self.minn:
            raise ConfigError(f"fastText needs 0 <= minn <= maxn. Got minn={self.minn}, maxn={self.maxn} instead.")
        if not 0 < self.lr <= 10:
            raise ConfigError(f"The 'lr' parameter of fastText must be in (0, 10]. Got {self.lr} instead.")


@dataclass(frozen=True)
class LabeledText:
    id: str
    text: str  # normalized
    label: str


def _hash_key(seed: int, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()


def balance(examples: list[LabeledText], seed: int) -> list[LabeledText]:
    """Keep every class at the size of the smallest, choosing by a hash of (seed, id): order-independent."""
    by_label: dict[str, list[LabeledText]] = {}
    for ex in examples:
        by_label.setdefault(ex.label, []).append(ex)
    n = min(len(v) for v in by_label.values())
    out = []
    for group in by_label.values():
        out.extend(sorted(group, key=lambda ex: _hash_key(seed, ex.id))[:n])
    return out


def train(
    examples: list[LabeledText],
    out: str,
    params: FastTextParams | None = None,
    sources: list[dict] | None = None,
    method: dict[str, Any] | None = None,
    unlabeled: list[str] | None = None,
    vectors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train on normalized labeled texts, write `out` and its manifest atomically; return the manifest.

    `sources` are the training files' checksum entries; `method` records how
    labels were made when they were not given (e.g. BETR's similarity ranking).
    `unlabeled` files (JSONL/Parquet documents) pretrain the word vectors;
    `vectors` (from `pretrain_vectors`) reuses vectors pretrained before.
    """
    params = params or FastTextParams()
    params.check()
    if vectors and vectors["dim"] != params.dim:
        raise ConfigError(f"the pretrained vectors have dimension {vectors['dim']}, the classifier {params.dim}")
    examples = [ex for ex in examples if ex.text]
    labels = sorted({ex.label for ex in examples})
    if len(labels) < 2:
        raise InputError(
            f"training needs documents of two labels; got {labels or 'none'}",
            hint="give non-empty positive and negative data",
        )
    if params.balance:
        examples = balance(examples, params.seed)
    examples.sort(key=lambda ex: _hash_key(params.seed + 1, ex.id))  # a fixed shuffle: SGD sees classes mixed
    counts = {label: sum(ex.label == label for ex in examples) for label in labels}
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        train_file = os.path.join(tmp, "train.txt")
        with open(train_file, "w", encoding="utf-8") as f:
            for ex in examples:
                f.write(f"{LABEL_PREFIX}{ex.label} {ex.text}\n")
        if unlabeled:
            vectors = pretrain_vectors(unlabeled, os.path.join(tmp, "vectors.vec"), params)
        tmp_model = os.path.join(tmp, "model.bin")
        _train_isolated(train_file, tmp_model, params, vectors and vectors["path"])
        if os.path.exists(manifest_path(out)):  # the old manifest must not vouch for the new model
            os.remove(manifest_path(out))
        os.replace(tmp_model, out)
    manifest = {
        "kind": KIND,
        "format_version": FORMAT_VERSION,
        "versions": versions(),
        "model": {"path": os.path.basename(out), "bytes": os.path.getsize(out), "sha256": atomic.sha256_file(out)},
        "labels": labels,
        "examples": counts,
        "params": params.model_dump(),
        "normalization": NORMALIZATION,
        "training_data": sources or [],
        "pretrained_vectors": vectors and {k: v for k, v in vectors.items() if k != "path"},
        "method": method or {"labels": "given by the training files"},
    }
    atomic.write_bytes(manifest_path(out), json.dumps(manifest, indent=1).encode())
    return manifest


def _doc_batches(path: str) -> Iterator[Any]:
    """Document batches of a JSONL/Parquet file, streamed.

    A record that cannot be read stops here (InputError): a classifier
    silently trained on part of its data would be hard to explain.
    """
    from tamis.io.readers import InputConfig, read_file

    if not atomic.exists(path):
        raise InputError(f"input file {path} does not exist", hint="give JSONL or Parquet files of documents")
    for kind, batch in read_file(path, InputConfig(path=path)):
        if kind == "errors":
            first = batch.slice(0, 1).to_pylist()[0]
            raise InputError(
                f"{path}: a record cannot be read at offset {first['offset']}: {first['error']}",
                hint="fix or remove the bad records; training never skips data silently",
            )
        yield batch


def read_docs(path: str) -> tuple[list[str], list[str], dict[str, Any]]:
    """Ids and texts of a JSONL/Parquet file, and its checksum entry."""
    ids, texts = [], []
    for batch in _doc_batches(path):
        ids += batch.column("id").to_pylist()
        texts += batch.column("text").to_pylist()
    return ids, texts, {"path": path, "documents": len(ids), "sha256": atomic.sha256_file(path)}


def load_labeled(path: str | Path) -> tuple[list[str], np.ndarray]:
    """Texts and 0/1 labels; a line without text or a 0/1 `quality_label` is an InputError."""
    hint = "each line needs a JSON object with 'text' and 'quality_label' (0 or 1)"
    texts, labels = [], []
    for n, row in jsonl_rows(path, "Labeled file ", hint):
        try:
            text, label = row["text"], row["quality_label"]
        except KeyError as e:
            raise InputError(f"{path}:{n}: not a labeled document (KeyError: {e})", hint=hint) from e
        if not isinstance(text, str) or label not in (0, 1) or isinstance(label, bool):
            raise InputError(f"{path}:{n}: 'text' must be a string and 'quality_label' 0 or 1; got {label!r}")
        texts.append(text)
        labels.append(label)
    if not texts or len(set(labels)) < 2:
        raise InputError(f"{path} needs documents of both labels (0 and 1) to measure AUC")
    return texts, np.array(labels, dtype=np.int64)


def read_judged(path: str) -> tuple[list[LabeledText], dict[str, Any]]:
    """Normalized documents of a JSONL file with a 0/1 `quality_label` (1 = POSITIVE), keyed like `read_labeled`."""
    texts, labels = load_labeled(path)
    sha256 = atomic.sha256_file(path)
    examples = [
        LabeledText(f"judged:{sha256[:16]}:{i}", normalize(t), POSITIVE if y else NEGATIVE)
        for i, (t, y) in enumerate(zip(texts, labels, strict=True))
    ]
    return examples, {"path": path, "documents": len(texts), "sha256": sha256, "label": "quality_label"}


def read_labeled(path: str, label: str) -> tuple[list[LabeledText], dict[str, Any]]:
    """Normalized documents of a file, all with `label`, keyed by the file's content and their id.

    Keys depend on content, not on where the file lies, so the same file
    trains the same model (balancing and shuffling hash the keys).
    """
    ids, texts, entry = read_docs(path)
    key = entry["sha256"][:16]
    examples = [LabeledText(f"{label}:{key}:{i}", normalize(t), label) for i, t in zip(ids, texts, strict=True)]
    return examples, {**entry, "label": label}


# fastText training reads some memory it never wrote: on a reused heap that is garbage, and
# training gives a different model or fails with "Encountered NaN" depending on what ran
# before in the process. Training therefore runs in a fresh interpreter whose allocator
# fills new memory with one fixed byte (glibc MALLOC_PERTURB_), single-threaded, so a
# model depends only on its data and parameters.
_SUPERVISED = "m = fasttext.train_supervised(**a['args']); m.save_model(a['out'])"
_SKIPGRAM = (
    "m = fasttext.train_unsupervised(**a['args']); words = m.get_words()\n"
    "with open(a['out'], 'w', encoding='utf-8') as f:\n"
    "    f.write(f'{len(words)} {m.get_dimension()}\\n')\n"
    "    for w in words: f.write(w + ' ' + ' '.join('%.6g' % x for x in m.get_word_vector(w)) + '\\n')"
)


def _run_isolated(body: str, args: dict[str, Any], out: str) -> None:
    env = {**os.environ, "MALLOC_PERTURB_": "85", "OMP_NUM_THREADS": "1"}
    code = "import json, sys, fasttext\na = json.loads(sys.argv[1])\n" + body
    cmd = [sys.executable, "-c", code, json.dumps({"args": {**args, "thread": 1, "verbose": 0}, "out": out})]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        if "NaN" in last:
            raise ConfigError("fastText training diverged (NaN loss)", hint="lower lr or epoch")
        raise ResourceError(f"fastText training failed: {last}")


def _train_isolated(train_file: str, out: str, params: FastTextParams, vectors: str | None = None) -> None:
    args = {
        "input": train_file,
        "dim": params.dim,
        "wordNgrams": params.word_ngrams,
        "epoch": params.epoch,
        "lr": params.lr,
        "minCount": params.min_count,
        "bucket": params.bucket,
        "minn": params.minn,
        "maxn": params.maxn,
        "seed": params.seed,
    }
    if vectors:
        args["pretrainedVectors"] = vectors
    _run_isolated(_SUPERVISED, args, out)


def _write_normalized(path: str, f: IO[str]) -> dict[str, Any]:
    """Append `path`'s documents to `f`, one normalized line each, a batch at a time; its checksum entry."""
    n = 0
    for batch in _doc_batches(path):
        f.writelines(normalize(text) + "\n" for text in batch.column("text").to_pylist())
        n += batch.num_rows
    return {"path": path, "documents": n, "sha256": atomic.sha256_file(path)}


def pretrain_vectors(paths: list[str], out: str, params: FastTextParams) -> dict[str, Any]:
    """Skipgram word vectors (`params.dim`, `vectors_*`) of the normalized documents of `paths`, as a .vec file.

    Returns the entry that `train(vectors=...)` takes and its manifest records.
    Documents are streamed a batch at a time, so the unlabeled corpus may be
    larger than memory; an unreadable record stops training as in `read_docs`.
    """
    sources = []
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(out))) as tmp:
        text_file = os.path.join(tmp, "unlabeled.txt")
        with open(text_file, "w", encoding="utf-8") as f:
            for path in paths:
                sources.append(_write_normalized(path, f))
        if not any(src["documents"] for src in sources):
            raise InputError("the unlabeled files hold no documents", hint="give the documents to pretrain vectors on")
        args = {
            "input": text_file,
            "model": "skipgram",
            "dim": params.dim,
            "epoch": params.vectors_epoch,
            "ws": params.vectors_ws,
            "minCount": params.vectors_min_count,
            "minn": 0,
            "maxn": 0,
        }
        _run_isolated(_SKIPGRAM, args, os.path.join(tmp, "vectors.vec"))
        os.replace(os.path.join(tmp, "vectors.vec"), out)
    with open(out, encoding="utf-8") as f:
        words = int(f.readline().split()[0])
    return {
        "path": out,
        "model": "skipgram",
        "dim": params.dim,
        "params": {"epoch": params.vectors_epoch, "ws": params.vectors_ws, "min_count": params.vectors_min_count},
        "words": words,
        "sha256": atomic.sha256_file(out),
        "sources": sources,
    }


class Classifier:
    """A loaded, verified model; `proba` gives P(positive label) per text."""

    def __init__(self, path: str, manifest: dict[str, Any], model: Any, positive: str):
        self.path, self.manifest, self.model, self.positive = path, manifest, model, positive

    @property
    def sha256(self) -> str:
        return self.manifest["model"]["sha256"]

    def proba(self, texts: Iterable[str]) -> np.ndarray:
        lines = [normalize(t) for t in texts]
        if not lines:
            return np.zeros(0, dtype=np.float32)
        labels, probs = self.model.predict(lines, k=-1, threshold=0.0)
        want = LABEL_PREFIX + self.positive
        out = np.empty(len(lines), dtype=np.float32)
        for i, (ls, ps) in enumerate(zip(labels, probs, strict=True)):
            out[i] = next((p for label, p in zip(ls, ps, strict=True) if label == want), 0.0)
        return np.clip(out, 0.0, 1.0)


def read_model_manifest(path: str) -> dict[str, Any]:
    """The manifest beside `path`, checked against the model's bytes."""
    if not os.path.isfile(path):
        raise ResourceError(f"no fastText model at {path}", hint="train one with `tamis quality train`")
    mpath = manifest_path(path)
    if not os.path.isfile(mpath):
        raise IntegrityError(
            f"{path} has no {os.path.basename(mpath)} beside it",
            hint="models trained by `tamis quality train` have one",
        )
    try:
        with open(mpath, "rb") as f:
            manifest = json.loads(f.read())
    except ValueError as e:
        raise IntegrityError(f"{mpath} is not valid JSON ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise IntegrityError(f"{mpath} does not describe a {KIND}")
    if not isinstance(manifest.get("format_version"), int) or manifest["format_version"] > FORMAT_VERSION:
        raise IntegrityError(
            f"{path} has format version {manifest.get('format_version')}; this tamis reads up to {FORMAT_VERSION}",
            hint="upgrade tamis to read it",
        )
    if atomic.sha256_file(path) != manifest["model"]["sha256"]:
        raise IntegrityError(
            f"{path} does not match the sha256 in its manifest: the file is corrupt or was replaced",
            hint="retrain the model or restore the file",
        )
    return manifest


def load(path: str, positive: str = POSITIVE) -> Classifier:
    """Load and verify a model (cached per process); ConfigError if it has no `positive` label."""
    path = os.path.abspath(path)
    manifest = read_model_manifest(path)
    if positive not in manifest["labels"]:
        raise ConfigError(
            f"{path} was trained with labels {manifest['labels']}, which do not include {positive!r}",
            hint="set positive_label to one of the model's labels, or use a model trained with it",
        )
    return Classifier(path, manifest, _load_fasttext(path, manifest["model"]["sha256"]), positive)


@lru_cache(maxsize=8)
def _load_fasttext(path: str, sha256: str) -> Any:
    """One fastText model per (path, content) per process; a changed file has a new key."""
    import fasttext

    log.info("loading fastText model %s", path)
    return fasttext.load_model(path)
