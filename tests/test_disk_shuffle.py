"""The file-backed GroupByKey/CoGroupByKey of local runs group exactly like Beam's own."""

import os
import subprocess
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from tamis.pipelines import disk_shuffle


def _grouped(kv):
    key, values = kv
    return key, sorted(values)


def _cogrouped(kv):
    key, joined = kv
    return key, sorted(joined["a"]), sorted(joined["b"])


def test_file_shuffle_groups_like_beam(tmp_path, monkeypatch):
    monkeypatch.setattr(disk_shuffle, "BUFFER_BYTES", 200)  # many small part files per worker
    pairs = [((i % 7, f"k{i % 5}"), i) for i in range(300)]
    left = [(f"id{i % 40}", i) for i in range(120)]
    right = [(f"id{i}", -i) for i in range(30, 60)]
    want = {}
    for k, v in pairs:
        want.setdefault(k, []).append(v)
    want_join = {k: ([v for kk, v in left if kk == k], [v for kk, v in right if kk == k]) for k, _ in left + right}
    opts = PipelineOptions(tamis_spill_dir=str(tmp_path / "spill"))
    with beam.Pipeline(options=opts) as p:
        grouped = p | "Pairs" >> beam.Create(pairs) | disk_shuffle.GroupByKey(parts=3) | beam.Map(_grouped)
        assert_that(grouped, equal_to([(k, sorted(v)) for k, v in want.items()]), label="group")
        joined = {"a": p | "A" >> beam.Create(left), "b": p | "B" >> beam.Create(right)} | disk_shuffle.CoGroupByKey(4)
        expected = [(k, sorted(a), sorted(b)) for k, (a, b) in want_join.items()]
        assert_that(joined | beam.Map(_cogrouped), equal_to(expected), label="join")
    assert len(list((tmp_path / "spill").glob("shuffle-*.pkl"))) > 3


def test_part_of_a_key_does_not_depend_on_the_process():
    code = "from tamis.pipelines.disk_shuffle import part_of; print(part_of(('doc-1', 7), 64), part_of('x', 64))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(seen) == 1 and seen.pop().split() == [str(disk_shuffle.part_of(("doc-1", 7), 64)), str(disk_shuffle.part_of("x", 64))]


def test_tuples_of_inputs_group_as_one_with_and_without_a_spill_folder(tmp_path):
    """A resume shuffles its kept signatures beside the new ones: each input writes its own parts."""
    first, second = [(i % 4, i) for i in range(20)], [(i % 6, -i) for i in range(12)]
    want = {}
    for k, v in first + second:
        want.setdefault(k, []).append(v)
    right = [(k, "r") for k in range(3)]
    for spill in (str(tmp_path / "spill"), None):
        opts = PipelineOptions(tamis_spill_dir=spill) if spill else PipelineOptions()
        with beam.Pipeline(options=opts) as p:
            ins = (p | "First" >> beam.Create(first), p | "Second" >> beam.Create(second))
            grouped = ins | disk_shuffle.GroupByKey(parts=3) | beam.Map(_grouped)
            assert_that(grouped, equal_to([(k, sorted(v)) for k, v in want.items()]), label="group")
            joined = {"a": ins, "b": p | "B" >> beam.Create(right)} | disk_shuffle.CoGroupByKey(2)
            expected = [(k, sorted(v), ["r"] if k < 3 else []) for k, v in want.items()]
            assert_that(joined | beam.Map(_cogrouped), equal_to(expected), label="join")
