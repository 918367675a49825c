"""End-to-end runs of the curate pipeline on the in-process Beam runner."""


import numpy as np
import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import corpus, digests, make_cfg, write_jsonl

from tamis import config
from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.io import run_dir
from tamis.pipelines import curate, options


def test_run_balances_and_routes_everything(tmp_path):
    src = corpus(tmp_path)
    manifest = curate.run(make_cfg(src, tmp_path / "run"))
    c = manifest["counts"]
    assert c["read"] == 3 * 43
    assert c["errors"] == 3
    assert c["dropped_by_reason"] == {"empty_text": 3, "exact_dup": 2}
    assert c["kept"] == 3 * 40 + 1
    assert c["read"] == c["kept"] + c["dropped"] + c["errors"]
    assert all(s["balanced"] for s in manifest["sources"].values()) and len(manifest["sources"]) == 3
    run = tmp_path / "run"
    kept = pq.read_table(run / "shards").column("id").to_pylist()
    assert len(kept) == len(set(kept)) == c["kept"]
    assert "f0-dup" in kept and "f1-dup" not in kept  # the smallest id of a repeated text is kept
    dropped = pq.read_table(run / "dropped").to_pylist()
    dups = {d["id"]: d["dup_of"] for d in dropped if d["reason"] == "exact_dup"}
    assert dups == {"f1-dup": "f0-dup", "f2-dup": "f0-dup"}
    errors = pq.read_table(run / "errors").to_pylist()
    assert {e["raw"] for e in errors} == {b'{"id": "broken", "text": \n'}
    assert len(manifest["shards"]) > 3  # the size cap split each input's output
    run_dir.load(str(run))  # every checksum verifies


def test_manifest_refuses_a_changed_file(tmp_path):
    src = corpus(tmp_path, n_files=1)
    curate.run(make_cfg(src, tmp_path / "run"))
    shard = sorted((tmp_path / "run" / "shards").glob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum"):
        run_dir.load(str(tmp_path / "run"))


def test_output_does_not_depend_on_batch_size(tmp_path):
    src = corpus(tmp_path)
    a = curate.run(make_cfg(src, tmp_path / "a", runner={"batch_size": 7}))
    b = curate.run(make_cfg(src, tmp_path / "b", runner={"batch_size": 1000}))
    ids = lambda run: sorted(pq.read_table(run / "shards").column("id").to_pylist())  # noqa: E731
    assert ids(tmp_path / "a") == ids(tmp_path / "b")
    assert a["counts"] == b["counts"]


def test_interrupted_run_resumes_to_identical_output(tmp_path):
    src = corpus(tmp_path, n_files=4)
    clean = curate.run(make_cfg(src, tmp_path / "clean"))
    cfg = make_cfg(src, tmp_path / "resumed", fail_after_shards=3)
    with pytest.raises(Exception, match="fault injection"):
        curate.run(cfg)
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    finished = list((tmp_path / "resumed" / "_progress").glob("*.json"))
    assert len(finished) < 4  # the crash left work undone
    resumed = curate.run(make_cfg(src, tmp_path / "resumed"))
    assert digests(tmp_path / "resumed") == digests(tmp_path / "clean")
    assert resumed["counts"] == clean["counts"]
    kept = pq.read_table(tmp_path / "resumed" / "shards").column("id").to_pylist()
    assert len(kept) == len(set(kept)) == clean["counts"]["kept"]


def test_a_fault_in_a_pool_worker_writing_fails_the_run_and_the_rerun_completes_it(tmp_path):
    src = corpus(tmp_path, n_files=4)
    clean = curate.run(make_cfg(src, tmp_path / "clean"))
    runner = {"batch_size": 16, "workers": 2, "local_parallelism": "pool"}
    with pytest.raises(Exception, match="fault injection"):
        curate.run(make_cfg(src, tmp_path / "resumed", runner=runner, fail_after_shards=0))
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    assert not list((tmp_path / "resumed" / "_progress").glob("*.json"))  # each worker stopped at its first shard
    resumed = curate.run(make_cfg(src, tmp_path / "resumed", runner=runner))
    assert digests(tmp_path / "resumed") == digests(tmp_path / "clean")
    assert resumed["counts"] == clean["counts"]


def test_rerun_of_a_finished_run_redoes_nothing(tmp_path):
    src = corpus(tmp_path, n_files=2)
    curate.run(make_cfg(src, tmp_path / "run"))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").glob("*/*.parquet")}
    curate.run(make_cfg(src, tmp_path / "run"))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "run").glob("*/*.parquet")} == before


def test_run_dir_with_another_config_is_refused(tmp_path):
    src = corpus(tmp_path, n_files=1)
    curate.run(make_cfg(src, tmp_path / "run"))
    with pytest.raises(IntegrityError, match="another config"):
        curate.run(make_cfg(src, tmp_path / "run", exact_dedup={"enabled": False}))


def test_too_many_errors_stop_the_run(tmp_path):
    src = corpus(tmp_path, n_files=1)
    with pytest.raises(InputError, match="max_error_fraction"):
        curate.run(make_cfg(src, tmp_path / "run", max_error_fraction=0.001))
    assert not (tmp_path / "run" / "manifest.json").exists()


def test_missing_input_and_bad_config_fail_before_any_work(tmp_path):
    with pytest.raises(InputError, match="matches no file"):
        curate.run(make_cfg(tmp_path / "nowhere", tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match="no parameter 'bogus'"):
        make_cfg(tmp_path, tmp_path / "run", bogus=1)
    with pytest.raises(ConfigError, match="'batch_size' parameter of config.runner must be a valid integer"):
        make_cfg(tmp_path, tmp_path / "run", runner={"batch_size": "big"})


@pytest.mark.parametrize("parallelism", ["pool", "beam"])
def test_multiprocess_workers_match_single_process(tmp_path, parallelism):
    src = corpus(tmp_path, n_files=2, per_file=20)
    near = {"enabled": True}  # near dedup deals its batches to the workers (spill.Rebalance)
    curate.run(make_cfg(src, tmp_path / "one", near_dedup=near))
    runner = {"batch_size": 16, "workers": 2, "local_parallelism": parallelism}
    curate.run(make_cfg(src, tmp_path / "two", runner=runner, near_dedup=near))
    assert digests(tmp_path / "one") == digests(tmp_path / "two")


def test_auto_parallelism_pools_small_inputs_and_gives_large_ones_to_beam():
    two = config.RunnerConfig(workers=2)
    assert options.uses_pool(two, options.POOL_BELOW_BYTES - 1)
    assert not options.uses_pool(two, options.POOL_BELOW_BYTES)
    assert options.uses_pool(config.RunnerConfig(workers=2, local_parallelism="pool"), 10**12)
    assert not options.uses_pool(config.RunnerConfig(workers=2, local_parallelism="beam"), 0)
    assert not options.uses_pool(config.RunnerConfig(workers=1, local_parallelism="pool"), 0)


def test_local_runs_skip_beams_construction_type_inference_and_dataflow_keeps_it():
    from apache_beam.options.pipeline_options import TypeOptions

    for pooled in (False, True):
        _, opts = options.make(config.RunnerConfig(workers=2), pooled=pooled)
        assert opts.view_as(TypeOptions).pipeline_type_check is False
    dataflow = config.RunnerConfig(
        name="dataflow", options={"project": "p", "region": "r", "temp_location": "gs://b/tmp"}
    )
    _, opts = options.make(dataflow, dry_run=True)
    assert opts.view_as(TypeOptions).pipeline_type_check is True


def test_auto_clustering_is_union_find_for_small_local_runs_and_star_rounds_elsewhere(tmp_path, caplog):
    local, dataflow = config.RunnerConfig(), config.RunnerConfig(name="dataflow")
    assert options.clustering(local, "auto", options.UNION_FIND_BELOW_BYTES - 1) == "union_find"
    assert options.clustering(local, "auto", options.UNION_FIND_BELOW_BYTES) == "star_rounds"
    assert options.clustering(dataflow, "auto", 0) == "star_rounds"
    assert options.clustering(dataflow, "union_find", 0) == "union_find"
    assert options.clustering(local, "star_rounds", 0) == "star_rounds"
    src = corpus(tmp_path, n_files=1)
    caplog.set_level("INFO", logger="tamis.pipelines.curate")
    curate.run(make_cfg(src, tmp_path / "run", near_dedup={"enabled": True}))
    assert "near-dup clusters by union find" in caplog.text
    runner = {"name": "dataflow", "options": {"project": "tamis-test", "region": "us-central1",
                                              "temp_location": "gs://tamis-test-bucket/tmp"}}
    curate.run(make_cfg(src, "gs://tamis-test-bucket/run", near_dedup={"enabled": True}, runner=runner), dry_run=True)
    assert "near-dup clusters by star rounds" in caplog.text


def test_dataflow_dry_run_builds_the_job_offline(tmp_path):
    src = corpus(tmp_path, n_files=1)
    cfg = make_cfg(
        src,
        "gs://tamis-test-bucket/run",
        runner={"name": "dataflow", "options": {"project": "tamis-test", "region": "us-central1",
                                                "temp_location": "gs://tamis-test-bucket/tmp"}},
    )
    assert curate.run(cfg, dry_run=True) is None
    with pytest.raises(ConfigError, match="temp_location"):
        curate.run(make_cfg(src, "gs://b/run", runner={"name": "dataflow", "options": {"project": "p", "region": "r"}}),
                   dry_run=True)
    with pytest.raises(ConfigError, match="Project ID"):
        curate.run(make_cfg(src, "gs://b/run", runner={"name": "dataflow", "options": {
            "project": "p", "region": "r", "temp_location": "gs://tamis-test-bucket/tmp"}}), dry_run=True)


def test_line_dedup_cuts_repeated_lines_from_later_documents(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    boiler = "Subscribe to our newsletter for more stories like this one."
    write_jsonl(src / "a.jsonl", [
        {"id": "a1", "text": f"First story about rivers and lakes.\n{boiler}"},
        {"id": "a2", "text": f"Second story about mountains.\n{boiler}\nShort"},
        {"id": "a3", "text": boiler},
    ])
    cfg = make_cfg(src, tmp_path / "run", exact_dedup={"units": "line", "min_unit_chars": 10})
    manifest = curate.run(cfg)
    kept = {r["id"]: r["text"] for r in pq.read_table(tmp_path / "run" / "shards").to_pylist()}
    assert kept == {
        "a1": f"First story about rivers and lakes.\n{boiler}",
        "a2": "Second story about mountains.\nShort",
    }
    # a3 is only the boilerplate line, which a1 holds first: cutting it leaves nothing.
    assert manifest["counts"]["dropped_by_reason"] == {"all_lines_repeated": 1}


def test_exact_dedup_pure_functions():
    from tamis.dedup.exact import first_occurrences, remove_units, text_hashes, unit_hashes

    h = text_hashes(["a", "b", "a", "c", "b", "a"])
    dup, kept = first_occurrences(h, ["5", "1", "3", "2", "0", "4"])
    assert dict(zip(dup.tolist(), kept.tolist(), strict=True)) == {0: 2, 5: 2, 1: 4}
    # two documents sharing an id (and text): where they were read decides, not the order they arrive in
    for order in ([0, 1], [1, 0]):
        same = text_hashes(["t", "t"])[order]
        dup, kept = first_occurrences(same, ["x", "x"], locations=np.array([7, 3])[order])
        assert np.array([7, 3])[order][kept].tolist() == [3]
    hashes, rows, pos = unit_hashes(["x line\n\nshort\nx line", "x line"], "line", min_chars=6)
    assert rows.tolist() == [0, 0, 1] and pos.tolist() == [0, 3, 0]
    assert remove_units("a\nb\nc", "line", {1}) == "a\nc"


def test_manifest_records_time_and_documents_per_stage(tmp_path):
    """With 2 workers the filters run in forked pool processes: each reports its own work once."""
    src = corpus(tmp_path, n_files=2)
    docs = {}
    for workers in (1, 2):
        cfg = make_cfg(src, tmp_path / f"run{workers}", filters=[{"name": "gopher_quality"}],
                       runner={"batch_size": 8, "workers": workers})
        manifest = curate.run(cfg)
        stages = manifest["stages"]
        assert list(stages) == ["read", "filter:gopher_quality@1", "write"]
        c = manifest["counts"]
        assert stages["read"]["docs"] == c["read"] - c["errors"]  # documents read (errors are not documents)
        assert stages["write"]["docs"] == c["kept"] + c["dropped"] + c["errors"]
        assert all(s["seconds"] > 0 and s["docs_per_s"] > 0 for s in stages.values())
        docs[workers] = {name: s["docs"] for name, s in stages.items()}
    assert docs[1] == docs[2]
