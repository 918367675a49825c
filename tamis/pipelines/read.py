"""ReadInputs: input files → keyed document batches, error batches and per-file read counts."""

import logging
import time

import apache_beam as beam
import pyarrow.compute as pc

from tamis.config import CurateConfig
from tamis.filters.normalize import normalize_batch
from tamis.io.readers import read_file
from tamis.io.run_dir import InputFile
from tamis.pipelines import pool, progress
from tamis.pipelines.progress import StageClock
from tamis.schema import dropped

log = logging.getLogger(__name__)

ERRORS, STATS, DROPPED = "errors", "stats", "dropped"
# Order of stages inside one batch's dropped output, so dropped/ files are written deterministically.
STAGE_RANK = {"normalize": 0, "exact_dedup": 1, "filter": 9}


class _Reading(beam.DoFn):
    """A step whose time counts as the `read` stage's."""

    def __init__(self, cfg: CurateConfig, progress_dir: str | None = None):
        self.cfg, self.progress_dir = cfg, progress_dir

    def setup(self):
        self.clock = StageClock("read", self.progress_dir)

    def finish_bundle(self):
        self.clock.flush()


class _ReadFile(_Reading):
    """Reads one file into batches of documents and of errors, and counts what it read."""

    def process(self, f: InputFile):
        cfg_in = self.cfg.inputs[f.input_index]
        records = docs = 0
        batch_idx = 0
        reader_stats: dict[str, int] = {}
        started = time.perf_counter()
        for kind, batch in read_file(f.path, cfg_in, self.cfg.runner.batch_size, stats=reader_stats):
            records += batch.num_rows
            if kind == "errors":
                out = [beam.pvalue.TaggedOutput(ERRORS, (f.index, (batch_idx, batch)))]
            else:
                docs += batch.num_rows
                out = [((f.index, batch_idx), batch)]
            self.clock.add(time.perf_counter() - started, batch.num_rows if kind == "docs" else 0)
            yield from out  # downstream stages may run inside this yield: not read's time
            started = time.perf_counter()
            batch_idx += 1
        self.clock.add(time.perf_counter() - started, 0, f.size)
        log.info("read %s: %d records, %d documents", f.path, records, docs)
        yield beam.pvalue.TaggedOutput(STATS, (f.index, {"read": records, **reader_stats}))


class _Normalize(_Reading):
    """A batch's text normalized; documents left empty go to `dropped`."""

    def process(self, element):
        (index, batch_idx), batch = element
        with self.clock.timed():
            batch = normalize_batch(batch, self.cfg.normalize)
            empty = pc.equal(pc.utf8_length(batch.column("text")), 0)
            if pc.any(empty).as_py():
                drop = batch.filter(empty)
                gone = dropped(drop, "normalize", ["empty_text"] * drop.num_rows)
                batch = batch.filter(pc.invert(empty))
                yield beam.pvalue.TaggedOutput(DROPPED, (index, ((batch_idx, STAGE_RANK["normalize"]), gone)))
        yield (index, batch_idx), batch


class ReadInputs(beam.PTransform):
    """A dict of `kept` ((file, batch), docs), `errors`, `dropped` (empty after normalization), `stats`."""

    def __init__(self, cfg: CurateConfig, files: list[InputFile]):
        super().__init__()
        self.cfg, self.files = cfg, files

    def expand(self, pbegin):
        folder = progress.folder_of(pbegin.pipeline)
        read = (
            pbegin
            | "Files" >> beam.Create(self.files)
            | "Spread" >> beam.Reshuffle()
            | "ReadFiles" >> beam.ParDo(_ReadFile(self.cfg, folder)).with_outputs(ERRORS, STATS, main="docs")
        )
        normalize = pool.pooled(pbegin.pipeline, _Normalize(self.cfg, folder))
        normalized = read.docs | "Normalize" >> beam.ParDo(normalize).with_outputs(DROPPED, main="kept")
        return {"kept": normalized.kept, "dropped": normalized[DROPPED], "errors": read[ERRORS], "stats": read[STATS]}
