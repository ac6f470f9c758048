"""Orchestrators: the pipeline compiled for a real Airflow (SQLite AIRFLOW_HOME made here), run by
`airflow dags test` node by node through TFX's launcher; deploy: errors; and the KFP v2 compile, which
TFX 1.16 refuses for this pipeline's lineage resolvers (README, "Orchestrators")."""
import json
import os
import subprocess
import sys

import pytest

from pipeline.deploy import SUMMARY_TASK
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
    config = write_config(project, {"deploy": DEPLOY})
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
    assert set(tasks[SUMMARY_TASK]) == {"CandidateVerdict"}   # after the last node


def test_airflow_runs_every_node_and_pushes_then_skips_an_unchanged_span(airflow):
    project, config, dags, airflow_command = airflow
    first = dag_test(airflow_command, "2026-12-01")
    states = task_states(airflow_command, first)
    assert set(states.values()) == {"success"}, states
    assert len(served_versions(project)) == 1

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


@pytest.mark.parametrize("deploy, message", [
    ({"schedule": "every day"}, "deploy.schedule: got 'every day'; not a cron expression"),
    ({"retries": -1}, "deploy.retries: got -1"),
    ({"target": "kubeflow"}, "deploy.target: unknown key"),
    ({"beam_args": ["--runner=DataflowRunner", "--db_password=hunter2"]},
     "deploy: beam_args[1]: --db_password is given a value in the file; secrets come from the workers' environment"),
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
