"""The `tamis` command: one clear error line per bad input, dry runs that do no work, the demo."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tamis import cli
from tamis.io import run_dir


def write_config(tmp_path: Path, **over) -> Path:
    src = tmp_path / "in"
    src.mkdir(exist_ok=True)
    (src / "a.jsonl").write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Document number {i} has some words."}) + "\n" for i in range(30))
    )
    raw = {"inputs": [{"path": str(src / "*.jsonl")}], "output": str(tmp_path / "run"), **over}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in {n.split()[0] for n in cli.COMMANDS}:
        assert name in out


@pytest.mark.parametrize(
    ("over", "code", "needle"),
    [
        ({"unknown_key": 1}, 2, "unknown_key"),
        ({"filters": [{"name": "no_such_filter"}]}, 2, "no_such_filter"),
        ({"filters": [{"name": "pii", "params": {"email": "yes"}}]}, 2, "email"),
        ({"max_error_fraction": "many"}, 2, "max_error_fraction"),
        ({"inputs": [{"path": "/nonexistent/*.jsonl"}]}, 3, "/nonexistent"),
    ],
)
def test_bad_config_or_input_is_one_error_line_and_no_work(tmp_path, capsys, over, code, needle):
    config = write_config(tmp_path, **over)
    got, _, err = run_cli(capsys, "curate", config)
    assert got == code
    lines = err.strip().splitlines()
    assert lines[0].startswith("tamis: error:") and needle in lines[0]
    assert all(line.startswith("tamis: ") for line in lines)  # no traceback
    assert not (tmp_path / "run").exists()


def test_missing_config_file(tmp_path, capsys):
    code, _, err = run_cli(capsys, "curate", tmp_path / "nope.yaml")
    assert code == 2 and "does not exist" in err


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    config = write_config(tmp_path, filters=[{"name": "pii"}])
    code, out, _ = run_cli(capsys, "curate", config, "--dry-run")
    assert code == 0
    assert "read → normalize → exact_dedup → filter:pii@1 → write" in out
    assert "1 files" in out
    assert not (tmp_path / "run").exists()


def test_curate_json_counts_balance(tmp_path, capsys):
    config = write_config(tmp_path)
    code, out, _ = run_cli(capsys, "curate", config, "--json", "--batch-size", 7)
    assert code == 0
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["read"] == 30 == counts["kept"] + counts["dropped"] + counts["errors"]
    assert run_dir.load(str(tmp_path / "run"))["counts"]["read"] == 30


def test_demo_runs_on_bundled_data_and_balances(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    code, out, _ = run_cli(capsys, "demo", "--output", out_dir)
    assert code == 0
    manifest = run_dir.load(str(out_dir))
    c = manifest["counts"]
    assert c["read"] == c["kept"] + c["dropped"] + c["errors"] > 400
    assert c["errors"] >= 2  # the bundled truncated line and record without text
    assert c["dropped_by_reason"].get("exact_dup", 0) >= 2  # the bundled reposts
    assert c["dropped_by_reason"].get("near_dup", 0) >= 1  # the bundled edited copy
    assert c["kept"] == sum(pq.read_metadata(out_dir / s["path"]).num_rows for s in manifest["shards"])
    assert "manifest:" in out and "kept" in out
    assert manifest["made_by"] == "tamis demo"
    # ...then mixes its sources into a tokenized export, each a verified artifact of its own inside the run
    assert "tamis mix:" in out and "achieved" in out and "tokens: " in out
    mix_manifest = json.loads((out_dir / "mix" / "manifest.json").read_text())
    assert set(mix_manifest["domains"]) == {"dclm", "c4", "dolma"}
    export = json.loads((out_dir / "mix" / "tokens" / "manifest.json").read_text())
    assert export["counts"]["documents"] == mix_manifest["samples"]
    for folder in (out_dir, out_dir / "mix", out_dir / "mix" / "tokens"):
        assert run_cli(capsys, "verify", folder)[0] == 0
    # A second demo run starts fresh over its own finished run.
    (out_dir / "shards" / "extra.parquet").write_bytes(b"left by the first run")
    assert run_cli(capsys, "demo", "--output", out_dir)[0] == 0
    assert not (out_dir / "shards" / "extra.parquet").exists()
    # An interrupted demo run (no manifest yet, its own progress markers) is resumed, not deleted.
    (out_dir / "manifest.json").unlink()
    first = sorted(p.name for p in (out_dir / "shards").iterdir())
    assert run_cli(capsys, "demo", "--output", out_dir)[0] == 0
    assert sorted(p.name for p in (out_dir / "shards").iterdir()) == first


def test_demo_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    code, _, err = run_cli(capsys, "demo", "--output", tmp_path)
    assert code == 2 and "not a demo run" in err
    assert (tmp_path / "precious.txt").exists()


def test_demo_never_deletes_a_real_curate_run(tmp_path, capsys):
    config = write_config(tmp_path)
    assert run_cli(capsys, "curate", config)[0] == 0
    run = tmp_path / "run"
    before = sorted(str(p.relative_to(run)) for p in run.rglob("*"))
    code, _, err = run_cli(capsys, "demo", "--output", run)
    assert code == 2 and "not a demo run" in err
    assert sorted(str(p.relative_to(run)) for p in run.rglob("*")) == before
    (run / "manifest.json").unlink()  # an interrupted curate run is not the demo's either
    assert run_cli(capsys, "demo", "--output", run)[0] == 2 and (run / "_progress").exists()


def test_dataflow_dry_run_from_the_command_line(tmp_path, capsys):
    config = write_config(tmp_path, filters=[{"name": "pii"}])
    code, out, err = run_cli(
        capsys, "curate", config, "--runner", "dataflow", "--project", "tamis-test", "--region", "us-central1",
        "--temp-location", "gs://tamis-test-bucket/tmp", "--output", "gs://tamis-test-bucket/run", "--dry-run",
    )
    assert code == 0, err
    assert "dataflow job graph built and checked" in out


def test_dry_run_checks_benchmark_files(tmp_path, capsys):
    config = write_config(tmp_path, decontaminate={
        "enabled": True, "benchmarks": [{"name": "gsm8k", "path": str(tmp_path / "missing.jsonl")}]})
    code, _, err = run_cli(capsys, "curate", config, "--dry-run")
    assert code == 3 and "missing.jsonl" in err.splitlines()[0]


def test_example_configs_validate(capsys, monkeypatch, shared_data):
    from tamis.pipelines import augment, mix

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # their paths are relative to the repository root
    for config in sorted((root / "configs").glob("*.yaml")):
        raw = yaml.safe_load(config.read_text())
        if "domains" in raw:  # a mix config: its input runs need not exist yet
            mix.load_config(str(config))
            continue
        if "retriever" in raw:  # an augment config: its input runs and index need not exist yet
            augment.load_config(raw)
            continue
        code, out, err = run_cli(capsys, "curate", config, "--dry-run", "--output", "/tmp/tamis-never-written")
        assert code == 0, (config, err)


@pytest.mark.parametrize(("argv", "expanded"), [
    (["mix", "c.yaml"], ["mix", "run", "c.yaml"]),
    (["--debug", "mix", "c.yaml", "--dry-run"], ["--debug", "mix", "run", "c.yaml", "--dry-run"]),
    (["mix", "--dry-run", "c.yaml"], ["mix", "run", "--dry-run", "c.yaml"]),
    (["mix", "run", "c.yaml"], ["mix", "run", "c.yaml"]),
    (["mix", "regmix", "fit", "--out", "m"], ["mix", "regmix", "fit", "--out", "m"]),
    (["mix", "--help"], ["mix", "--help"]),
    (["curate", "mix"], ["curate", "mix"]),
])
def test_a_group_that_is_also_a_command(argv, expanded):
    assert cli.expand_default(argv) == expanded


def test_mix_help_lists_its_subcommands_and_the_short_form(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["mix", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "run" in out and "regmix" in out and "tamis mix CONFIG.yaml" in out
    with pytest.raises(SystemExit):
        cli.main(["mix", "regmix", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("fit", "eval", "search"))


def test_help_imports_no_heavy_library():
    import subprocess
    import sys

    code = ("import sys; from tamis import cli; cli._parser(); "
            "print(sorted(m for m in ('apache_beam', 'lightgbm', 'sklearn', 'tokenizers', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_mix_short_form_runs_a_dry_run(tmp_path, capsys):
    config = write_config(tmp_path)
    assert run_cli(capsys, "curate", config, "--json")[0] == 0
    mix_config = tmp_path / "mix.yaml"
    mix_config.write_text(yaml.safe_dump({
        "inputs": [str(tmp_path / "run")], "output": str(tmp_path / "mix"), "budget_tokens": 100,
        "tokenizer": {"chars_per_token": 4.0}, "domains": [{"name": "all"}], "weights": {"alpha": 1.0}}))
    code, out, err = run_cli(capsys, "mix", mix_config, "--dry-run")
    assert code == 0, err
    assert "domain all: every document not taken above" in out and "30 documents" in out
    assert not (tmp_path / "mix").exists()
    code, out, err = run_cli(capsys, "mix", mix_config, "--json")
    assert code == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["domains"]["all"]["achieved_share"] == 1.0 and abs(report["achieved_tokens"] - 100) <= 5
