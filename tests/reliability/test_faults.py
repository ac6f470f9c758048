"""Faults: the pipeline process killed (SIGKILL) in Transform, in Trainer and in Pusher, then run again; and a
disk that fills up during a push. TF Serving's base never holds a partial version, and the next run completes."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from components.contracts import BUNDLE_PREFIX, STAGING_PREFIX
from components.serving_base import push_version, versions
from pipeline.config import load_config
from project_helpers import FIRST_SPAN_ROWS, REPO, run_cli, write_config, write_span


def run_until_killed(config_file, component: str, delay: float) -> list[str]:
    """`run`, killed with SIGKILL (the whole process group: Beam's workers too) `delay` seconds after `component`
    starts. Returns the lines it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--config", str(config_file)], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    lines = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip())
            if line.split()[:2] == [component, "started"]:
                time.sleep(delay)
                os.killpg(process.pid, signal.SIGKILL)
                break
    finally:
        if process.poll() is None:   # it ended before the component started: still reap the group
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "\n".join(lines)
    return lines


def whole_versions_only(model_base) -> list[int]:
    """What TF Serving's poller could load: every numbered folder must be a complete SavedModel."""
    for version in versions(str(model_base)):
        folder = model_base / str(version)
        assert (folder / "saved_model.pb").is_file() and (folder / "variables" / "variables.index").is_file(), folder
    return versions(str(model_base))


@pytest.fixture(scope="module")
def killable_project(tmp_path_factory, taxi_rows):
    header, rows = taxi_rows
    project = tmp_path_factory.mktemp("killed")
    write_span(project, 1, header, rows[:FIRST_SPAN_ROWS])
    return write_config(project)


def test_killed_in_transform_trainer_and_pusher_then_a_rerun_pushes_a_whole_model(killable_project):
    model_base = load_config(killable_project).serving_dir
    for component, delay in (("Transform", 3.0), ("Trainer", 8.0), ("Pusher", 0.2)):
        lines = run_until_killed(killable_project, component, delay)
        assert not any("FAILED" in line for line in lines), lines
        whole_versions_only(model_base)   # nothing partial, whenever the kill came
    completed, summary = run_cli(killable_project)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert summary["status"] == "ok" and summary["push"]["pushed"], completed.stdout
    served = whole_versions_only(model_base)
    assert str(served[-1]) == summary["push"]["version"]
    assert not [p.name for p in model_base.iterdir() if p.name.startswith(STAGING_PREFIX)]


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB file system (tmpfs), as a serving disk that fills up; skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here: {mounted.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_a_disk_that_fills_up_during_a_push_fails_it_cleanly(small_disk, tmp_path):
    """The first push fits, the second does not: it fails with ENOSPC, leaves no staging or bundle behind, and
    the first version still serves."""
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(os.urandom(1000))
    (model / "variables" / "variables.index").write_bytes(os.urandom(1000))
    (model / "variables" / "variables.data-00000-of-00001").write_bytes(os.urandom(1_800_000))
    base = small_disk / "taxi"
    serving = load_config(REPO / "pipeline.yaml").serving
    first, _ = push_version(str(model), str(base), serving)
    with pytest.raises(OSError, match=f"copying the model into {base} failed at .*: "
                                      rf"\[Errno {errno.ENOSPC}\] No space left on device.*; nothing was pushed"):
        push_version(str(model), str(base), serving)
    assert sorted(p.name for p in base.iterdir()) == [first, f"{BUNDLE_PREFIX}{first}"]
    assert whole_versions_only(base) == [int(first)]
    shutil.rmtree(base / first)   # room again: the next push succeeds
    second, _ = push_version(str(model), str(base), serving)
    assert versions(str(base)) == [int(second)]
