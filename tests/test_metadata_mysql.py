"""ML Metadata on a real MySQL-compatible server: Debian's MariaDB, installed if missing and started on
loopback by this module with a throwaway data folder. A full run records its lineage there; the next runs,
`watch` and `rollback` read it back; a run that finds another one on the store stops with exit code 6."""
import os
import random
import socket
import subprocess
import sys
import time

import pytest

from components.contracts import EXIT_CODES
from pipeline import metadata_store, watch
from pipeline.config import load_config
from project_helpers import FIRST_SPAN_ROWS, REPO, apt_install, run_cli, served_versions, write_config, write_span

PASSWORD_ENV = "MLMD_TEST_PASSWORD"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    """A MariaDB server on a free loopback port, a database and a user for ML Metadata: the mysql: section."""
    apt_install("mariadb-server", "mariadbd")
    folder = tmp_path_factory.mktemp("mariadb")
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={folder / 'data'}", *as_root,
                    "--auth-root-authentication-method=normal"], check=True, capture_output=True)
    port, sock = free_port(), str(folder / "mysqld.sock")
    server = subprocess.Popen(["mariadbd", "--no-defaults", f"--datadir={folder / 'data'}", *as_root,
                               "--bind-address=127.0.0.1", f"--port={port}", f"--socket={sock}",
                               f"--pid-file={folder / 'mysqld.pid'}"],
                              stdout=subprocess.DEVNULL, stderr=open(folder / "server.log", "w"))
    client = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot"]
    deadline = time.monotonic() + 60
    while subprocess.run([*client, "-e", "SELECT 1"], capture_output=True).returncode != 0:
        assert server.poll() is None and time.monotonic() < deadline, (folder / "server.log").read_text()
        time.sleep(0.5)
    subprocess.run([*client, "-e", "CREATE DATABASE mlmd; CREATE USER 'tfx'@'127.0.0.1' IDENTIFIED BY 's3cret'; "
                    "GRANT ALL ON mlmd.* TO 'tfx'@'127.0.0.1';"], check=True, capture_output=True)
    os.environ[PASSWORD_ENV] = "s3cret"   # the runs below are children of this process
    yield {"host": "127.0.0.1", "port": port, "database": "mlmd", "user": "tfx", "password_env": PASSWORD_ENV}
    server.terminate()
    server.wait(timeout=60)


@pytest.fixture(scope="module")
def mysql_project(tmp_path_factory, taxi_rows, mariadb):
    header, rows = taxi_rows
    project = tmp_path_factory.mktemp("mysql_project")
    write_span(project, 1, header, rows[:FIRST_SPAN_ROWS])
    config = write_config(project, {"metadata": {"backend": "mysql", "mysql": mariadb}})
    return project, config


def test_a_run_records_its_lineage_in_mysql_and_runs_watch_and_rollback_read_it_back(mysql_project, taxi_rows):
    project, config_file = mysql_project
    completed, summary = run_cli(config_file)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert summary["push"]["pushed"] and summary["retraining"]["mode"] == "full_retrain"
    assert not (project / "outputs" / "metadata.sqlite").exists()
    config = load_config(config_file)
    assert watch.last_ingested_span(config) == 1
    log = summary["log_file"]
    assert "mysql" in open(log).read() and "s3cret" not in open(log).read()

    header, rows = taxi_rows   # span 2: a sample of span 1's rows, so no drift against the blessed model's data
    write_span(project, 2, header, random.Random(2).sample(rows[:FIRST_SPAN_ROWS], 400))
    completed, summary = run_cli(config_file)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert summary["drift"]["measurements"] and summary["retraining"]["mode"] == "fine_tune", summary["retraining"]
    assert summary["push"]["pushed"] and watch.last_ingested_span(config) == 2

    second = served_versions(project)[-1]
    rolled = subprocess.run([sys.executable, "-m", "pipeline", "rollback", "--config", str(config_file)],
                            cwd=REPO, capture_output=True, text=True)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert second not in served_versions(project)
    [execution] = metadata_store.open_store(config).get_executions_by_type("Rollback")
    assert execution.custom_properties["from_version"].string_value == second


def executions(config) -> int:
    return len(metadata_store.open_store(config).get_executions())


@pytest.mark.parametrize("backend", ["mysql", "sqlite"])
def test_a_run_that_finds_another_on_the_store_stops_and_writes_nothing(mysql_project, mariadb, backend, tmp_path,
                                                                        taxi_rows):
    header, rows = taxi_rows
    write_span(tmp_path, 1, header, rows[:50])
    config_file = write_config(tmp_path, {"metadata": {"backend": backend, "mysql": mariadb}})
    config = load_config(config_file)
    before = executions(config)
    with metadata_store.run_lock(config):
        completed, summary = run_cli(config_file)
        assert completed.returncode == EXIT_CODES["busy"], completed.stdout + completed.stderr
        assert summary["status"] == "busy"
        assert "not run: another run of pipeline 'taxi' holds the ML Metadata store" in completed.stdout
        assert "waited 0 s (metadata.lock_wait_seconds)" in completed.stdout
        rolled = subprocess.run([sys.executable, "-m", "pipeline", "rollback", "--config", str(config_file)],
                                cwd=REPO, capture_output=True, text=True)
        assert rolled.returncode == EXIT_CODES["busy"] and "holds the ML Metadata store" in rolled.stderr
    assert executions(config) == before


HOLD_THEN_RELEASE = """
import pathlib, sys, time
from pipeline import metadata_store
from pipeline.config import load_config
config = load_config(sys.argv[1])
with metadata_store.run_lock(config):
    pathlib.Path(sys.argv[2]).write_text("held")
    time.sleep(3)
    pathlib.Path(sys.argv[2]).write_text("released")
"""


@pytest.mark.parametrize("backend", ["mysql", "sqlite"])
def test_a_run_lock_waits_for_the_holder_when_told_to(mariadb, backend, tmp_path):
    (tmp_path / "data").mkdir()
    config_file = write_config(tmp_path, {"metadata": {"backend": backend, "mysql": mariadb, "lock_wait_seconds": 60}})
    marker = tmp_path / "holder"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THEN_RELEASE, str(config_file), str(marker)], cwd=REPO)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert holder.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    with metadata_store.run_lock(load_config(config_file)):
        assert marker.read_text() == "released"
    assert holder.wait(timeout=60) == 0


@pytest.mark.parametrize("metadata, message", [
    ({"backend": "mysql"}, "metadata: backend mysql needs a mysql: section"),
    ({"backend": "mysql", "mysql": {"database": "mlmd", "user": "tfx", "password_env": "NO_SUCH_VARIABLE_HERE"}},
     "metadata.mysql.password_env: the environment variable NO_SUCH_VARIABLE_HERE is not set"),
    ({"backend": "postgres"}, "metadata.backend: got 'postgres'"),
])
def test_metadata_errors_stop_with_exit_2_and_name_the_key(tmp_path, metadata, message):
    (tmp_path / "data").mkdir()
    completed, _ = run_cli(write_config(tmp_path, {"metadata": metadata}))
    assert completed.returncode == 2 and message in completed.stderr, completed.stderr
