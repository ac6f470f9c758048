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

from components.contracts import BUNDLE_PREFIX, PUSHED_VERSION_KEY, STAGING_PREFIX
from components.serving_base import push_version, versions
from pipeline import metadata_store
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


def test_killed_in_transform_trainer_and_pusher_then_a_rerun_serves_the_blessed_model(killable_project):
    """The Pusher copies in well under a second, so the last kill lands before, during or after the push; in
    each case the serving base holds whole versions only, and after the rerun the newest one is the push ML
    Metadata records last (a blessed model whose push was cut short is trained again, from the cache, and
    pushed; one whose push was recorded is served and the rerun skips)."""
    config = load_config(killable_project)
    for component, delay in (("Transform", 3.0), ("Trainer", 8.0), ("Pusher", 0.0)):
        lines = run_until_killed(killable_project, component, delay)
        assert not any("FAILED" in line for line in lines), lines
        whole_versions_only(config.serving_dir)   # nothing partial, whenever the kill came
    completed, summary = run_cli(killable_project)
    assert completed.returncode == 0 and summary["status"] == "ok", completed.stdout + completed.stderr
    served = whole_versions_only(config.serving_dir)
    pushes = metadata_store.pushed_models(metadata_store.open_store(config), config.pipeline.name)
    assert served and pushes, completed.stdout
    assert str(served[-1]) == metadata_store.custom_str(pushes[-1], PUSHED_VERSION_KEY)
    assert summary["push"]["pushed"] or summary["retraining"]["mode"] == "skip", completed.stdout
    assert not [p.name for p in config.serving_dir.iterdir() if p.name.startswith(STAGING_PREFIX)]


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


def test_a_blessed_model_whose_push_was_cut_short_is_no_baseline():
    """The resolver behind the retraining decision takes a model as the served baseline only once its push is
    recorded; otherwise the next run would skip and the blessed model would never be served."""
    from tfx.types import standard_artifacts

    from components.blessed_lineage import BlessedModelLineage
    from components.contracts import BLESSED_KEY, CURRENT_MODEL_ID_KEY, MODEL_ID_KEY, PUSHED_KEY

    model = standard_artifacts.Model()
    model.id = 7
    blessings = []
    for blessing_type in (standard_artifacts.ModelBlessing, standard_artifacts.InfraBlessing):
        blessing = blessing_type()
        blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
        blessing.set_int_custom_property(BLESSED_KEY, 1)
        blessings.append(blessing)
    inputs = {"model": [model], "model_blessing": [blessings[0]], "infra_blessing": [blessings[1]],
              "pushed_models": [], "transform_graph": [], "examples": [], "analysed_examples": [], "statistics": [],
              "verdicts": []}
    assert BlessedModelLineage().resolve_artifacts(None, inputs)["model"] == []

    pushed = standard_artifacts.PushedModel()
    pushed.set_int_custom_property(MODEL_ID_KEY, model.id)
    pushed.set_int_custom_property(PUSHED_KEY, 0)   # a push that did not happen counts no more
    assert BlessedModelLineage().resolve_artifacts(None, {**inputs, "pushed_models": [pushed]})["model"] == []
