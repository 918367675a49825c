"""`tamis eval code-context` on a task folder in the shared data's format."""

import gzip
import json

import pytest

from tamis.cli import main
from tamis.eval import code_context as cc

REPOS = ("marshmallow-code/marshmallow", "tox-dev/tox")


@pytest.fixture(scope="module")
def task_dir(shared_data, tmp_path_factory):
    src = shared_data / "code_context"
    out = tmp_path_factory.mktemp("tasks")
    tasks = [json.loads(line) for line in open(src / "tasks.jsonl")]
    picked = [t for name in REPOS for t in [t for t in tasks if t["repo"] == name][:12]]
    (out / "tasks.jsonl").write_text("".join(json.dumps(t) + "\n" for t in picked))
    with gzip.open(src / "repos.jsonl.gz", "rt") as f, gzip.open(out / "repos.jsonl.gz", "wt") as g:
        for line in f:
            if json.loads(line)["repo"] in REPOS:
                g.write(line)
    return out


def test_eval_command(task_dir, capsys):
    assert main(["eval", "code-context", "--tasks", str(task_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["tasks"] == 24 and result["ms_per_query"] > 0
    assert 0 <= result["hit@1"] <= result["hit@5"] <= result["hit@10"] <= 1
    assert result["hit@10"] > 0.3


def test_cross_validation_holds_each_repository_out(task_dir):
    data = cc.load_tasks(task_dir)
    indexes = cc.build_indexes(data)
    per_task, weights = cc.cross_validate(data, indexes)
    assert sorted(weights) == list(REPOS) and weights[REPOS[0]] != weights[REPOS[1]]
    report = cc.report(per_task)
    assert report["tasks"] == 24 and sorted(report["per_repo"]) == list(REPOS)
    one = cc.TaskSet([t for t in data.tasks if t["repo"] == REPOS[0]], data.rows)
    with pytest.raises(Exception, match="at least two repositories"):
        cc.fold_weights(one, indexes)


def test_missing_task_files(tmp_path):
    assert main(["eval", "code-context", "--tasks", str(tmp_path), "--json"]) == 3


def test_hit_is_overlap_with_a_gold_span():
    gold = [{"path": "a.py", "start_line": 10, "end_line": 20}]
    assert cc.is_hit("a.py", 20, 40, gold) and cc.is_hit("a.py", 1, 10, gold)
    assert not cc.is_hit("a.py", 21, 40, gold) and not cc.is_hit("b.py", 10, 20, gold)
