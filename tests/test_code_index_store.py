"""The code index on disk: built by the Beam pipeline (`tamis index code`), verified and loaded read-only,
and the context command that reads it."""

import json
import os

import pytest
from code_fixtures import FILES

from tamis.cli import main
from tamis.code.context import code_context
from tamis.code.index import build
from tamis.code.ingest import IngestConfig, from_directory
from tamis.code.retriever import ContextRetriever, Cursor
from tamis.code.store import load, save
from tamis.errors import IntegrityError


@pytest.fixture()
def project(tmp_path):
    root = tmp_path / "proj"
    for path, text in FILES.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


def test_save_load_round_trip(project, tmp_path):
    index = build(from_directory(str(project), IngestConfig(), name="proj"))
    out = tmp_path / "idx"
    save(str(out), [index], index.config)
    loaded = load(str(out)).repos["proj"]
    cursor = Cursor("app/main.py", 9)
    before = [s.to_dict() for s in ContextRetriever(index).rank(cursor)]
    after = [s.to_dict() for s in ContextRetriever(loaded).rank(cursor)]
    assert before == after and before


def test_load_refuses_a_changed_file_and_a_newer_format(project, tmp_path):
    index = build(from_directory(str(project), IngestConfig(), name="proj"))
    out = tmp_path / "idx"
    save(str(out), [index], index.config)
    target = out / "repos" / "proj" / "postings" / "post_tf.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        load(str(out))
    save(str(out), [index], index.config)
    man = json.loads((out / "manifest.json").read_text())
    man["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(IntegrityError, match="format version"):
        load(str(out), verify=False)


def test_index_code_pipeline_and_context_command(project, tmp_path, capsys):
    rows = tmp_path / "repos.jsonl"
    rows.write_text("".join(json.dumps({"repo": "other/lib", "path": p, "content": t}) + "\n" for p, t in FILES.items()))
    out = tmp_path / "idx"
    assert main(["index", "code", str(project), str(rows), "--output", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["name"] for r in summary["repos"]] == ["other/lib", "proj"]
    index = load(str(out))
    assert sorted(index.repos) == ["other/lib", "proj"] and not (out / "_tmp").exists()
    ctx = code_context(index, "proj/app/main.py", 9, budget=200)
    assert ctx.snippets and ctx.tokens <= 200
    assert main(["code", "context", "--index", str(out), "--repo", "proj", "--file", "app/main.py", "--line", "9",
                 "--json", "--budget", "300"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["snippets"][0]["path"] != "app/main.py" and printed["tokens"] <= 300
    assert main(["search", "--code-index", str(out), "--repo", "proj", "--file", "app/main.py", "--line", "9",
                 "--json", "--budget", "300"]) == 0  # the same context through `tamis search`
    assert json.loads(capsys.readouterr().out) == printed
    assert main(["search", "--code-index", str(out), "--file", "app/main.py"]) == 2  # no --line
    assert main(["code", "context", "--index", str(out), "--file", "app/main.py", "--line", "9"]) == 3  # which repo?
    assert main(["index", "code", str(project), "--output", str(out)]) == 2  # not empty without --overwrite
    assert os.path.exists(out / "manifest.json")


def test_index_code_from_git_at_a_commit(project, tmp_path, capsys):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=project, check=True,
                       capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "one")
    out = tmp_path / "gidx"
    assert main(["index", "code", f"{project}@HEAD", "--output", str(out), "--window", "5", "--stride", "5"]) == 0
    index = load(str(out))
    (repo,) = index.repos.values()
    assert repo.commit and len(repo.commit) == 40 and repo.config.window == 5
