"""The `run` use case: one run of the pipeline on the newest complete span, its summary and its report page.

Progress, the summary and the report's path go to `echo`; everything else to the run's log file. `python -m pipeline
run` is this, and so is every run of `watch` (as a child process) and of `replay`.
"""
from __future__ import annotations

import datetime
import traceback

from components.contracts import EXIT_CODES
from pipeline import logs, metadata_store, spans
from pipeline.config import PipelineConfig


def run_once(config: PipelineConfig, echo=print) -> dict:
    """Runs the pipeline once; returns the summary, with its exit code."""
    run_id = datetime.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
    log_file = config.path(config.logging.directory) / f"run-{run_id}.log"
    echo(f"Pipeline '{config.pipeline.name}' run {run_id}; logs: {log_file}")
    timings, error, refused_files = [], "", []
    with logs.to_file(log_file):
        # Heavy imports only once the config is known to be good: a config error answers in a second.
        from pipeline import runner, summary
        logs.timestamped_info()
        try:
            with metadata_store.run_lock(config):
                timings = runner.run_pipeline(config, run_id, echo)
        except metadata_store.StoreBusy as busy:   # nothing ran: no summary to read back
            echo(f"not run: {busy}")
            return {"run_id": run_id, "status": "busy", "reason": str(busy), "exit_code": EXIT_CODES["busy"]}
        except spans.RefusedSpan as refused:   # refused before ExampleGen: nothing ingested
            refused_files = refused.problems
        except Exception as failure:  # a component failed: say which and why, keep the traceback in the log
            error = f"{type(failure).__name__}: {failure}"
            traceback.print_exc()
        result = summary.collect(config, run_id, timings, str(log_file), error, refused_files)
        result["exit_code"] = EXIT_CODES[result["status"]]
        echo(summary.render(result))
        # In the log's scope too: the report's own reads of ML Metadata log to the run's file, not the terminal.
        result["report"] = write_report(config, result, echo) if config.logging.report else None
    return result


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
