"""`python -m pipeline watch`, for real: the watcher and its pipeline runs are real processes.

Kept quick: half-second polls, 50 training steps, and only the first run of the main test trains.
"""
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from pipeline.config import ConfigError, load_config
from project_helpers import REPO, write_config, write_span

POLL = 0.5
FAST = {
    "schedule": {"poll_seconds": POLL},
    "training": {"train_steps": 50, "eval_steps": 5},
    "evaluation": {"gates": [{"metric": "AUC", "lower_bound": 0.0}]},  # not about the model gate here
    "fairness": {"slices": []},
    "retraining": {"policy": "never"},                                   # after the first model: skip, no training
}


class Watcher:
    """The watcher as a child process (in its own process group), its stdout lines collected as they come."""

    def __init__(self, config: pathlib.Path, max_runs: int):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "watch", "--config", str(config), "--max-runs", str(max_runs)],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:   # until the watcher and its runs have all closed stdout
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def saw(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = 240):
        deadline = time.monotonic() + timeout
        while True:
            ended = not self.reader.is_alive()
            if self.saw(text):
                return
            assert not ended and time.monotonic() < deadline, f"no {text!r} in:\n{self.output}"
            time.sleep(0.1)

    def exit_code(self, timeout: float = 240) -> int:
        code = self.process.wait(timeout)
        self.reader.join(timeout)
        return code

    def run_child_pid(self) -> int:
        """The `pipeline run` the watcher started (Linux: /proc lists a process's children and their commands)."""
        children = pathlib.Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for pid in children.read_text().split():
                if b"\0run\0" in pathlib.Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
            time.sleep(0.05)
        raise AssertionError(f"no child run:\n{self.output}")


@pytest.fixture
def start_watcher():
    started = []

    def start(config, max_runs):
        started.append(Watcher(config, max_runs))
        return started[-1]

    yield start
    for watcher in started:   # a failed test leaves neither the watcher nor its run behind
        if watcher.process.poll() is None:
            os.killpg(watcher.process.pid, signal.SIGKILL)
            watcher.process.wait()


def runs_so_far(project: pathlib.Path) -> tuple[int, int]:
    """Run log files, and CsvExampleGen executions (each ingests one span). Read from disk, so the
    test process does not import TensorFlow; ML Metadata is read by the restarted watcher."""
    outputs = project / "outputs"
    return (len(list((outputs / "logs").glob("run-*.log"))),
            len(list((outputs / "taxi" / "CsvExampleGen" / "examples").glob("*"))))


def test_schedule_section_is_validated(tmp_path):
    (tmp_path / "data").mkdir()
    assert load_config(write_config(tmp_path, {"schedule": {"poll_seconds": 0.5}})).schedule.poll_seconds == 0.5
    for schedule, words in [({"poll_seconds": 0}, "schedule.poll_seconds: got 0; Input should be greater than 0"),
                            ({"poll_seconds": "often"}, "schedule.poll_seconds: got 'often'"),
                            ({"poll_second": 5}, "schedule.poll_second: unknown key")]:
        with pytest.raises(ConfigError, match=words):
            load_config(write_config(tmp_path, {"schedule": schedule}))


def test_runs_each_new_complete_span_and_never_an_incomplete_one(tmp_path, taxi_rows, start_watcher):
    header, rows = taxi_rows
    write_span(tmp_path, 1, header, rows[:300])
    config = write_config(tmp_path, FAST)

    watcher = start_watcher(config, max_runs=2)
    watcher.wait_for("newest span already ingested: none")
    watcher.wait_for("new complete span 1")           # at start: ML Metadata has no span yet, so span 1 runs
    watcher.wait_for("run finished: span 1, status ok, exit code 0")
    assert watcher.saw("Pusher                 done")  # the run's own progress and summary come through

    write_span(tmp_path, 2, header, rows[300:450], complete=False)
    watcher.wait_for("span 2 not complete yet")
    time.sleep(6 * POLL)
    assert not watcher.saw("new complete span 2") and watcher.process.poll() is None
    assert runs_so_far(tmp_path) == (1, 1)

    (tmp_path / "data" / "span-02" / "_SUCCESS").write_text("150\n")
    watcher.wait_for("new complete span 2")
    assert watcher.exit_code() == 0, watcher.output
    assert watcher.saw("run finished: span 2, status ok, exit code 0")
    assert watcher.saw("retraining: skip")
    assert watcher.lines[-1].endswith("stopped after 2 run(s)")
    assert runs_so_far(tmp_path) == (2, 2)

    # A new watcher finds span 2 in ML Metadata: nothing to run, it waits; SIGTERM stops it cleanly.
    restarted = start_watcher(config, max_runs=1)
    restarted.wait_for("newest span already ingested: 2")    # ML Metadata has both spans
    time.sleep(4 * POLL)
    restarted.process.send_signal(signal.SIGTERM)
    assert restarted.exit_code(timeout=30) == 0, restarted.output
    assert restarted.lines[-1].endswith("stopped after 0 run(s) on SIGTERM")
    assert runs_so_far(tmp_path) == (2, 2)


def test_a_killed_or_failed_run_does_not_stop_the_watcher(tmp_path, taxi_rows, start_watcher):
    header, rows = taxi_rows
    config = write_config(tmp_path, FAST)
    (tmp_path / "data").mkdir()

    watcher = start_watcher(config, max_runs=2)
    watcher.wait_for("newest span already ingested: none")
    write_span(tmp_path, 1, header, rows[:200])
    watcher.wait_for("run started: span 1")
    os.kill(watcher.run_child_pid(), signal.SIGKILL)    # as the kernel's OOM killer would
    watcher.wait_for("run failed: span 1, killed by SIGKILL")

    blocked = [dict(row, payment_type="Bitcoin") for row in rows[200:400]]   # outside the schema's domain
    write_span(tmp_path, 2, header, blocked)
    assert watcher.exit_code() == 0, watcher.output
    assert watcher.saw("run failed: span 2, status data_blocked, exit code 3")
    assert watcher.saw("data gate: BLOCKED")
    assert watcher.lines[-1].endswith("stopped after 2 run(s)")
