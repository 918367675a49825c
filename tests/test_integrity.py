"""The integrity defects a new user hit, each reproduced: runs never lose or falsify data, and say so when they can't."""

import gzip
import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import zstandard
from pipeline_fixtures import corpus, digests, make_cfg, write_jsonl

from tamis import cli
from tamis.errors import ConfigError, InputError, IntegrityError
from tamis.io.readers import InputConfig, read_all
from tamis.pipelines import curate


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _flip(path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))


def _big_corpus(tmp_path, n_files=3, per_file=120):
    src = tmp_path / "in"
    src.mkdir()
    for f in range(n_files):
        write_jsonl(src / f"part{f}.jsonl", [{"id": f"f{f}-{i:04d}", "text": f"Document {i} of file {f}. " * 20}
                                             for i in range(per_file)])
    return src


def test_changed_config_on_an_interrupted_run_is_refused_and_leaves_no_stale_shards(tmp_path):
    src = _big_corpus(tmp_path)
    run = tmp_path / "run"
    curate.run(make_cfg(src, run, shards={"target_bytes": 2000}))
    (run / "manifest.json").unlink()  # as a kill just before the manifest leaves it
    with pytest.raises(IntegrityError, match="unfinished run made with another config"):
        curate.run(make_cfg(src, run, shards={"target_bytes": 64000}))
    # the same config resumes, and only the files of that config remain
    manifest = curate.run(make_cfg(src, run, shards={"target_bytes": 2000}))
    listed = {e["path"] for e in manifest["files"]}
    assert {str(p.relative_to(run)) for p in run.glob("*/*") if p.is_file()} == listed
    kept = pq.read_table(run / "shards").column("id").to_pylist()
    assert len(kept) == len(set(kept)) == manifest["counts"]["kept"]


def test_debris_of_a_killed_attempt_is_removed_before_a_rerun(tmp_path):
    src = _big_corpus(tmp_path)
    run = tmp_path / "run"
    curate.run(make_cfg(src, run, shards={"target_bytes": 2000}))
    clean = digests(run)
    (run / "manifest.json").unlink()
    marker = run / "_progress" / "00001.json"
    for p in json.loads(marker.read_text())["files"]:  # input 1 was being written when the kill came
        (run / p["path"]).unlink()
    marker.unlink()
    (run / "shards" / "part-00001-0999.parquet").write_bytes(b"half a shard")  # from the killed attempt
    (run / "shards" / "part-00001-0000.parquet.tmp-0123456789ab").write_bytes(b"temporary")
    (run / "_spill").mkdir()
    (run / "_spill" / "x.arrow").write_bytes(b"spilled batch" * 1000)
    curate.run(make_cfg(src, run, shards={"target_bytes": 2000}))
    assert digests(run) == clean
    assert not list(run.rglob("*.tmp-*")) and not (run / "_spill").exists()
    assert not (run / "shards" / "part-00001-0999.parquet").exists()


def test_truncated_gzip_fails_the_run_unless_accepted(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rows = [{"id": f"d{i}", "text": f"Document {i}. " + "words " * 50} for i in range(355)]
    data = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in rows))
    (src / "cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    cfg = make_cfg(src, tmp_path / "run", inputs=[{"path": str(src / "*.jsonl.gz")}], max_error_fraction=0.01)
    with pytest.raises(InputError, match="could not be read to their end"):
        curate.run(cfg)
    assert not (tmp_path / "run" / "manifest.json").exists()
    manifest = curate.run(cfg.model_copy(update={"accept_truncated": True}))  # same outputs, now accepted
    source = manifest["sources"][str(src / "cut.jsonl.gz")]
    assert source["truncated"] is True and "unread_bytes" in source
    assert manifest["counts"]["truncated_inputs"] == 1
    assert source["read"] < 355


def test_corrupt_zstd_in_the_middle_counts_the_unread_bytes(tmp_path):
    frames = [
        zstandard.ZstdCompressor().compress(
            b"".join(json.dumps({"id": f"{f}-{i}", "text": os.urandom(300).hex()}).encode() + b"\n" for i in range(200))
        )
        for f in range(5)
    ]
    third = sum(map(len, frames[:2]))
    data = bytearray(b"".join(frames))
    data[third: third + 4] = b"\x00\x00\x00\x00"  # the third frame's magic number: nothing after it decodes
    path = tmp_path / "bad.jsonl.zst"
    path.write_bytes(bytes(data))
    stats: dict = {}
    from tamis.io.readers import read_file

    kinds = [k for k, _ in read_file(str(path), InputConfig(path=str(path)), stats=stats)]
    assert "errors" in kinds and stats["truncated"] is True
    assert len(data) - third - 2 * 131072 <= stats["unread_bytes"] <= len(data) - third  # up to the read-ahead


def test_a_flipped_byte_is_found_by_verify_and_a_rerun_refuses_instead_of_hiding_it(tmp_path, capsys):
    src = corpus(tmp_path, n_files=2)
    run = tmp_path / "run"
    cfg = make_cfg(src, run)
    curate.run(cfg)
    assert run_cli(capsys, "verify", run)[0] == 0
    manifest_before = (run / "manifest.json").read_bytes()
    shard = sorted((run / "shards").glob("*.parquet"))[0]
    _flip(shard)
    code, out, err = run_cli(capsys, "verify", run)
    assert code == IntegrityError.exit_code and shard.name in out and "tamis: error:" in err
    with pytest.raises(IntegrityError, match="fail verification"):
        curate.run(cfg)
    assert (run / "manifest.json").read_bytes() == manifest_before


def test_a_damaged_file_of_an_interrupted_run_is_redone(tmp_path):
    src = corpus(tmp_path, n_files=2)
    run = tmp_path / "run"
    curate.run(make_cfg(src, run))
    clean = digests(run)
    (run / "manifest.json").unlink()
    _flip(sorted((run / "shards").glob("*.parquet"))[0])  # size unchanged: only the sha256 tells
    curate.run(make_cfg(src, run))
    assert digests(run) == clean


def test_verify_exit_codes(tmp_path, capsys):
    assert run_cli(capsys, "verify", tmp_path / "nowhere")[0] == InputError.exit_code
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "verify", tmp_path / "empty")
    assert code == IntegrityError.exit_code and "no manifest.json" in err
    src = corpus(tmp_path, n_files=1)
    curate.run(make_cfg(src, tmp_path / "run"))
    code, out, _ = run_cli(capsys, "verify", tmp_path / "run", "--json")
    assert code == 0 and json.loads(out)["problems"] == []
    (tmp_path / "run" / "manifest.json").write_text((tmp_path / "run" / "manifest.json").read_text().replace(
        '"kept": ', '"kept": 1', 1))
    assert run_cli(capsys, "verify", tmp_path / "run")[0] == IntegrityError.exit_code


@pytest.mark.parametrize("kind", ["file", "readonly"])
def test_an_unusable_output_is_one_line_at_plan_time(tmp_path, capsys, kind):
    src = corpus(tmp_path, n_files=1)
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a folder")
    else:
        if os.geteuid() == 0:
            pytest.skip("root can write anywhere")
        out.mkdir()
        out.chmod(0o500)
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"inputs": [{"path": str(src / "*.jsonl")}], "output": str(out)}))
    for extra in ([], ["--dry-run"]):
        code, _, err = run_cli(capsys, "curate", config, *extra)
        assert code == ConfigError.exit_code and err.count("\n") <= 2
        assert "cannot be written" in err or "not a folder" in err


def test_unknown_input_format_fails_at_plan_time(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "x.warc.gz.bad").write_bytes(b"whatever")
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"inputs": [{"path": str(src / "*")}], "output": str(tmp_path / "run")}))
    for extra in ([], ["--dry-run"]):
        code, _, err = run_cli(capsys, "curate", config, *extra)
        assert code == ConfigError.exit_code and "Cannot tell the format" in err
    assert not (tmp_path / "run").exists()


def test_index_bm25_refuses_a_run_directory_and_stale_or_damaged_shards(tmp_path, capsys):
    src = corpus(tmp_path, n_files=2)
    run = tmp_path / "run"
    curate.run(make_cfg(src, run))
    code, _, err = run_cli(capsys, "index", "bm25", run, "--output", tmp_path / "i1")
    assert code == InputError.exit_code and "is a folder" in err
    (run / "shards" / "part-00009-0000.parquet").write_bytes((run / "shards" / "part-00000-0000.parquet").read_bytes())
    code, _, err = run_cli(capsys, "index", "bm25", f"{run}/shards/*.parquet", "--output", tmp_path / "i2")
    assert code == IntegrityError.exit_code and "not" in err
    (run / "shards" / "part-00009-0000.parquet").unlink()
    _flip(run / "shards" / "part-00000-0000.parquet")
    code, _, err = run_cli(capsys, "index", "bm25", f"{run}/shards/*.parquet", "--output", tmp_path / "i3")
    assert code == IntegrityError.exit_code


def test_empty_inputs_are_warned_and_counted(tmp_path, caplog):
    src = _big_corpus(tmp_path, n_files=1, per_file=5)
    (src / "empty.jsonl").write_bytes(b"")
    (src / "zero.jsonl.zst").write_bytes(b"")
    cfg = make_cfg(src, tmp_path / "run", inputs=[{"path": str(src / "*")}])
    with caplog.at_level("WARNING"):
        manifest = curate.run(cfg)
    assert manifest["counts"]["empty_inputs"] == 2
    assert manifest["sources"][str(src / "zero.jsonl.zst")]["empty"] is True
    assert sum("holds no record" in r.message for r in caplog.records) == 2


def test_a_no_op_rerun_does_not_rewrite_the_manifest(tmp_path):
    src = corpus(tmp_path, n_files=1)
    curate.run(make_cfg(src, tmp_path / "run"))
    before = (tmp_path / "run" / "manifest.json").read_bytes()
    again = curate.run(make_cfg(src, tmp_path / "run"))
    assert (tmp_path / "run" / "manifest.json").read_bytes() == before
    assert again["seconds"] == json.loads(before)["seconds"]


def test_a_relative_glob_without_dot_slash_matches(tmp_path):
    write_jsonl(tmp_path / "in-1.jsonl", [{"id": "a", "text": "One document with enough words."}])
    write_jsonl(tmp_path / "in-2.jsonl", [{"id": "b", "text": "Another document, with other words."}])
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"inputs": [{"path": "in-*.jsonl"}], "output": "run"}))
    done = subprocess.run([sys.executable, "-m", "tamis", "curate", str(config), "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["read"] == 2


def test_error_rows_say_what_their_offsets_count_and_name_nulls_and_types(tmp_path):
    lines = [b'{"id": "a", "text": null}\n', b'{"id": "b", "text": 7}\n', b'{"id": "c"}\n', b'{"id": "d", "text": []}\n']
    plain = tmp_path / "x.jsonl"
    plain.write_bytes(b"".join(lines))
    packed = tmp_path / "x.jsonl.gz"
    packed.write_bytes(gzip.compress(b"".join(lines)))
    _, errors = read_all(str(plain))
    assert errors.column("error").to_pylist() == [
        "field 'text' is null", "field 'text' is an int, not a string", "field 'text' is missing",
        "field 'text' is a list, not a string"]
    assert set(errors.column("offset_kind").to_pylist()) == {"file"}
    _, errors = read_all(str(packed))
    assert set(errors.column("offset_kind").to_pylist()) == {"decompressed"}
    assert errors.column("offset").to_pylist() == [0, len(lines[0]), len(lines[0]) + len(lines[1]),
                                                   sum(map(len, lines[:3]))]


def test_a_nested_artifact_is_verified_by_its_own_manifest_not_its_parents(tmp_path, capsys):
    src = corpus(tmp_path, n_files=1)
    run = tmp_path / "run"
    curate.run(make_cfg(src, run))
    nested = run / "mix"
    curate.run(make_cfg(src, nested))  # any artifact with a manifest of its own
    assert run_cli(capsys, "verify", run)[0] == 0
    (nested / "manifest.json").unlink()  # without its manifest, its files are strays of the outer run
    code, out, _ = run_cli(capsys, "verify", run)
    assert code == IntegrityError.exit_code and "mix/" in out


# --- resume with dedup: finished inputs join by their kept signatures, not reread ------------------------------


def _dedup_corpus(tmp_path):
    """Three inputs whose dedup decisions cross files: exact copies, repeated lines and near copies of file 0's
    documents in files 1 and 2, and in file 1 a smaller id than file 0's for one repeated text."""
    src = tmp_path / "in"
    src.mkdir()
    base = [" ".join(f"word{(i * 37 + j * 11) % 997} topic{i} part{j}" for j in range(60)) for i in range(30)]
    shared_line = "A line of boilerplate that every page of this site repeats at its foot."
    files = [[{"id": f"f0-{i:03d}", "text": f"{t}\n{shared_line}"} for i, t in enumerate(base)]]
    for f in (1, 2):
        rows = [{"id": f"f{f}-copy{i}", "text": f"{base[i]}\n{shared_line}"} for i in range(f, 8, 2)]
        rows += [{"id": f"f{f}-near{i}", "text": base[i].replace("part7 ", f"changed{f} ")} for i in range(8, 14)]
        rows += [{"id": f"f{f}-own{i:03d}", "text": f"Own document {i} of file {f}, " + "with its own words. " * (i % 9 + 3)
                  + f"\n{shared_line}"} for i in range(30)]
        files.append(rows)
    files[1].append({"id": "a-smallest", "text": base[20] + f"\n{shared_line}"})  # keeps this copy, not f0-020's
    for f, rows in enumerate(files):
        write_jsonl(src / f"part{f}.jsonl", rows)
    return src, [len(rows) for rows in files]


def _dedup_cfg(src, run, **over):
    return make_cfg(src, run, exact_dedup={"enabled": True, "units": "line", "min_unit_chars": 20},
                    near_dedup={"enabled": True}, **over)


def _all_files(run) -> dict[str, str]:
    """sha256 of every file of a run but its manifest (which holds seconds): shards, drops, markers, signatures."""
    import hashlib

    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != "manifest.json"}


def _interrupt_after_first_input(run) -> None:
    """What a kill after input 0's marker leaves: inputs 1 and 2 unfinished, no manifest."""
    (run / "manifest.json").unlink()
    for marker in sorted((run / "_progress").glob("0000[12].json")):
        for entry in json.loads(marker.read_text())["files"]:
            (run / entry["path"]).unlink()
        marker.unlink()


def test_a_resume_with_exact_and_near_dedup_reads_only_unfinished_inputs(tmp_path):
    src, sizes = _dedup_corpus(tmp_path)
    run = tmp_path / "run"
    clean_manifest = curate.run(_dedup_cfg(src, run))
    counts = clean_manifest["counts"]["dropped_by_stage"]
    assert counts["exact_dedup"] >= 4 and counts["near_dedup"] >= 4  # decisions that cross files
    marker = json.loads((run / "_progress" / "00000.json").read_text())
    assert set(marker["signatures"]) == {"exact_docs", "exact_units", "near"}
    assert {e["path"] for e in clean_manifest["files"]} >= set(marker["signatures"].values())
    clean = _all_files(run)
    _interrupt_after_first_input(run)
    manifest = curate.run(_dedup_cfg(src, run))
    assert manifest["stages"]["read"]["docs"] == sizes[1] + sizes[2]  # input 0 joined by its signatures, not read
    assert _all_files(run) == clean and manifest["counts"] == clean_manifest["counts"]
    dropped = pq.read_table(run / "dropped").to_pylist()
    assert {d["dup_of"] for d in dropped if d["id"].startswith("f1-")} & {f"f0-{i:03d}" for i in range(30)}
    assert any(d["id"] == "f0-020" for d in dropped)  # dropped for a copy in file 1: its marker said so already


def test_a_marker_without_signatures_rereads_its_input(tmp_path):
    src, sizes = _dedup_corpus(tmp_path)
    run = tmp_path / "run"
    curate.run(_dedup_cfg(src, run))
    clean = digests(run)
    _interrupt_after_first_input(run)
    marker_path = run / "_progress" / "00000.json"
    marker = json.loads(marker_path.read_text())  # as an older tamis wrote it: no signatures
    for rel in marker.pop("signatures").values():
        (run / rel).unlink()
    marker["files"] = [e for e in marker["files"] if not e["path"].endswith(".arrow")]
    marker_path.write_text(json.dumps(marker, sort_keys=True))
    manifest = curate.run(_dedup_cfg(src, run))
    assert manifest["stages"]["read"]["docs"] == sum(sizes)
    assert digests(run) == clean


def test_a_damaged_signature_file_is_found_by_verify_and_redone_on_resume(tmp_path, capsys):
    src, sizes = _dedup_corpus(tmp_path)
    run = tmp_path / "run"
    curate.run(_dedup_cfg(src, run))
    clean = _all_files(run)
    kept = run / "_progress" / "00000.near.arrow"
    saved = kept.read_bytes()
    _flip(kept)
    code, out, _ = run_cli(capsys, "verify", run)
    assert code == IntegrityError.exit_code and kept.name in out
    kept.write_bytes(saved)
    _interrupt_after_first_input(run)
    _flip(kept, at=0.8)
    manifest = curate.run(_dedup_cfg(src, run))
    assert manifest["stages"]["read"]["docs"] == sum(sizes)  # input 0 redone: its signatures failed their checksum
    assert _all_files(run) == clean
