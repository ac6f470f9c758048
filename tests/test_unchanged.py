"""pipeline.skip_unchanged: a rerun on inputs the last settled run left as they are is not started again; any
change to the data files, the config or ML Metadata, or a run a gate blocked, runs the pipeline."""
import os

import pytest

from pipeline import metadata_store, unchanged
from pipeline.config import load_config
from project_helpers import run_cli, write_config


@pytest.fixture(scope="module")
def settled(project):
    """The first run with skip_unchanged on: it trains and pushes, so it settles."""
    config_path = write_config(project, {"pipeline": {"skip_unchanged": True}}, name="unchanged.yaml")
    completed, summary = run_cli(config_path)
    assert completed.returncode == 0 and summary["push"]["pushed"], completed.stdout + completed.stderr
    return config_path, summary


def test_a_rerun_after_a_push_is_not_started_and_says_which_run_stands(project, settled):
    config_path, first = settled
    config = load_config(config_path)
    runs_before = len(metadata_store.pipeline_runs(config))
    logs_before = set(config.path(config.logging.directory).iterdir())
    completed, summary = run_cli(config_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"are as run {first['run_id']} left them; not run again" in completed.stdout
    assert f"pushed version {first['push']['version']}" in completed.stdout
    assert summary["unchanged_since"] == first["run_id"] and summary["run_id"] is None
    assert len(metadata_store.pipeline_runs(config)) == runs_before           # no TFX run
    assert set(config.path(config.logging.directory).iterdir()) == logs_before   # and no log of one


def test_a_touched_data_file_or_another_config_is_a_change(project, settled):
    config_path, first = settled
    config = load_config(config_path)
    assert unchanged.settled_run(config)["run_id"] == first["run_id"]
    data_file = next(config.path(config.data.base).glob("span-01/*.csv"))
    stat = data_file.stat()
    os.utime(data_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert unchanged.settled_run(config) is None
    os.utime(data_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert unchanged.settled_run(config) is not None
    other = load_config(write_config(project, {"pipeline": {"skip_unchanged": True}, "training": {"seed": 7}},
                                     name="other-seed.yaml"))
    assert unchanged.settled_run(other) is None


def test_a_run_a_gate_blocked_does_not_settle(project, settled):
    """Its next run on the span escalates (fine-tune, then full retrain): it must run."""
    config_path, first = settled
    config = load_config(config_path)
    blocked = {"run_id": "blocked-run", "status": "model_blocked", "retraining": {"mode": "fine_tune"},
               "push": {"pushed": False, "reason": "the model gate did not bless the model"}}
    with metadata_store.run_lock(config):
        unchanged.record(config, blocked)
    assert unchanged.settled_run(config) is None
    completed, summary = run_cli(config_path)   # the decide stage runs: span 1 is the pushed model's, skip
    assert completed.returncode == 0 and summary["run_id"], completed.stdout + completed.stderr
    assert summary["retraining"]["mode"] == "skip"
    assert unchanged.settled_run(config)["run_id"] == summary["run_id"]
