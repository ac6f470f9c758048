"""Orchestrators: the pipeline compiled for a real Airflow (SQLite AIRFLOW_HOME made here), run by
`airflow dags test` node by node through TFX's launcher; deploy: errors; and the KFP v2 compile, which
TFX 1.16 refuses for this pipeline's lineage resolvers (README, "Orchestrators")."""
import json
import os
import subprocess
import sys

import pytest

from pipeline.config import load_config
from pipeline.deploy import REPORT_TASK, SUMMARY_TASK
from project_helpers import FIRST_SPAN_ROWS, REPO, served_versions, write_config, write_span

DAG_ID = "taxi_airflow_test"
DEPLOY = {"schedule": "0 3 * * *", "retries": 1, "retry_delay_seconds": 60, "airflow": {"dag_id": DAG_ID}}


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, taxi_rows):
    """A project with one span, its compiled DAG, and an `airflow` command on a fresh SQLite AIRFLOW_HOME."""
    header, rows = taxi_rows
    project = tmp_path_factory.mktemp("airflow_project")
    write_span(project, 1, header, rows[:FIRST_SPAN_ROWS])
    config = write_config(project, {"deploy": DEPLOY, "logging": {"report": True}})
    dags = project / "dags"
    completed = cli("compile", "--config", str(config), "--target", "airflow", "--output", str(dags / "taxi.py"))
    assert completed.returncode == 0, completed.stderr
    env = dict(os.environ, AIRFLOW_HOME=str(project / "airflow_home"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONWARNINGS="ignore")

    def airflow_command(*args, timeout=1200):
        return subprocess.run([os.path.join(os.path.dirname(sys.executable), "airflow"), *args], env=env,
                              capture_output=True, text=True, timeout=timeout)

    airflow_command.env = env

    migrated = airflow_command("db", "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    return project, config, dags, airflow_command


def task_states(airflow_command, run_id):
    completed = airflow_command("tasks", "states-for-dag-run", DAG_ID, run_id, "--output", "json")
    assert completed.returncode == 0, completed.stderr
    return {row["task_id"]: row["state"] for row in json.loads(completed.stdout.strip().splitlines()[-1])}


def dag_test(airflow_command, date):
    completed = airflow_command("dags", "test", DAG_ID, date)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return f"manual__{date}T00:00:00+00:00"


DAG_FACTS = """
import json, sys
from airflow.models import DagBag
bag = DagBag(sys.argv[1], include_examples=False)
dag = bag.get_dag(sys.argv[2])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "schedule": dag.timetable.summary, "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
                  "retries": dag.default_args["retries"], "retry_delay": dag.default_args["retry_delay"].total_seconds(),
                  "tasks": {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks},
                  "tensorflow_loaded": "tensorflow" in sys.modules}))
"""


def test_the_dag_has_a_task_per_node_in_tfx_order_and_the_deploy_settings(airflow):
    project, config, dags, airflow_command = airflow
    completed = subprocess.run([sys.executable, "-c", DAG_FACTS, str(dags), DAG_ID], env=airflow_command.env,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    facts = json.loads(completed.stdout.strip().splitlines()[-1])
    assert facts["errors"] == {} and not facts["tensorflow_loaded"]
    assert (facts["schedule"], facts["catchup"], facts["max_active_runs"]) == ("0 3 * * *", False, 1)
    assert (facts["retries"], facts["retry_delay"]) == (1, 60)
    tasks = facts["tasks"]
    assert tasks["StatisticsGen"] == ["CsvExampleGen"] and tasks["DataGate"] == ["ExampleValidator"]
    assert {"RetrainPolicy", "Transform"} <= set(tasks["Trainer"]) and "Evaluator" in tasks["ServingValidator"]
    assert set(tasks[SUMMARY_TASK]) == set(tasks[REPORT_TASK]) == {"CandidateVerdict"}   # after the last node


def test_airflow_runs_every_node_and_pushes_then_skips_an_unchanged_span(airflow):
    project, config, dags, airflow_command = airflow
    first = dag_test(airflow_command, "2026-12-01")
    states = task_states(airflow_command, first)
    assert set(states.values()) == {"success"}, states
    assert len(served_versions(project)) == 1
    assert (load_config(config).pipeline_root / "reports" / f"{first}.html").is_file()

    summary = cli("summary", "--config", str(config), "--run-id", first)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "data gate: passed" in summary.stdout and "retraining: full_retrain" in summary.stdout
    assert "model gate: passed" in summary.stdout and "pushed: " in summary.stdout

    second = dag_test(airflow_command, "2026-12-02")
    assert set(task_states(airflow_command, second).values()) == {"success"}
    summary = cli("summary", "--config", str(config), "--run-id", second)
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert "retraining: skip" in summary.stdout and "model gate" not in summary.stdout
    assert len(served_versions(project)) == 1


VERTEX_LOCATIONS = {"image": "example.com/taxi:1", "pipeline_root": "gs://bucket/root", "data_base": "gs://bucket/data",
                    "serving_base": "gs://bucket/serving", "schema_path": "gs://bucket/schema.pbtxt"}
TRAINING_JOB = {"worker_pools": [
    {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4", "accelerator_count": 1},
    {"machine_type": "n1-standard-8", "replicas": 2}]}


@pytest.mark.parametrize("deploy, message", [
    ({"schedule": "every day"}, "deploy.schedule: got 'every day'; not a cron expression"),
    ({"retries": -1}, "deploy.retries: got -1"),
    ({"target": "kubeflow"}, "deploy.target: unknown key"),
    ({"beam_args": ["--runner=DataflowRunner", "--db_password=hunter2"]},
     "deploy: beam_args[1]: --db_password is given a value in the file; secrets come from the workers' environment"),
    ({"training_job": TRAINING_JOB}, "deploy: training_job: set deploy.image"),
    ({**VERTEX_LOCATIONS, "training_job": TRAINING_JOB}, "training_job: set deploy.vertex.project"),
    ({**VERTEX_LOCATIONS, "pipeline_root": None, "vertex": {"project": "p"}, "training_job": TRAINING_JOB},
     "training_job: deploy.pipeline_root must be a URI the replicas can read and write"),
    ({**VERTEX_LOCATIONS, "vertex": {"project": "p"}, "training_job": {"worker_pools": [{"replicas": 2}]}},
     "the first pool is the chief: replicas must be 1"),
    ({**VERTEX_LOCATIONS, "vertex": {"project": "p"}, "training_job": {"worker_pools": [{"accelerator_count": 2}]}},
     "accelerator_type and accelerator_count go together"),
])
def test_deploy_errors_stop_with_exit_2_and_name_the_key(tmp_path, deploy, message):
    (tmp_path / "data").mkdir()
    config = write_config(tmp_path, {"deploy": deploy})
    completed = cli("compile", "--config", str(config), "--target", "airflow", "--output", str(tmp_path / "dag.py"))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert message in completed.stderr
    assert not (tmp_path / "dag.py").exists()


def test_an_unknown_target_is_refused():
    completed = cli("compile", "--target", "argo", "--output", "x.json")
    assert completed.returncode == 2 and "'argo' is not one of 'airflow', 'kubeflow', 'vertex'" in completed.stderr


def test_kubeflow_needs_worker_visible_locations_and_an_image(tmp_path):
    (tmp_path / "data").mkdir()
    config = write_config(tmp_path, {"deploy": {"image": "example.com/taxi:1", "pipeline_root": "gs://bucket/root"}})
    completed = cli("compile", "--config", str(config), "--target", "vertex", "--output", str(tmp_path / "job.json"))
    assert completed.returncode == 2
    assert "deploy.data_base: --target vertex needs a URI every worker can read" in completed.stderr


def test_kubeflow_v2_compile_says_which_resolvers_it_cannot_run(tmp_path):
    (tmp_path / "data").mkdir()
    config = write_config(tmp_path, {"deploy": {
        "image": "example.com/taxi:1", "pipeline_root": "gs://bucket/root", "data_base": "gs://bucket/data",
        "serving_base": "gs://bucket/serving", "schema_path": "gs://bucket/schema.pbtxt"}})
    completed = cli("compile", "--config", str(config), "--target", "kubeflow", "--output", str(tmp_path / "job.json"))
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert "KubeflowV2DagRunner cannot compile this pipeline: Invalid custom artifact type name" in completed.stderr
    assert "runs only the LatestArtifact and LatestBlessedModel resolver strategies" in completed.stderr
    assert not (tmp_path / "job.json").exists()


def test_training_job_runs_both_trainers_on_vertex_worker_pools(tmp_path):
    """With deploy.training_job, the compiled Trainer and FineTuneTrainer are TFX's Vertex Trainer: the same run_fn
    and settings, plus the CustomJob's worker pools in the image, the project, region and service account."""
    from tfx.orchestration.local import runner_utils
    from tfx.proto.orchestration import pipeline_pb2

    (tmp_path / "data").mkdir()
    config = write_config(tmp_path, {"deploy": {**VERTEX_LOCATIONS, "training_job": TRAINING_JOB, "vertex": {
        "project": "my-project", "region": "europe-west4", "service_account": "trainer@my-project.iam.gserviceaccount.com"}}})
    completed = cli("compile", "--config", str(config), "--target", "airflow", "--output", str(tmp_path / "dag.py"))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    ir = pipeline_pb2.Pipeline.FromString((tmp_path / "dag.pipeline.pb").read_bytes())
    deployment = runner_utils.extract_local_deployment_config(ir)
    nodes = {node.pipeline_node.node_info.id: node.pipeline_node for node in ir.nodes}
    for node_id, mode in (("Trainer", "full_retrain"), ("FineTuneTrainer", "fine_tune")):
        executor = runner_utils.extract_executor_spec(deployment, node_id)
        assert executor.class_path == "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
        custom_config = json.loads(nodes[node_id].parameters.parameters["custom_config"].field_value.string_value)
        assert custom_config["mode"] == mode and custom_config["training"]["batch_size"] > 0
        assert custom_config["ai_platform_enable_vertex"] is True
        assert custom_config["ai_platform_vertex_region"] == "europe-west4"
        assert custom_config["ai_platform_training_args"] == {"project": "my-project", "job_spec": {
            "service_account": "trainer@my-project.iam.gserviceaccount.com",
            "worker_pool_specs": [
                {"machine_spec": {"machine_type": "n1-standard-8", "accelerator_type": "NVIDIA_TESLA_T4",
                                  "accelerator_count": 1},
                 "replica_count": 1, "container_spec": {"image_uri": "example.com/taxi:1"}},
                {"machine_spec": {"machine_type": "n1-standard-8"}, "replica_count": 2,
                 "container_spec": {"image_uri": "example.com/taxi:1"}}]}}
    # The local pipeline of the same file trains in its own process.
    from pipeline import assembly, config as pipeline_config

    local = assembly.create_pipeline(pipeline_config.load_config(config), 1, None)
    assert {type(node).__module__ for node in local.components if node.id in ("Trainer", "FineTuneTrainer")} == {
        "tfx.components.trainer.component"}


def test_an_orchestrated_examplegen_refuses_rows_it_cannot_parse_by_file_and_line(tmp_path, taxi_rows):
    """Under Airflow, the ExampleGen task checks the newest span as `run` does, before ExampleGen reads it."""
    header, rows = taxi_rows
    csv_file = write_span(tmp_path, 1, header, rows[:50]) / "data.csv"
    lines = csv_file.read_bytes().split(b"\n")
    lines[12] += b",1,2"
    csv_file.write_bytes(b"\n".join(lines))
    config = write_config(tmp_path, {"deploy": DEPLOY})
    compiled = cli("compile", "--config", str(config), "--target", "airflow", "--output", str(tmp_path / "dag.py"))
    assert compiled.returncode == 0, compiled.stderr
    completed = cli("node", "--config", str(config), "--ir", str(tmp_path / "dag.pipeline.pb"), "--node", "CsvExampleGen",
                    "--run-id", "manual__2026-12-03")
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert f"- {csv_file}: wrong field count: line 13: 20 fields, the header has 18" in completed.stderr
    assert "nothing was ingested" in completed.stderr
