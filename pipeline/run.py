"""The `run` use case: one run of the pipeline on the newest complete span, its summary and its report page.

Progress, the summary and the report's path go to `echo`; everything else to the run's log file. `python -m pipeline
run` is this, and so is every run of `watch` (as a child process) and of `replay`.
"""
from __future__ import annotations

import datetime
import traceback

from components.contracts import EXIT_CODES
from pipeline import logs, metadata_store, spans, unchanged
from pipeline.config import PipelineConfig


def run_once(config: PipelineConfig, echo=print) -> dict:
    """Runs the pipeline once; returns the summary, with its exit code."""
    run_id = datetime.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
    log_file = config.path(config.logging.directory) / f"run-{run_id}.log"
    try:
        with metadata_store.run_lock(config):
            settled = unchanged.settled_run(config) if config.pipeline.skip_unchanged else None
            if settled:
                return _unchanged(config, settled, echo)
            echo(f"Pipeline '{config.pipeline.name}' run {run_id}; logs: {log_file}")
            with logs.to_file(log_file):
                result = _run(config, run_id, str(log_file), echo)
    except metadata_store.StoreBusy as busy:   # nothing ran: no summary to read back
        echo(f"not run: {busy}")
        return {"run_id": run_id, "status": "busy", "reason": str(busy), "exit_code": EXIT_CODES["busy"]}
    from pipeline import summary   # imported by the run already

    echo(summary.render(result))
    result["report"] = None
    if config.logging.report:
        with logs.to_file(log_file):   # the report's own reads of ML Metadata log to the run's file, not the terminal
            result["report"] = write_report(config, result, echo)
    return result


def _run(config: PipelineConfig, run_id: str, log_file: str, echo) -> dict:
    """The TFX run and its summary, under the store's lock; a settled outcome is recorded (pipeline/unchanged.py)."""
    # Heavy imports only once the config is known to be good: a config error answers in a second.
    from pipeline import runner, summary
    logs.timestamped_info()
    timings, error, refused_files = [], "", []
    try:
        timings = runner.run_pipeline(config, run_id, echo)
    except spans.RefusedSpan as refused:   # refused before ExampleGen: nothing ingested
        refused_files = refused.problems
    except Exception as failure:  # a component failed: say which and why, keep the traceback in the log
        error = f"{type(failure).__name__}: {failure}"
        traceback.print_exc()
    result = summary.collect(config, run_id, timings, log_file, error, refused_files)
    result["exit_code"] = EXIT_CODES[result["status"]]
    unchanged.record(config, result)
    return result


def _unchanged(config: PipelineConfig, settled: dict, echo) -> dict:
    push = settled["push"]
    echo(f"Pipeline '{config.pipeline.name}': config, code, data and ML Metadata are as run {settled['run_id']} left "
         f"them; not run again (pipeline.skip_unchanged)")
    echo(f"  run {settled['run_id']}: {settled['status']}; "
         + (f"pushed version {push['version']}" if push["pushed"] else f"not pushed: {push['reason']}"))
    return {"run_id": None, "status": settled["status"], "unchanged_since": settled["run_id"], "push": push,
            "exit_code": EXIT_CODES[settled["status"]]}


def write_report(config: PipelineConfig, result: dict, echo) -> str | None:
    """The run's HTML page; a page that cannot be drawn is said, and leaves the run's outcome as it is."""
    from pipeline import report

    try:
        path = str(report.write_report(config, result["run_id"], result))
    except Exception as failure:
        echo(f"  report not written: {type(failure).__name__}: {failure}")
        return None
    echo(f"  report: {path}")
    return path
