"""Under an orchestrator: the pipeline of pipeline/assembly.py, unchanged, compiled for Airflow (one task per
node, each run by TFX's own launcher from the compiled IR) or for Kubeflow Pipelines / Vertex AI (TFX's
KubeflowV2DagRunner). `python -m pipeline compile` and `python -m pipeline node` are these functions.

The orchestrated pipeline differs from a local run in two ways only: ExampleGen takes the newest span
matching data.span_pattern when the run starts (a local run pins the newest *complete* span), and the
locations and Beam arguments are deploy:'s (PipelineConfig.for_orchestrator).
"""
from __future__ import annotations

import importlib
import pathlib
import shlex
import sys

import jinja2

from components.contracts import DATA_GATE_RESULT, DRIFT_REPORT, EXAMPLE_GEN, RETRAIN_DECISION, VERDICT
from pipeline import metadata_store, spans
from pipeline.config import URI, ConfigError, PipelineConfig

SUMMARY_TASK = "summary"
REPORT_TASK = "report"
CUSTOM_ARTIFACT_TYPES = (DATA_GATE_RESULT, DRIFT_REPORT, RETRAIN_DECISION, VERDICT)
TEMPLATES = jinja2.Environment(keep_trailing_newline=True)
TEMPLATES.filters["py"] = repr   # values written as Python literals
DAG_TEMPLATE = TEMPLATES.from_string('''\
"""Airflow DAG of TFX pipeline {{ name | py }}, written by `python -m pipeline compile --target airflow`
from {{ config_file }}. One task per pipeline node, in TFX's order, each run by TFX's launcher from the
compiled pipeline {{ ir_file }}; then the run's summary, which fails when a gate blocked the run{% if report_command %},
and its HTML report{% endif %}.
Compile again after editing pipeline.yaml. Imports Airflow alone: parsing it loads no TensorFlow."""
import datetime

from airflow import DAG
from airflow.operators.bash import BashOperator

NODES = {   # node id -> its upstream node ids
{%- for node, upstream in nodes.items() %}
    {{ node | py }}: {{ upstream | py }},
{%- endfor %}
}
NODE_COMMAND = {{ node_command | py }}
SUMMARY_COMMAND = {{ summary_command | py }}
REPORT_COMMAND = {{ report_command | py }}

with DAG(
    dag_id={{ dag_id | py }},
    schedule={{ schedule | py }},
    start_date=datetime.datetime({{ start.year }}, {{ start.month }}, {{ start.day }}, tzinfo=datetime.timezone.utc),
    catchup={{ catchup }},
    max_active_runs=1,   # runs share one ML Metadata store and each decides from the previous one's models
    default_args={"retries": {{ retries }}, "retry_delay": datetime.timedelta(seconds={{ retry_delay }})},
    tags=["tfx", {{ name | py }}],
) as dag:
    tasks = {}
    for node, upstream in NODES.items():
        tasks[node] = BashOperator(task_id=node, bash_command=NODE_COMMAND.format(node=node))
        for name in upstream:
            tasks[name] >> tasks[node]
    last = [task for node, task in tasks.items() if not any(node in upstream for upstream in NODES.values())]
    last >> BashOperator(task_id={{ summary_task | py }}, bash_command=SUMMARY_COMMAND)
    if REPORT_COMMAND:   # logging.report; whatever the nodes' outcome
        last >> BashOperator(task_id={{ report_task | py }}, bash_command=REPORT_COMMAND, trigger_rule="all_done")
''')


class DeployError(Exception):
    """The pipeline cannot be compiled for a target; the message says why and what to change."""


def orchestrated_pipeline(config: PipelineConfig):
    """The pipeline as an orchestrator runs it: no span pinned, and no ML Metadata store in it (Kubeflow and
    Vertex bring their own; an Airflow task opens the config's when it runs, so no password is compiled in)."""
    from pipeline import assembly

    return assembly.create_pipeline(config.for_orchestrator(), None, None)


def compile_airflow(config: PipelineConfig, config_file: pathlib.Path, output: pathlib.Path) -> list[str]:
    """Writes the DAG file and, beside it, the compiled pipeline (TFX IR) its tasks run. Returns the node ids."""
    from tfx.dsl.compiler import compiler

    ir = compiler.Compiler().compile(orchestrated_pipeline(config))
    output = output.resolve()
    ir_file = output.with_name(f"{output.stem}.pipeline.pb")
    output.parent.mkdir(parents=True, exist_ok=True)
    ir_file.write_bytes(ir.SerializeToString())
    nodes = {node.pipeline_node.node_info.id: list(node.pipeline_node.upstream_nodes) for node in ir.nodes}
    python, config_arg = shlex.quote(sys.executable), shlex.quote(str(config_file.resolve()))
    deploy = config.deploy
    output.write_text(DAG_TEMPLATE.render(
        name=config.pipeline.name, config_file=config_file.resolve(), ir_file=ir_file, nodes=nodes,
        node_command=f"{python} -m pipeline node --config {config_arg} --ir {shlex.quote(str(ir_file))} "
                     "--node {node} --run-id '{{{{ run_id }}}}'",
        summary_command=f"{python} -m pipeline summary --config {config_arg} --run-id '{{{{ run_id }}}}'",
        report_command=config.logging.report and f"{python} -m pipeline report --config {config_arg} --run-id '{{{{ run_id }}}}'",
        report_task=REPORT_TASK,
        dag_id=deploy.airflow.dag_id or config.pipeline.name, schedule=deploy.schedule, start=deploy.airflow.start_date,
        catchup=deploy.catchup, retries=deploy.retries, retry_delay=deploy.retry_delay_seconds,
        summary_task=SUMMARY_TASK))
    return list(nodes)


def check_newest_span(config: PipelineConfig) -> None:
    """What `run` checks before ExampleGen (spans.refused_files), on the span an orchestrated ExampleGen takes:
    the newest matching data.span_pattern. Spans at a URI are the workers' to read, and left to ExampleGen."""
    if URI.match(config.data.base):
        return
    folders = spans.span_folders(config)
    if folders:
        spans.check_span(config, max(folders))


def run_node(config: PipelineConfig, ir_file: pathlib.Path, node_id: str, run_id: str) -> None:
    """One node of a compiled pipeline, as LocalDagRunner runs each: TFX's launcher resolves its inputs from
    the config's ML Metadata store (a Cond that does not hold skips the node), runs the executor and records
    the execution."""
    from tfx.dsl.compiler import constants
    from tfx.orchestration import metadata
    from tfx.orchestration.local import runner_utils
    from tfx.orchestration.portable import launcher, runtime_parameter_utils
    from tfx.proto.orchestration import pipeline_pb2

    if node_id == EXAMPLE_GEN:
        check_newest_span(config.for_orchestrator())
    # The custom artifact classes, so a node's inputs resolve to them (as when the pipeline is built in-process).
    importlib.import_module("components.artifacts")
    ir = pipeline_pb2.Pipeline.FromString(ir_file.read_bytes())
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in ir.nodes}
    if node_id not in nodes:
        raise DeployError(f"{ir_file}: no node {node_id!r} (nodes: {', '.join(nodes)})")
    deployment = runner_utils.extract_local_deployment_config(ir)
    launcher.Launcher(
        pipeline_node=nodes[node_id],
        mlmd_connection=metadata.Metadata(metadata_store.connection_config(config)),
        pipeline_info=ir.pipeline_info,
        pipeline_runtime_spec=ir.runtime_spec,
        executor_spec=runner_utils.extract_executor_spec(deployment, node_id),
        custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment, node_id),
    ).launch()


def compile_kubeflow(config: PipelineConfig, target: str, output: pathlib.Path) -> None:
    """A KFP v2 PipelineJob (JSON) for Kubeflow Pipelines or Vertex AI, with deploy's image, root and Beam args."""
    deploy = config.deploy
    if not deploy.image:
        raise ConfigError(f"deploy.image: --target {target} runs every node in this image (see Dockerfile); not set")
    for key in ("pipeline_root", "data_base", "serving_base", "schema_path"):
        if not URI.match(getattr(deploy, key) or ""):
            raise ConfigError(f"deploy.{key}: --target {target} needs a URI every worker can read "
                              f"(e.g. gs://bucket/...), got {getattr(deploy, key)!r}")
    from tfx import v1 as tfx

    pipeline = orchestrated_pipeline(config)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image=deploy.image),
        output_filename=str(output))
    try:
        runner.run(pipeline)
    except (TypeError, ValueError) as error:   # what TFX's KFP v2 compiler raises for what it cannot express
        raise DeployError(
            f"TFX 1.16's KubeflowV2DagRunner cannot compile this pipeline: {error}. KFP v2 (Kubeflow Pipelines 2, "
            "Vertex AI) takes custom artifact types only when named <namespace>.<Type> (this pipeline's "
            f"{', '.join(CUSTOM_ARTIFACT_TYPES)} are not) and runs only the LatestArtifact and LatestBlessedModel "
            "resolver strategies: this pipeline's BlessedModel resolver follows ML Metadata lineage from the blessed "
            "model to its transform graph, data, statistics and later verdicts, and TrainingWindow takes the newest "
            "data.spans.k spans. README, \"Orchestrators\".") from None
