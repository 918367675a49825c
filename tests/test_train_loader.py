"""tamis.train: exactly-once over ranks × workers, exact resume, shuffle windows, masks, damaged shards."""

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from tamis.embeddings import model_path
from tamis.errors import ConfigError, IntegrityError
from tamis.io import manifest
from tamis.io import token_shards as ts
from tamis.train import DataLoader, DocumentDataset, TokenDataset
from tamis.train.order import EpochOrder, Split, my_positions

MINILM = model_path() / "tokenizer.json"
L = 32  # sequence length in these tests
BATCH = 4


def texts(n: int, seed: int = 0) -> list[str]:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()
    rng = np.random.default_rng(seed)
    return [f"doc {seed}-{i} " + " ".join(rng.choice(words, size=int(rng.integers(0, 60)))) for i in range(n)]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    """An export of seven shards (an odd number) of about 1,600 tokens each, over three Parquet inputs."""
    tmp = tmp_path_factory.mktemp("export")
    inputs = []
    for k in range(3):
        pq.write_table(pa.table({"id": [f"{k}-{i}" for i in range(90)], "text": texts(90, k)}),
                       tmp / f"in{k}.parquet", row_group_size=16)
        inputs.append(str(tmp / f"in{k}.parquet"))
    found = ts.export_tokens(inputs, str(tmp / "out"), MINILM, 1600)
    assert found["counts"]["shards"] == 7
    return tmp / "out"


@pytest.fixture(scope="module")
def stream(export) -> np.ndarray:
    """The export's whole token stream, read with plain numpy."""
    found = ts.read_export(str(export))
    return np.concatenate([np.fromfile(export / s["bin"]["path"], dtype="<u2") for s in found["shards"]])


def samples_of(loader) -> list[int]:
    return [int(i) for batch in loader for i in batch["sample"]]


def token_dataset(root, **kw) -> TokenDataset:
    kw.setdefault("batch_size", BATCH)
    kw.setdefault("shuffle_buffer", 48)
    return TokenDataset(root, L, **kw)


def test_two_ranks_three_workers_see_every_sample_exactly_once(export, stream):
    ranks = []
    for rank in (0, 1):
        ds = token_dataset(export, rank=rank, world_size=2)
        ranks.append(samples_of(DataLoader(ds, num_workers=3)))
    seen = ranks[0] + ranks[1]
    assert sorted(seen) == list(range(ds.num_samples)) and ds.num_samples == len(stream) // L
    assert abs(len(ranks[0]) - len(ranks[1])) <= 1 and len(ranks[0]) == len(ds)
    assert seen[:20] != sorted(seen)[:20]  # shuffled
    # the order a rank receives does not depend on the worker count
    assert ranks[0] == samples_of(DataLoader(token_dataset(export, rank=0, world_size=2), num_workers=0))
    assert ranks[1] == samples_of(DataLoader(token_dataset(export, rank=1, world_size=2), num_workers=2))


def test_samples_are_the_export_stream_cut_into_sequences(export, stream):
    for sample in token_dataset(export, shuffle=False):
        i = sample["sample"]
        assert torch.equal(sample["input_ids"], torch.from_numpy(stream[i * L:(i + 1) * L].astype(np.int64)))


def test_resume_mid_epoch_yields_exactly_the_remaining_samples(export):
    full = [samples_of(DataLoader(token_dataset(export, rank=r, world_size=2), num_workers=3)) for r in (0, 1)]
    seen, states = [], []
    for rank in (0, 1):
        loader = DataLoader(token_dataset(export, rank=rank, world_size=2), num_workers=3)
        got = []
        for k, batch in enumerate(loader):
            got += batch["sample"].tolist()
            if k == 6:
                states.append(loader.state_dict())
                break
        seen.append(got)
    assert states[0] == states[1] and states[0]["sample_in_epoch"] == 7 * BATCH * 2 and states[0]["epoch"] == 0
    for rank in (0, 1):  # a restarted job: new dataset and loader objects, the state rank 0 saved
        loader = DataLoader(token_dataset(export, rank=rank, world_size=2), num_workers=3)
        loader.load_state_dict(states[0])
        assert seen[rank] + samples_of(loader) == full[rank]
    # resumed on one rank instead of two: exactly the samples neither rank had seen
    single = token_dataset(export)
    single.load_state_dict(states[0])
    rest = [s["sample"] for s in single]
    assert sorted(rest + seen[0] + seen[1]) == list(range(single.num_samples))


def test_state_after_a_full_epoch_starts_the_next_one_in_another_order(export):
    ds = token_dataset(export)
    loader = DataLoader(ds, num_workers=2)
    first = samples_of(loader)
    assert loader.state_dict()["epoch"] == 1 and loader.state_dict()["sample_in_epoch"] == 0
    second = samples_of(loader)
    assert sorted(second) == sorted(first) and second != first
    in_process = token_dataset(export)
    assert [s["sample"] for s in in_process] == first and in_process.state_dict()["epoch"] == 1


def test_persistent_workers_move_on_to_the_next_epoch(export):
    loader = DataLoader(token_dataset(export, rank=1, world_size=2), num_workers=3, persistent_workers=True)
    epochs = [samples_of(loader) for _ in range(3)]
    for e, seen in enumerate(epochs):
        fresh = token_dataset(export, rank=1, world_size=2)
        fresh.set_epoch(e)
        assert seen == [s["sample"] for s in fresh]
    assert epochs[0] != epochs[1] != epochs[2]


def test_a_state_from_other_settings_is_refused(export):
    state = token_dataset(export).state_dict()
    with pytest.raises(ConfigError, match="seq_len"):
        TokenDataset(export, L * 2, batch_size=BATCH, shuffle_buffer=48).load_state_dict(state)
    with pytest.raises(ConfigError, match="shuffle_seed"):
        token_dataset(export, seed=1).load_state_dict(state)
    with pytest.raises(ConfigError, match="batch_size"):
        DataLoader(token_dataset(export), batch_size=BATCH + 1)


def test_drop_last_gives_every_rank_the_same_whole_batches(export):
    counts = [len(samples_of(DataLoader(token_dataset(export, rank=r, world_size=2, drop_last=True),
                                        num_workers=3))) for r in (0, 1)]
    n = token_dataset(export).num_samples
    assert counts[0] == counts[1] == n // (2 * BATCH) * BATCH


def test_document_masks_follow_the_eod_tokens(export):
    eod = ts.read_export(str(export))["eod_id"]
    for sample in token_dataset(export, document_mask="segments"):
        ids, seg, pos = sample["input_ids"], sample["segment_ids"], sample["position_ids"]
        after_eod = torch.cat([torch.tensor([False]), ids[:-1] == eod])
        assert torch.equal(torch.cat([torch.tensor([False]), seg[1:] != seg[:-1]]), after_eod)
        assert seg[0] == 0 and torch.all(pos[after_eod] == 0) and pos[0] == 0
        assert torch.all((pos[1:] == pos[:-1] + 1) | after_eod[1:])
    for sample in list(token_dataset(export, document_mask="attention"))[:20]:
        mask, ids = sample["attention_mask"], sample["input_ids"]
        seg = torch.cumsum(torch.cat([torch.tensor([0]), (ids[:-1] == eod).long()]), 0)
        expected = (seg[:, None] == seg[None, :]) & torch.ones(L, L, dtype=torch.bool).tril()
        assert mask.shape == (L, L) and torch.equal(mask, expected)


def test_another_tokenizer_is_refused(export, tmp_path):
    token_dataset(export, tokenizer=MINILM)
    other = tmp_path / "tokenizer.json"
    other.write_bytes(MINILM.read_bytes().replace(b'"[SEP]"', b'"[END]"'))
    with pytest.raises(IntegrityError, match="is not the tokenizer"):
        token_dataset(export, tokenizer=other)


def copy_export(export: Path, dest: Path) -> Path:
    shutil.copytree(export, dest)
    return dest


def test_an_empty_shard_is_read_past(export, tmp_path):
    root = copy_export(export, tmp_path / "copy")
    found = ts.read_export(str(root))
    empty = ts.write_shard(str(root), 99, [], found["dtype"])
    shards = found["shards"]
    shards.insert(2, {"name": "tokens-00099", "documents": 0, "tokens": 0, "bin": empty[0], "idx": empty[1]})
    body = {k: v for k, v in found.items() if k not in ("kind", "format_version", "versions", "files", manifest.SELF_SHA)}
    manifest.write_manifest(str(root), ts.KIND, ts.FORMAT_VERSION, {**body, "shards": shards},
                            [e for e in found["files"] if not e["path"].startswith("_progress")] + empty)
    ranks = [samples_of(DataLoader(token_dataset(root, rank=r, world_size=2), num_workers=3)) for r in (0, 1)]
    assert sorted(ranks[0] + ranks[1]) == list(range(token_dataset(export).num_samples))
    assert [s["input_ids"].tolist() for s in token_dataset(root, shuffle=False)] == \
        [s["input_ids"].tolist() for s in token_dataset(export, shuffle=False)]


def test_a_truncated_shard_is_refused_with_its_path(export, tmp_path):
    root = copy_export(export, tmp_path / "copy")
    with open(root / "tokens-00003.bin", "r+b") as f:
        f.truncate(100)
    for verify in (True, False):
        with pytest.raises(IntegrityError, match=r"tokens-00003\.bin is truncated: 100 bytes"):
            list(token_dataset(root, shuffle=False, verify=verify))


def test_a_changed_shard_fails_its_checksum_unless_verify_is_off(export, tmp_path):
    root = copy_export(export, tmp_path / "copy")
    data = bytearray((root / "tokens-00001.bin").read_bytes())
    data[10] ^= 1
    (root / "tokens-00001.bin").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"tokens-00001\.bin does not match its manifest checksum"):
        list(token_dataset(root))
    assert len(list(token_dataset(root, verify=False))) == token_dataset(export).num_samples


# ---------------------------------------------------------------- Parquet documents


@pytest.fixture(scope="module")
def parquet_run(tmp_path_factory) -> Path:
    """A run-like directory: three Parquet shards, one of them empty, listed in a manifest."""
    root = tmp_path_factory.mktemp("run")
    (root / "shards").mkdir()
    sizes = (70, 0, 45)
    for k, n in enumerate(sizes):
        table = pa.table({"id": [f"s{k}-{i}" for i in range(n)], "text": texts(n, k)},
                         schema=pa.schema([("id", pa.string()), ("text", pa.string())]))
        pq.write_table(table, root / "shards" / f"part-{k}.parquet", row_group_size=8)
    rels = [f"shards/part-{k}.parquet" for k in range(3)]
    manifest.write_manifest(str(root), "curate_run", 1, {"shards": [{"path": r} for r in rels]}, rels)
    return root


def test_parquet_rows_two_ranks_three_workers_exactly_once(parquet_run):
    ranks = []
    for rank in (0, 1):
        ds = DocumentDataset(parquet_run, rank=rank, world_size=2, batch_size=BATCH, shuffle_buffer=20)
        ranks.append([i for batch in DataLoader(ds, num_workers=3) for i in batch["id"]])
    expected = sorted(f"s{k}-{i}" for k, n in ((0, 70), (2, 45)) for i in range(n))
    assert sorted(ranks[0] + ranks[1]) == expected and ds.num_samples == 115
    solo = DocumentDataset(parquet_run, rank=0, world_size=2, batch_size=BATCH, shuffle_buffer=20)
    assert [row["id"] for row in solo] == ranks[0]


def test_parquet_resume_in_process(parquet_run):
    full = [row["id"] for row in DocumentDataset(parquet_run, shuffle_buffer=20)]
    ds = DocumentDataset(parquet_run, shuffle_buffer=20)
    it = iter(ds)
    head = [next(it)["id"] for _ in range(37)]
    state = ds.state_dict()
    again = DocumentDataset(parquet_run, shuffle_buffer=20)
    again.load_state_dict(state)
    assert head + [row["id"] for row in again] == full


def test_a_truncated_parquet_shard_is_refused_with_its_path(parquet_run, tmp_path):
    root = copy_export(parquet_run, tmp_path / "run")
    data = (root / "shards" / "part-2.parquet").read_bytes()
    (root / "shards" / "part-2.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match=r"part-2\.parquet is truncated"):
        DocumentDataset(root)
    with pytest.raises(ConfigError, match="no manifest"):
        DocumentDataset([str(root / "shards" / "part-0.parquet")])
    with pytest.raises(IntegrityError, match=r"part-2\.parquet is not a readable Parquet file"):
        DocumentDataset([str(root / "shards" / "part-2.parquet")], verify=False)


# ---------------------------------------------------------------- the order


def test_windows_bound_the_shuffle_and_cover_every_sample():
    bounds = np.arange(0, 1001, 10)  # 100 blocks of 10
    order = EpochOrder(bounds, seed=3, epoch=0, buffer=40)
    seen = []
    for w in range(order.num_windows):
        ids = order.window_samples(w)
        blocks = set((ids // 10).tolist())
        assert blocks == set(order.window_blocks(w).tolist()) and len(blocks) == 4
        seen += ids.tolist()
    assert sorted(seen) == list(range(1000)) and seen != sorted(seen)
    assert not np.array_equal(EpochOrder(bounds, 3, 1, 40).window_samples(0), order.window_samples(0))
    assert EpochOrder(bounds, 3, 0, 40, shuffle=False).window_samples(2).tolist() == list(range(80, 120))


def test_positions_split_by_rank_and_batch_round_robin():
    order = EpochOrder(np.array([0, 50]), 0, 0, 100, shuffle=False)
    split = Split(rank=1, world_size=2, worker=1, num_workers=3, batch_size=2)
    got = np.concatenate([p for _, p in my_positions(order, 0, 50, split)])
    # rank 1 owns odd positions; its local batches [2,3], [8,9], ... belong to worker 1
    assert got.tolist() == [5, 7, 17, 19, 29, 31, 41, 43]
    resumed = np.concatenate([p for _, p in my_positions(order, 10, 50, split)])
    assert resumed.tolist() == [15, 17, 27, 29, 39, 41]
