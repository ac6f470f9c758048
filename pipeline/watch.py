"""`python -m pipeline watch`: run the pipeline whenever a new complete span lands in data.base.

Each run is a child `python -m pipeline run`, so a crash, an OOM kill or TF/Beam state left over by
one run can neither stop the watcher nor leak into the next run. The watcher itself never imports
TFX or TensorFlow: it lists span folders and reads ML Metadata with ml_metadata alone, so it stays
small while it waits.
"""
from __future__ import annotations

import datetime
import pathlib
import signal
import subprocess
import sys
import threading
import time

from components.contracts import EXIT_CODES
from pipeline import metadata_store
from pipeline.config import PipelineConfig
from pipeline.spans import complete_spans, span_folders

STATUS_OF_EXIT_CODE = {code: status for status, code in EXIT_CODES.items()}


def last_ingested_span(config: PipelineConfig) -> int | None:
    """Newest span ML Metadata says ExampleGen ingested, or None."""
    return max(metadata_store.ingested_spans(metadata_store.open_store(config), config.pipeline.name), default=None)


def run_child(config_file: pathlib.Path, span: int, echo) -> None:
    """One `python -m pipeline run` in a child process; its progress and summary go to our stdout."""
    echo(f"run started: span {span}, python -m pipeline run --config {config_file}")
    started = time.monotonic()
    code = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(config_file)]).returncode
    took = f"{time.monotonic() - started:.0f} s"
    if code == 0:
        echo(f"run finished: span {span}, status ok, exit code 0, {took}")
    elif code < 0:
        echo(f"run failed: span {span}, killed by {signal.Signals(-code).name}, {took}; still watching")
    else:
        echo(f"run failed: span {span}, status {STATUS_OF_EXIT_CODE.get(code, 'failed')}, exit code {code}, {took}; "
             f"still watching")


def watch(config: PipelineConfig, config_file: pathlib.Path, max_runs: int | None, echo) -> None:
    """Polls every schedule.poll_seconds; runs when the newest complete span is newer than the last one run on.

    A failed run is not retried (the next newer span is); an incomplete span waits until it is complete.
    SIGINT and SIGTERM stop the watcher between polls, after the current run.
    """
    def say(line: str):
        echo(f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S} {line}")

    stop = threading.Event()
    stopped_by = []

    def on_signal(number, frame):
        stopped_by.append(signal.Signals(number).name)
        stop.set()

    previous_handlers = {number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)}
    runs = 0
    try:
        last_run = last_ingested_span(config)
        say(f"watching {config.path(config.data.base)} every {config.schedule.poll_seconds:g} s; "
            f"newest span already ingested: {'none' if last_run is None else last_run}")
        reported_incomplete, reported_error = [], ""
        while not stop.is_set() and (max_runs is None or runs < max_runs):
            try:
                on_disk = span_folders(config)
                complete = complete_spans(config)
            except OSError as error:  # e.g. a file removed while it was being counted: look again next poll
                if str(error) != reported_error:
                    say(f"cannot read the spans: {error}; trying again every poll")
                reported_error = str(error)
                stop.wait(config.schedule.poll_seconds)
                continue
            reported_error = ""
            incomplete = [span for span in on_disk if span not in complete and (last_run is None or span > last_run)]
            if incomplete and incomplete != reported_incomplete:
                say(f"span {', '.join(map(str, incomplete))} not complete yet: waiting for its marker and rows")
            reported_incomplete = incomplete
            newest = complete[-1] if complete else None
            if newest is not None and (last_run is None or newest > last_run):
                say(f"new complete span {newest}")
                run_child(config_file, newest, say)
                last_run, runs = newest, runs + 1
            else:
                stop.wait(config.schedule.poll_seconds)
    finally:
        for number, handler in previous_handlers.items():
            signal.signal(number, handler)
    say(f"stopped after {runs} run(s)" + (f" on {stopped_by[0]}" if stopped_by else ""))
