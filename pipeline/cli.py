"""Command line: `python -m pipeline run [--config FILE] [--summary-json FILE]`.

Exit codes: 0 success, 1 a component failed, 2 config error, 3 data gate blocked, 4 model gate blocked.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import pathlib
import sys
import traceback

import click

from pipeline.config import ConfigError, load_config

EXIT_CODES = {"ok": 0, "failed": 1, "config_error": 2, "data_blocked": 3, "model_blocked": 4}


@contextlib.contextmanager
def logs_to_file(path: pathlib.Path):
    """Everything TFX, Beam and TensorFlow print (Python and C++, Beam workers too) goes to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    with path.open("ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)


@click.group(help=__doc__)
def main():
    pass


@main.command(help="Run the pipeline once on the data the config points to.")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
@click.option("--summary-json", type=click.Path(dir_okay=False), help="Also write the run summary here as JSON.")
def run(config_path: str, summary_json: str | None):
    try:
        config = load_config(config_path)
    except ConfigError as error:
        click.echo(f"config error: {error}", err=True)
        sys.exit(EXIT_CODES["config_error"])

    run_id = datetime.datetime.now().strftime("%Y%m%dT%H%M%S.%f")
    log_file = config.path(config.logging.directory) / f"run-{run_id}.log"
    click.echo(f"Pipeline '{config.pipeline.name}' run {run_id}; logs: {log_file}")
    timings, error = [], ""
    with logs_to_file(log_file):
        # Heavy imports only once the config is known to be good: a config error answers in a second.
        from pipeline import runner, summary as run_summary
        try:
            timings = runner.run_pipeline(config, run_id, click.echo)
        except Exception as failure:  # a component failed: say which and why, keep the traceback in the log
            error = f"{type(failure).__name__}: {failure}"
            traceback.print_exc()
        result = run_summary.collect(config, run_id, timings, str(log_file), error)
    result["exit_code"] = EXIT_CODES[result["status"]]
    click.echo(run_summary.render(result))
    if summary_json:
        pathlib.Path(summary_json).write_text(json.dumps(result, indent=1))
    sys.exit(result["exit_code"])
