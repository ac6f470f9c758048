"""Command line: `python -m pipeline run|watch|replay|predict|rollback|report|status [--config FILE] ...`; see README.md.

A thin adapter: each command loads the config, calls its use case (pipeline.run, pipeline.watch,
pipeline.replay, pipeline.predict, pipeline.rollback, pipeline.report, pipeline.status: plain functions, callable
from Python), prints
and exits. Heavy modules are imported inside the commands, so `--help` and a config error answer
without TensorFlow.

Exit codes: 0 success, 1 a component failed, 2 config error, 3 data gate blocked, 4 model gate blocked,
5 serving validation blocked, 6 another run holds the ML Metadata store (nothing ran).
"""
from __future__ import annotations

import json
import pathlib
import sys

import click

from components.contracts import EXIT_CODES
from pipeline.config import ConfigError, load_config

config_option = click.option("--config", "config_path", default="pipeline.yaml", show_default=True, type=click.Path())


def load_config_or_exit(config_path: str):
    try:
        return load_config(config_path)
    except ConfigError as error:
        click.echo(f"config error: {error}", err=True)
        sys.exit(EXIT_CODES["config_error"])


@click.group(help=__doc__)
def main():
    pass


@main.command(help="Run the pipeline once on the data the config points to.")
@config_option
@click.option("--summary-json", type=click.Path(dir_okay=False), help="Also write the run summary here as JSON.")
def run(config_path: str, summary_json: str | None):
    config = load_config_or_exit(config_path)
    from pipeline.run import run_once

    result = run_once(config, click.echo)
    if summary_json:
        pathlib.Path(summary_json).write_text(json.dumps(result, indent=1))
    sys.exit(result["exit_code"])


@main.command(help="Poll data.base and run the pipeline (as a child `run`) whenever a new complete span appears.")
@config_option
@click.option("--max-runs", type=click.IntRange(min=1), help="Stop after this many runs (default: never).")
def watch(config_path: str, max_runs: int | None):
    config = load_config_or_exit(config_path)
    from pipeline.watch import watch as watch_spans

    watch_spans(config, pathlib.Path(config_path).resolve(), max_runs, click.echo)


@main.command(help="Feed the spans one by one and compare retraining policies on the next span (prequential AUC).")
@config_option
@click.option("--output", default="outputs/replay", show_default=True, type=click.Path(file_okay=False),
              help="Each policy's data, store and models go in a folder here, with replay.json and replay.png.")
@click.option("--policies", default="never,always_full,drift_aware", show_default=True)
@click.option("--first-span", type=int, help="Start at this span (default: the first complete span).")
@click.option("--last-span", type=int, help="Stop at this span (default: the newest complete span).")
def replay(config_path, output, policies, first_span, last_span):
    config = load_config_or_exit(config_path)
    from pipeline.replay import run_replay

    chosen = [policy.strip() for policy in policies.split(",") if policy.strip()]
    try:
        run_replay(config, pathlib.Path(config_path), pathlib.Path(output).resolve(), chosen, first_span, last_span,
                   click.echo)
    except ValueError as error:
        click.echo(f"replay: {error}", err=True)
        sys.exit(EXIT_CODES["config_error"])


@main.command(help="Score raw CSV rows with the pushed model's serving_default signature.")
@config_option
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
        predicting.write_scores(scored, pathlib.Path(output))
        click.echo(f"scores written to {output}")


@main.command(help="Serve the previous pushed model again (as a new version) and record it in ML Metadata.")
@config_option
def rollback(config_path):
    config = load_config_or_exit(config_path)
    from pipeline import rollback as rolling_back
    from pipeline.metadata_store import StoreBusy

    try:
        result = rolling_back.rollback(config)
    except rolling_back.RollbackError as error:
        click.echo(f"rollback: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])
    except StoreBusy as busy:
        click.echo(f"rollback: {busy}", err=True)
        sys.exit(EXIT_CODES["busy"])
    click.echo(f"rolled back: version {result['from_version']} removed; {result['model']} "
               f"(was version {result['previous_version']}) is served as version {result['to_version']} "
               f"at {result['serving_path']}")


@main.command(name="compile", help="Compile the pipeline for an orchestrator (deploy: in the config; README "
                                   "\"Orchestrators\"): an Airflow DAG file, or a KFP v2 PipelineJob JSON.")
@config_option
@click.option("--target", required=True, type=click.Choice(["airflow", "kubeflow", "vertex"]))
@click.option("--output", required=True, type=click.Path(dir_okay=False),
              help="airflow: the DAG file (the compiled pipeline goes beside it); kubeflow, vertex: the JSON.")
def compile_pipeline(config_path, target, output):
    config = load_config_or_exit(config_path)
    from pipeline import deploy

    try:
        if target == "airflow":
            nodes = deploy.compile_airflow(config, pathlib.Path(config_path), pathlib.Path(output))
            click.echo(f"Airflow DAG {config.deploy.airflow.dag_id or config.pipeline.name} written to {output}: "
                       f"{len(nodes)} node tasks ({', '.join(nodes)}) and {deploy.SUMMARY_TASK}")
        else:
            deploy.compile_kubeflow(config, target, pathlib.Path(output))
            click.echo(f"KFP v2 PipelineJob written to {output}")
    except ConfigError as error:
        click.echo(f"config error: {config_path}: {error}", err=True)
        sys.exit(EXIT_CODES["config_error"])
    except deploy.DeployError as error:
        click.echo(f"compile: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])


@main.command(help="Run one node of a compiled pipeline (what each task of a compiled Airflow DAG runs), on the "
                   "config's ML Metadata store.")
@config_option
@click.option("--ir", "ir_file", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--node", "node_id", required=True)
@click.option("--run-id", required=True, help="The orchestrator's run id: every node of one run shares it.")
def node(config_path, ir_file, node_id, run_id):
    config = load_config_or_exit(config_path)
    from pipeline import deploy, spans

    try:
        deploy.run_node(config, pathlib.Path(ir_file), node_id, run_id)
    except deploy.DeployError as error:
        click.echo(f"node: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])
    except spans.RefusedSpan as refused:   # before ExampleGen: nothing ingested
        click.echo(f"node: {refused}; nothing was ingested", err=True)
        for problem in refused.problems:
            click.echo(f"  - {problem['feature']}: {problem['problem']}: {problem['details']}", err=True)
        sys.exit(EXIT_CODES["data_blocked"])


@main.command(help="Print the summary of a run from ML Metadata; the exit code says whether a gate blocked it.")
@config_option
@click.option("--run-id", required=True)
def summary(config_path, run_id):
    config = load_config_or_exit(config_path)
    from pipeline import summary as summaries

    result = summaries.collect(config, run_id, timings=[], log_file="")
    click.echo(summaries.render(result))
    sys.exit(EXIT_CODES[result["status"]])


@main.command(help="Write a run's report, one self-contained HTML page (statistics, anomalies, drift, decision, "
                   "training curves, evaluation and gates, fairness gaps, model history, serving), and print its path.")
@config_option
@click.option("--run", "--run-id", "run_id", help="The run (default: the newest run of the pipeline).")
def report(config_path, run_id):
    config = load_config_or_exit(config_path)
    from pipeline import report as reporting

    try:
        path = reporting.write_report(config, run_id)
    except LookupError as error:
        click.echo(f"report: {error}", err=True)
        sys.exit(EXIT_CODES["failed"])
    click.echo(f"report: {path}")


@main.command(help="Print from ML Metadata the recent runs (decision, outcome), the blessed and pushed versions and "
                   "the served model's lineage.")
@config_option
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="How many recent runs.")
def status(config_path, limit):
    config = load_config_or_exit(config_path)
    from pipeline import status as statuses

    click.echo(statuses.status(config, limit))
