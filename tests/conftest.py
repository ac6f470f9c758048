import pytest

from project_helpers import FIRST_SPAN_ROWS, TAXI, read_rows, run_cli, write_config, write_span


@pytest.fixture(scope="session")
def taxi_rows():
    """Header and rows of one real quarter (2014Q2, span 6), reused by the pipeline tests."""
    return read_rows(TAXI / "span-06" / "data.csv")


@pytest.fixture(scope="module")
def project(tmp_path_factory, taxi_rows):
    """A small project on the repo's pipeline.yaml (test settings) whose span 1 is the first FIRST_SPAN_ROWS
    real rows. One per test module, as a module adds its own spans and runs; a module that needs another
    project defines its own `project`."""
    header, rows = taxi_rows
    project = tmp_path_factory.mktemp("project")
    write_span(project, 1, header, rows[:FIRST_SPAN_ROWS])
    return project


@pytest.fixture(scope="module")
def first_run(project):
    """The first run on `project`, which must pass every gate: (completed process, summary)."""
    completed, summary = run_cli(write_config(project))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed, summary
