"""`tamis code fim`: Beam pipeline from code files to FIM shards with context; deterministic; resumes."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from code_fixtures import FILES

from tamis.cli import main
from tamis.code import fim
from tamis.io.manifest import read_manifest
from tamis.pipelines import code_fim

OTHER = {
    "lib/a.py": "def alpha(x):\n    return x * 2\n\n\nBETA = 3\n",
    "lib/b.py": "from lib.a import alpha, BETA\n\n\ndef gamma(y):\n    return alpha(y) + BETA\n",
}


def write_inputs(tmp_path):
    rows = [{"id": f"r1:{p}", "text": t, "repo": "one/r", "path": p} for p, t in FILES.items()]
    rows += [{"id": f"r2:{p}", "text": t, "repo": "two/r", "path": p} for p, t in OTHER.items()]
    jsonl = tmp_path / "files.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows[:5]) + "not json\n")
    # a curate run shard: the original fields sit in its `meta` JSON string
    shard = pa.table({
        "id": [r["id"] for r in rows[5:]], "text": [r["text"] for r in rows[5:]], "source": ["raw.jsonl"] * 1,
        "offset": [0], "meta": [json.dumps({"repo": r["repo"], "path": r["path"]}) for r in rows[5:]],
    })  # fmt: skip
    pq.write_table(shard, tmp_path / "part-00000-0000.parquet")
    return [str(jsonl), str(tmp_path / "*.parquet")]


def config(tmp_path, out, **extra):
    inputs = write_inputs(tmp_path)
    cfg = {"inputs": [{"path": p} for p in inputs], "output": str(out),
           "fim": {"fim_rate": 1.0, "seed": 11, "context_budget": 300}, **extra}
    path = tmp_path / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def shards(out):
    man = read_manifest(str(out), fim.KIND, fim.FORMAT_VERSION)
    table = pa.concat_tables([pq.read_table(out / f["path"]) for f in man["files"]])
    return man, table


def test_fim_pipeline(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["code", "fim", str(config(tmp_path, out))]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["samples"] == len(FILES) + len(OTHER) and summary["repos"] == 2 and summary["error_records"] == 1
    man, table = shards(out)
    rows = table.to_pylist()
    assert {r["repo"] for r in rows} == {"one/r", "two/r"}
    originals = {**{("one/r", p): t for p, t in FILES.items()}, **{("two/r", p): t for p, t in OTHER.items()}}
    for r in rows:
        assert r["prefix"] + r["middle"] + r["suffix"] == originals[(r["repo"], r["path"])]
        assert r["text"].startswith(r["context"])
        assert f"# {r['path']} " not in r["context"]  # never a copy of the file itself
    main_py = next(r for r in rows if r["path"] == "app/main.py")
    assert main_py["context_snippets"] > 0


@pytest.mark.reliability
def test_fim_resumes_after_a_crash(tmp_path):
    clean = tmp_path / "clean"
    code_fim.run(code_fim.CodeFimConfig.model_validate(yaml.safe_load(config(tmp_path, clean).read_text())))
    crashed = tmp_path / "crashed"
    raw = yaml.safe_load(config(tmp_path, crashed).read_text())
    code_fim._RepoSamples.written = 0
    with pytest.raises(Exception, match="fault injection"):
        code_fim.run(code_fim.CodeFimConfig.model_validate({**raw, "fail_after_repos": 1}))
    assert not (crashed / "manifest.json").exists()
    done = sorted(p.name for p in (crashed / "_done").iterdir())
    assert len(done) == 1
    code_fim.run(code_fim.CodeFimConfig.model_validate(raw))
    a, b = shards(clean)[0], shards(crashed)[0]
    assert [(f["path"], f["sha256"]) for f in a["files"]] == [(f["path"], f["sha256"]) for f in b["files"]]


def test_fim_shards_load_with_the_training_loader(tmp_path):
    from tamis.train import DocumentDataset

    out = tmp_path / "out"
    assert main(["code", "fim", str(config(tmp_path, out))]) == 0
    _, table = shards(out)
    rows = list(DocumentDataset(str(out), columns=("id", "text"), shuffle=False))
    assert sorted(r["id"] for r in rows) == sorted(table.column("id").to_pylist())
    assert {r["id"]: r["text"] for r in rows} == dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(),
                                                          strict=True))
