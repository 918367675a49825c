"""`tamis report RUN_DIR`: write the run's self-contained HTML report (RUN_DIR/report.html by default)."""

import argparse
import logging

HELP = "write a run's HTML report: funnel, drops, score histograms, duplicates, languages, shards, examples"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a finished run directory (it has a manifest.json)")
    p.add_argument("--output", help="HTML file to write (default: RUN/report.html)")
    p.add_argument("--no-verify", action="store_true", help="skip checking the run's files against its manifest")


def print_report(run: str, echo: bool = True) -> str | None:
    """Write the report of a run a command has just finished and print `report: PATH`.

    A report that fails is logged, not raised: the run itself is complete, and `tamis report RUN` retries.
    """
    from tamis.report.html import write_report

    try:
        path = write_report(run)
    except Exception as e:  # noqa: BLE001 - the run is done; a broken view must not fail the command
        log.warning("the run is complete, but its report could not be written (%s: %s); retry with `tamis report %s`",
                    type(e).__name__, e, run)
        return None
    if echo:
        print(f"report: {path}")
    return path


def run(args: argparse.Namespace) -> int:
    from tamis.report.html import write_report

    print(f"report: {write_report(args.run, args.output, verify=not args.no_verify)}")
    return 0
