"""tamis.pipelines.pool: pooled DoFns give what they give inline, in order, from other processes."""

import os

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.utils.windowed_value import WindowedValue

from tamis.pipelines import pool


class _Square(beam.DoFn):
    """Squares; odd inputs also go to `odd`; each output names the process that made it."""

    def setup(self):
        self.offset = 0  # set up where it runs, as a model would be

    def process(self, x):
        if x < 0:
            raise ValueError(f"negative input {x}")
        if x == 99:
            os._exit(1)  # a worker that dies (killed, out of memory)
        if x % 2:
            yield beam.pvalue.TaggedOutput("odd", x)
        yield x * x + self.offset, os.getpid()


def _outputs(workers: int, items: list[int]) -> list:
    """What a pooled step emits over one bundle, in emission order, windows taken off."""
    fn = pool.Pooled(_Square(), workers, "square")
    fn.setup()
    fn.start_bundle()
    try:
        out = [o for x in items for o in fn.process(x)] + list(fn.finish_bundle())
    finally:
        pool.shutdown()

    def bare(o):
        if isinstance(o, beam.pvalue.TaggedOutput):
            return ("odd", bare(o.value)[1])
        return ("main", o.value if isinstance(o, WindowedValue) else o)
    return [bare(o) for o in out]


def test_pooled_outputs_are_the_inline_outputs_in_order_made_by_the_workers():
    items = list(range(30))
    inline, pooled = _outputs(1, items), _outputs(2, items)
    strip = [(tag, v[0] if tag == "main" else v) for tag, v in inline]
    assert strip == [(tag, v[0] if tag == "main" else v) for tag, v in pooled]
    assert {v[1] for tag, v in inline if tag == "main"} == {os.getpid()}
    assert os.getpid() not in {v[1] for tag, v in pooled if tag == "main"}


def test_a_pipeline_with_a_pooled_step_gives_the_inline_result():
    items = list(range(40))
    for workers in (1, 2):
        opts = PipelineOptions.from_dictionary({"tamis_pool_workers": workers})
        with beam.Pipeline(runner=FnApiRunner(), options=opts) as p:
            out = (p | beam.Create(items)
                   | beam.ParDo(pool.pooled(p, _Square())).with_outputs("odd", main="squares"))
            assert_that(out.squares | beam.Map(lambda kv: kv[0]), equal_to([x * x for x in items]), label="Squares")
            assert_that(out.odd, equal_to([x for x in items if x % 2]), label="Odd")
        pool.shutdown()


def test_an_error_in_a_worker_fails_the_step_with_its_message():
    with pytest.raises(ValueError, match="negative input -3"):
        _outputs(2, [1, 2, -3, 4, 5, 6, 7, 8])


def test_a_worker_that_dies_fails_the_step_instead_of_hanging_it():
    from concurrent.futures.process import BrokenProcessPool

    with pytest.raises(BrokenProcessPool):
        _outputs(2, [1, 2, 99, 4, 5, 6, 7, 8])


def test_workers_die_with_a_killed_parent(tmp_path):
    """SIGKILL of the process that owns the pool (not of its group) leaves no worker behind."""
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "owner.py"
    script.write_text(
        "import sys\n"
        "from tamis.pipelines import pool\n"
        "from test_pool import _Square\n"
        "fn = pool.Pooled(_Square(), 2, 'square')\n"
        "fn.setup(); fn.start_bundle()\n"
        "outs = [o for x in range(6) for o in fn.process(x)]\n"
        "print(' '.join(str(p.pid) for p in pool._POOL[0]._processes.values()), flush=True)\n"
        "sys.stdin.read()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), *sys.path])}
    owner = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env=env, start_new_session=True)
    workers = [int(p) for p in owner.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.05)
    assert not any(_alive(p) for p in workers)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
