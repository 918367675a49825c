"""Token export: format, round trip to the curated text, manifest counts, resume after a crash, the CLI."""

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from tamis import config
from tamis.cli import main
from tamis.embeddings import model_path
from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.io import token_shards as ts
from tamis.pipelines import curate

MINILM = model_path() / "tokenizer.json"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def curated(shared_data, tmp_path_factory) -> Path:
    """A real curate run over the shared web documents."""
    out = tmp_path_factory.mktemp("curated") / "run"
    inputs = str(shared_data / "curation" / "web_docs" / "*.jsonl")
    curate.run(config.parse({"inputs": [{"path": inputs}], "output": str(out), "shards": {"target_bytes": 20000}}))
    return out


def curated_texts(run: Path) -> list[str]:
    paths = ts.resolve_inputs([str(run)])
    return [t for p in paths for t in pq.read_table(p, columns=["text"]).column("text").to_pylist()]


def byte_level_bpe(path: Path, texts: list[str], vocab_size: int = 1500) -> Path:
    """A GPT-2-style byte-level BPE trained on `texts`: it decodes back to exactly the text it encoded."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.save(str(path))
    return path


def documents(root: Path, export: dict) -> list[np.ndarray]:
    """Every document's token ids (EOD included), in export order, through the tamis reader."""
    docs = []
    for entry in export["shards"]:
        shard = ts.open_shard(str(root), entry)
        docs += np.split(np.asarray(shard.tokens), shard.ends[:-1])
    return docs


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def write_parquet(path: Path, texts: list[str], domains: list[str] | None = None, row_group_size: int = 7) -> Path:
    cols = {"id": [f"d{i}" for i in range(len(texts))], "text": texts}
    if domains is not None:
        cols["domain"] = domains
    pq.write_table(pa.table(cols), path, row_group_size=row_group_size)
    return path


def test_round_trip_is_exact_with_a_byte_level_tokenizer(curated, tmp_path):
    texts = curated_texts(curated)
    tok_path = byte_level_bpe(tmp_path / "bpe.json", texts)
    export = ts.export_tokens(ts.resolve_inputs([str(curated)]), str(tmp_path / "out"), tok_path, 3000)
    assert export["counts"]["documents"] == len(texts) == 70
    assert export["counts"]["shards"] > 3 and export["dtype"] == "uint16"
    tok = Tokenizer.from_file(str(tok_path))
    eod = tok.token_to_id("<|endoftext|>")
    docs = documents(tmp_path / "out", export)
    assert all(d[-1] == eod and eod not in d[:-1] for d in docs)
    assert [tok.decode(d[:-1].tolist(), skip_special_tokens=False) for d in docs] == texts


def test_round_trip_with_a_normalizing_tokenizer_equals_decode_of_encode(curated, tmp_path):
    texts = curated_texts(curated)
    export = ts.export_tokens(ts.resolve_inputs([str(curated)]), str(tmp_path / "out"), MINILM, 5000)
    tok = ts.load_tokenizer(MINILM)  # lowercases and strips accents: the text comes back normalized, not verbatim
    assert export["eod_id"] == tok.token_to_id("[SEP]") and export["tokenizer"]["eod_token"] == "[SEP]"
    decoded = [tok.decode(d[:-1].tolist()) for d in documents(tmp_path / "out", export)]
    assert decoded == [tok.decode(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    assert sum(len(t.split()) for t in texts) > 5000  # whole documents: MiniLM's 128-token truncation is off


def memmap_recipe(prefix: str) -> list[np.ndarray]:
    """docs/export.md's recipe, with numpy and struct only."""
    with open(prefix + ".idx", "rb") as f:
        head = f.read(34)
    magic, version, code, n_seq, n_doc = struct.unpack("<9sQBQQ", head)
    assert magic == b"MMIDIDX\x00\x00" and version == 1
    lengths = np.memmap(prefix + ".idx", dtype="<i4", mode="r", offset=34, shape=(n_seq,))
    pointers = np.memmap(prefix + ".idx", dtype="<i8", mode="r", offset=34 + 4 * n_seq, shape=(n_seq,))
    dtype = {8: "<u2", 4: "<u4"}[code]
    tokens = np.memmap(prefix + ".bin", dtype=dtype, mode="r")
    itemsize = np.dtype(dtype).itemsize
    return [tokens[p // itemsize: p // itemsize + n] for p, n in zip(pointers, lengths, strict=True)]


def test_memmap_recipe_reads_the_shards_without_tamis(tmp_path):
    texts = [f"Document {i}: " + "words and more words. " * (i % 9) for i in range(60)]
    src = write_parquet(tmp_path / "a.parquet", texts)
    export = ts.export_tokens([str(src)], str(tmp_path / "out"), MINILM, 200)
    ours = documents(tmp_path / "out", export)
    theirs = [d for s in export["shards"] for d in memmap_recipe(str(tmp_path / "out" / s["name"]))]
    assert len(theirs) == 60 and all(np.array_equal(a, b) for a, b in zip(ours, theirs, strict=True))
    # nanoGPT style: the .bin alone is the token stream, documents separated by the EOD id
    stream = np.concatenate([np.memmap(tmp_path / "out" / s["bin"]["path"], dtype="<u2") for s in export["shards"]])
    assert (stream == export["eod_id"]).sum() == 60


def test_shards_hold_whole_documents_up_to_the_size_cap(tmp_path):
    texts = [f"Text {i} " + "alpha beta gamma. " * (i % 13 + 1) for i in range(120)]
    src = write_parquet(tmp_path / "a.parquet", texts)
    export = ts.export_tokens([str(src)], str(tmp_path / "out"), MINILM, 250, batch_rows=16)
    lengths = np.concatenate([np.diff(ts.open_shard(str(tmp_path / "out"), s).ends, prepend=0)
                              for s in export["shards"]])
    assert lengths.sum() == export["counts"]["tokens"]
    for s in export["shards"][:-1]:
        assert 250 <= s["tokens"] < 250 + lengths.max()
    assert export["shards"][-1]["tokens"] <= 250 + lengths.max()


def test_manifest_counts_tokens_per_shard_and_domain(tmp_path):
    texts = [f"Row {i} " + "x y z " * i for i in range(40)]
    domains = ["web" if i % 3 else "code" for i in range(40)]
    a = write_parquet(tmp_path / "a.parquet", texts[:25], domains[:25])
    b = write_parquet(tmp_path / "b.parquet", texts[25:], domains[25:])
    export = ts.export_tokens([str(a), str(b)], str(tmp_path / "out"), MINILM, 100)
    tok = ts.load_tokenizer(MINILM)
    expected = {d: sum(len(tok.encode(t, add_special_tokens=False).ids) + 1
                       for t, dd in zip(texts, domains, strict=True) if dd == d) for d in ("web", "code")}
    counts = export["counts"]
    assert {d: c["tokens"] for d, c in counts["domains"].items()} == expected
    assert counts["domains"]["code"]["documents"] == 14 and counts["tokens"] == sum(expected.values())
    assert sum(s["tokens"] for s in export["shards"]) == counts["tokens"]
    assert all(sum(c["tokens"] for c in s["domains"].values()) == s["tokens"] for s in export["shards"])
    assert export["tokenizer"]["sha256"] == hashlib.sha256(MINILM.read_bytes()).hexdigest()
    assert (tmp_path / "out" / "tokenizer.json").read_bytes() == MINILM.read_bytes()
    listed = {e["path"] for e in export["files"]}
    assert {s["bin"]["path"] for s in export["shards"]} <= listed and "tokenizer.json" in listed
    ts.read_export(str(tmp_path / "out"), verify=True)


def test_vocabularies_over_16_bits_get_uint32(tmp_path):
    vocab = {f"w{i}": i for i in range(70_000)}
    vocab["[UNK]"], vocab["</s>"] = 70_000, 70_001
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.save(str(tmp_path / "big.json"))
    src = write_parquet(tmp_path / "a.parquet", ["w1 w69999 w65536", "w70000 w3"])
    export = ts.export_tokens([str(src)], str(tmp_path / "out"), tmp_path / "big.json", 100)
    assert export["dtype"] == "uint32" and export["eod_id"] == 70_001
    docs = documents(tmp_path / "out", export)
    assert [d.tolist() for d in docs] == [[1, 69999, 65536, 70_001], [70_000, 3, 70_001]]
    assert memmap_recipe(str(tmp_path / "out" / "tokens-00000"))[0].tolist() == [1, 69999, 65536, 70_001]


@pytest.mark.reliability
def test_killed_export_resumes_to_byte_identical_files(tmp_path):
    texts = [f"Document {i}. " + "some words here. " * (i % 11 + 1) for i in range(150)]
    inputs = [str(write_parquet(tmp_path / f"in{k}.parquet", texts[k * 50:(k + 1) * 50])) for k in range(3)]
    clean = ts.export_tokens(inputs, str(tmp_path / "clean"), MINILM, 300, batch_rows=8)
    assert clean["counts"]["shards"] >= 8
    out = tmp_path / "resumed"
    with pytest.raises(ts.FaultInjected):
        ts.export_tokens(inputs, str(out), MINILM, 300, batch_rows=8, fail_after_shards=4)
    assert not (out / "manifest.json").exists() and len(list((out / "_progress").iterdir())) == 4
    assert not list(out.glob("*.tmp-*")) and not (out / "tokens-00004.bin").exists()
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("tokens-*")}
    resumed = ts.export_tokens(inputs, str(out), MINILM, 300, batch_rows=8)
    assert files(out) == files(tmp_path / "clean")
    assert {p: (out / p).stat().st_mtime_ns for p in before} == before  # finished shards were not rewritten
    assert resumed["counts"] == clean["counts"]


KILL_MID_SHARD = """
import os, signal, sys
from tamis.io import token_shards as ts

write = ts._ShardWriter.add
def add(self, *args):  # SIGKILL this process once shard 3 has tokens in its temporary file
    write(self, *args)
    if self.name == "tokens-00003":
        self._f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
ts._ShardWriter.add = add
ts.export_tokens(sys.argv[2:], sys.argv[1], {tok!r}, 300, batch_rows=8)
"""


@pytest.mark.reliability
def test_sigkilled_export_resumes_to_byte_identical_files(tmp_path):
    texts = [f"Document {i}. " + "some words here. " * (i % 11 + 1) for i in range(100)]
    inputs = [str(write_parquet(tmp_path / f"in{k}.parquet", texts[k * 50:(k + 1) * 50])) for k in range(2)]
    clean = ts.export_tokens(inputs, str(tmp_path / "clean"), MINILM, 300, batch_rows=8)
    out = tmp_path / "killed"
    script = KILL_MID_SHARD.format(tok=str(MINILM))
    done = subprocess.run([sys.executable, "-c", script, str(out), *inputs], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert len(list(out.glob("tokens-00003.bin.tmp-*"))) == 1 and len(list((out / "_progress").iterdir())) == 3
    resumed = ts.export_tokens(inputs, str(out), MINILM, 300, batch_rows=8)
    assert files(out) == files(tmp_path / "clean") and resumed == clean


@pytest.mark.reliability
def test_leftovers_of_a_crash_are_redone(tmp_path):
    texts = [f"Doc {i} " + "more text. " * (i % 5 + 1) for i in range(80)]
    src = [str(write_parquet(tmp_path / "a.parquet", texts))]
    ts.export_tokens(src, str(tmp_path / "clean"), MINILM, 120)
    out = tmp_path / "crashed"
    ts.export_tokens(src, str(out), MINILM, 120)
    (out / "manifest.json").unlink()  # killed before the manifest ...
    with open(out / "tokens-00002.bin", "r+b") as f:  # ... with one shard cut short (a marker but a short file),
        f.truncate(10)
    (out / "tokens-00006.bin.tmp-0123456789ab").write_bytes(b"partial")  # a temporary file left behind
    (out / "_progress" / "tokens-00005.json").unlink()  # and a shard renamed but not yet marked
    ts.export_tokens(src, str(out), MINILM, 120)
    assert files(out) == files(tmp_path / "clean")


def test_a_finished_export_is_reused_and_other_settings_are_refused(tmp_path):
    src = [str(write_parquet(tmp_path / "a.parquet", ["one doc", "two docs"]))]
    first = ts.export_tokens(src, str(tmp_path / "out"), MINILM, 100)
    mtime = (tmp_path / "out" / "manifest.json").stat().st_mtime_ns
    assert ts.export_tokens(src, str(tmp_path / "out"), MINILM, 100) == first
    assert (tmp_path / "out" / "manifest.json").stat().st_mtime_ns == mtime
    with pytest.raises(IntegrityError, match="other inputs or settings"):
        ts.export_tokens(src, str(tmp_path / "out"), MINILM, 50)


def test_bad_inputs_and_settings_are_refused(tmp_path):
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "nocol.parquet")
    with pytest.raises(InputError, match="no 'text' column"):
        ts.export_tokens([str(tmp_path / "nocol.parquet")], str(tmp_path / "o1"), MINILM, 100)
    pq.write_table(pa.table({"text": ["fine", None]}), tmp_path / "null.parquet")
    with pytest.raises(InputError, match="row 1 has no 'text'"):
        ts.export_tokens([str(tmp_path / "null.parquet")], str(tmp_path / "o2"), MINILM, 100)
    src = [str(write_parquet(tmp_path / "a.parquet", ["x"]))]
    with pytest.raises(ConfigError, match="shard_tokens"):
        ts.export_tokens(src, str(tmp_path / "o3"), MINILM, 0)
    with pytest.raises(ConfigError, match="eod"):
        ts.export_tokens(src, str(tmp_path / "o4"), MINILM, 100, eod="<nope>")
    with pytest.raises(IntegrityError, match="not a Megatron"):
        ts.decode_index(b"x" * 40, "some.idx")


def test_cli_exports_a_curate_run(curated, tmp_path, capsys):
    code = main(["export", "tokens", str(curated), "--tokenizer", str(MINILM), "--output", str(tmp_path / "out"),
                 "--shard-tokens", "4000"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] == 70 and summary["shards"] == len(ts.read_export(str(tmp_path / "out"))["shards"])
    assert main(["export", "tokens", str(curated), "--tokenizer", str(tmp_path / "missing.json"),
                 "--output", str(tmp_path / "o2")]) == 5
    os.remove(tmp_path / "out" / "manifest.json")
    (tmp_path / "out" / "tokens-00000.bin").write_bytes(b"")  # a rerun repairs a damaged unfinished export
    assert main(["export", "tokens", str(curated), "--tokenizer", str(MINILM), "--output", str(tmp_path / "out"),
                 "--shard-tokens", "4000"]) == 0
    ts.read_export(str(tmp_path / "out"), verify=True)
