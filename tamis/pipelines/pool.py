"""Local parallelism for per-batch work: the one in-process Beam worker hands elements to forked processes.

Beam's local multi-processing mode starts SDK worker processes that import
Beam and tamis again and moves every element between stages through the
runner process over gRPC; on two cores that fixed cost outweighed the second
core at 10 MB of input (docs/scale.md). Here a local run keeps Beam in
process and a `Pooled` DoFn sends each element to one of `workers` forked
processes: fork copies the loaded interpreter, so a worker starts in
milliseconds with every module imported, and sets up its own copy of the
DoFn once (models load once per worker, as in a Beam worker). At most
2 × workers elements are in flight, and results are emitted in input order
(the rest of the fused stage runs in the parent meanwhile).

A pooled DoFn must be a function of its element: its finish_bundle may only
flush (it runs after every element in the worker), and Beam counters it
increments in a worker are lost (progress clocks are not: each worker process
writes its own progress file, see tamis.pipelines.progress).
"""

import atexit
import collections
import ctypes
import multiprocessing
import os
import signal
import uuid
from concurrent.futures import ProcessPoolExecutor

import apache_beam as beam
from apache_beam.internal import pickler
from apache_beam.options.pipeline_options import PipelineOptions

from tamis.pipelines import progress
from tamis.pipelines.disk_shuffle import windowed


class PoolOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--tamis_pool_workers", type=int, default=1,
                            help="processes that run the per-batch work of a local run")


def pooled(pipeline: beam.Pipeline, fn: beam.DoFn) -> "Pooled":
    """`fn` pooled with the pipeline's `--tamis_pool_workers` (1: it runs inline, as it would unwrapped)."""
    return Pooled(fn, pipeline.options.view_as(PoolOptions).tamis_pool_workers, uuid.uuid4().hex)


_POOL: list = [None, 0]  # this process's pool and its size (an executor: a worker that dies fails the step, not hangs it)
_SET_UP: dict[str, beam.DoFn] = {}  # in a worker process: DoFn key → its set-up copy


def _pool(workers: int):
    if _POOL[0] is None or _POOL[1] != workers:
        shutdown()
        context = multiprocessing.get_context("fork")
        pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(os.getpid(),))
        _POOL[:] = [pool, workers]
    return _POOL[0]


def shutdown() -> None:
    """Stop this process's workers (a run calls it when it ends; they hold set-up models)."""
    pool = _POOL[0]
    _POOL[:] = [None, 0]
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown)


def _start_worker(parent: int) -> None:
    progress.forget_totals()  # what the parent timed before the fork is the parent's to report
    _SET_UP.clear()
    _die_with(parent)


def _die_with(parent: int) -> None:
    """Be killed when the parent dies (Linux), even by SIGKILL: the workers hold each other's copy of the task
    pipe, so they would otherwise wait on it forever."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before the request took effect
        os._exit(1)


def _run(key: str, blob: bytes, element) -> list:
    fn = _SET_UP.get(key)
    if fn is None:
        fn = _SET_UP[key] = pickler.loads(blob)
        fn.setup()
    fn.start_bundle()
    out = list(fn.process(element) or ())
    fn.finish_bundle()
    return out


class Pooled(beam.DoFn):
    """`fn`, with its elements processed by this process's pool when `workers` > 1, inline otherwise."""

    def __init__(self, fn: beam.DoFn, workers: int, key: str):
        self.fn, self.workers, self.key = fn, workers, key  # key: names this step's set-up copy in a worker

    def setup(self):
        if self.workers > 1:
            self.blob = pickler.dumps(self.fn)
        else:
            self.fn.setup()

    def start_bundle(self):
        self.waiting: collections.deque = collections.deque()
        if self.workers == 1:
            self.fn.start_bundle()

    def process(self, element):
        if self.workers == 1:
            yield from self.fn.process(element) or ()
            return
        self.waiting.append(_pool(self.workers).submit(_run, self.key, self.blob, element))
        while len(self.waiting) > 2 * self.workers:
            yield from self.waiting.popleft().result()

    def finish_bundle(self):
        if self.workers == 1:
            yield from self.fn.finish_bundle() or ()
            return
        while self.waiting:
            for out in self.waiting.popleft().result():
                if isinstance(out, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(out.tag, windowed(out.value))
                else:
                    yield windowed(out)

    def teardown(self):
        if self.workers == 1:
            self.fn.teardown()
