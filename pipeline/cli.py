"""Command line: `python -m pipeline run|watch|replay|predict|rollback [--config FILE] ...`; see README.md.

Exit codes: 0 success, 1 a component failed, 2 config error, 3 data gate blocked, 4 model gate blocked,
5 serving validation blocked.
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

from pipeline.config import ConfigError, PipelineConfig, load_config

EXIT_CODES = {"ok": 0, "failed": 1, "config_error": 2, "data_blocked": 3, "model_blocked": 4, "serving_blocked": 5}


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


def load_config_or_exit(config_path: str):
    try:
        return load_config(config_path)
    except ConfigError as error:
        click.echo(f"config error: {error}", err=True)
        sys.exit(EXIT_CODES["config_error"])


@click.group(help=__doc__)
def main():
    pass


def run_once(config: PipelineConfig) -> dict:
    """Runs the pipeline once: progress and summary on stdout, the rest in the run's log file.

    Returns the summary, with its exit code. `run` is this; each run of `watch` is a child `run`.
    """
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
    return result


@main.command(help="Run the pipeline once on the data the config points to.")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
@click.option("--summary-json", type=click.Path(dir_okay=False), help="Also write the run summary here as JSON.")
def run(config_path: str, summary_json: str | None):
    result = run_once(load_config_or_exit(config_path))
    if summary_json:
        pathlib.Path(summary_json).write_text(json.dumps(result, indent=1))
    sys.exit(result["exit_code"])


@main.command(help="Poll data.base and run the pipeline (as a child `run`) whenever a new complete span appears.")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
@click.option("--max-runs", type=click.IntRange(min=1), help="Stop after this many runs (default: never).")
def watch(config_path: str, max_runs: int | None):
    config = load_config_or_exit(config_path)
    from pipeline import watch as watching

    watching.watch(config, pathlib.Path(config_path).resolve(), max_runs, click.echo)


@main.command(help="Feed the spans one by one and compare retraining policies on the next span (prequential AUC).")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
@click.option("--output", default="outputs/replay", show_default=True, type=click.Path(file_okay=False),
              help="Each policy's data, store and models go in a folder here, with replay.json and replay.png.")
@click.option("--policies", default="never,always_full,drift_aware", show_default=True)
@click.option("--first-span", type=int, help="Start at this span (default: the first complete span).")
@click.option("--last-span", type=int, help="Stop at this span (default: the newest complete span).")
def replay(config_path, output, policies, first_span, last_span):
    config = load_config_or_exit(config_path)
    from pipeline import replay as replaying

    chosen = [policy.strip() for policy in policies.split(",") if policy.strip()]
    unknown = sorted(set(chosen) - set(replaying.POLICIES))
    if unknown:
        click.echo(f"--policies: unknown {', '.join(unknown)}; allowed: {', '.join(replaying.POLICIES)}", err=True)
        sys.exit(EXIT_CODES["config_error"])
    output_dir = pathlib.Path(output).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"Replay of {', '.join(chosen)}; logs: {output_dir / 'replay.log'}")
    with logs_to_file(output_dir / "replay.log"):
        rows = replaying.replay(config, pathlib.Path(config_path), output_dir, chosen, first_span, last_span, click.echo)
    click.echo(replaying.table(rows))
    replaying.plot(rows, output_dir / "replay.png")
    (output_dir / "totals.json").write_text(json.dumps(replaying.totals(rows), indent=1))
    click.echo(f"per-span results: {output_dir / 'replay.json'}; plot: {output_dir / 'replay.png'}")


@main.command(help="Score raw CSV rows with the pushed model's serving_default signature.")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
@click.option("--input", "input_csv", required=True, type=click.Path(exists=True, dir_okay=False),
              help="CSV with a header, columns as in the data (the label column may be absent).")
@click.option("--model-dir", type=click.Path(file_okay=False, exists=True),
              help="A SavedModel version folder (default: the version served under serving.base).")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the rows with their scores here (CSV).")
def predict(config_path, input_csv, model_dir, output):
    config = load_config_or_exit(config_path)
    from tabulate import tabulate

    from pipeline import predict as predicting

    try:
        scored = predicting.predict(config, pathlib.Path(input_csv), pathlib.Path(model_dir) if model_dir else None)
    except predicting.PredictError as error:
        click.echo(f"predict: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])
    click.echo(tabulate([{"row": i + 1, "probability": r["probability"], "class": r["class"]} for i, r in enumerate(scored)],
                        headers="keys", floatfmt=".6f"))
    if output:
        import csv

        with open(output, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(scored[0]))
            writer.writeheader()
            writer.writerows(scored)
        click.echo(f"scores written to {output}")


@main.command(help="Serve the previous pushed model again (as a new version) and record it in ML Metadata.")
@click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())
def rollback(config_path):
    config = load_config_or_exit(config_path)
    from pipeline import rollback as rolling_back

    try:
        result = rolling_back.rollback(config)
    except rolling_back.RollbackError as error:
        click.echo(f"rollback: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])
    click.echo(f"rolled back: version {result['from_version']} removed; {result['model']} "
               f"(was version {result['previous_version']}) is served as version {result['to_version']} "
               f"at {result['serving_path']}")
