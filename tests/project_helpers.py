"""Small projects made from the real taxi data, and the real CLI run on them."""
import copy
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import yaml

from pipeline.config import load_config

REPO = pathlib.Path(__file__).resolve().parents[1]
TAXI = REPO / "data" / "taxi"
FIRST_SPAN_ROWS = 500   # span 1 of the shared first-run project (conftest); later spans take the rows after them

# Small and quick on taxi: in-process Beam, few steps; the gates are the real ones, at test thresholds.
TEST_SETTINGS = {
    "pipeline": {"skip_unchanged": False},   # reruns go through TFX's decide stage; tests/test_unchanged.py turns it on
    "data": {"spans": {"policy": "latest", "k": 1}},
    "training": {"train_steps": 300, "eval_steps": 20, "batch_size": 32},
    "model": {"hidden_units": [16]},
    "evaluation": {"gates": [{"metric": "AUC", "lower_bound": 0.6, "max_regression": 0.05}]},
    "fairness": {"slices": [["payment_type"]]},
    "beam": {"direct_running_mode": "in_memory", "direct_num_workers": 1},
    "logging": {"report": False},   # about 5 s a run; tests/test_report.py turns it on
}


def merge(base: dict, overrides: dict) -> dict:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def read_rows(path: pathlib.Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def write_span(project: pathlib.Path, number: int, header: list[str], rows: list[dict],
               complete: bool = True) -> pathlib.Path:
    """A span folder as a producer writes it: the CSV, then the marker declaring its row count."""
    folder = project / "data" / f"span-{number:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "data.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    if complete:
        (folder / "_SUCCESS").write_text(f"{len(rows)}\n")
    return folder


def write_config(project: pathlib.Path, overrides: dict | None = None, name: str = "pipeline.yaml",
                 example: pathlib.Path = REPO) -> pathlib.Path:
    """A pipeline.yaml of the repo (or of an example folder) with test settings, on the project's data."""
    base = yaml.safe_load((example / "pipeline.yaml").read_text())
    schema = project / "schema.pbtxt"
    if not schema.exists():
        shutil.copyfile(example / base["data"]["schema_path"], schema)
    test_settings = TEST_SETTINGS if example == REPO else {}   # an example's tests bring their own
    settings = merge(merge(base, test_settings), {"data": {"base": "data", "schema_path": "schema.pbtxt"}})
    path = project / name
    path.write_text(yaml.safe_dump(merge(settings, overrides or {}), sort_keys=False))
    return path


def run_cli(config: pathlib.Path, timeout: int = 900) -> tuple[subprocess.CompletedProcess, dict]:
    summary_path = config.parent / "summary.json"
    summary_path.unlink(missing_ok=True)
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--config", str(config), "--summary-json", str(summary_path)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return completed, summary


def served_versions(project: pathlib.Path, config_name: str = "pipeline.yaml") -> list[str]:
    """Version folders as TF Serving's poller sees them (names that are numbers), in the project's serving_dir."""
    model_dir = load_config(project / config_name).serving_dir
    return sorted((p.name for p in model_dir.iterdir() if p.name.isdigit()), key=int) if model_dir.exists() else []


def apt_install(package: str, program: str) -> str:
    """The path of `program`, installing Debian's `package` first where it is missing (CI may be a new machine)."""
    found = shutil.which(program)
    if found:
        return found
    assert os.geteuid() == 0, f"{package} is not installed and installing it needs root (apt-get)"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:   # a new machine: no package lists
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True, capture_output=True)
        subprocess.run(command, env=env, check=True, capture_output=True)
    return shutil.which(program)


def default_config() -> dict:
    """The repository's pipeline.yaml on the repository's data, by absolute paths (usable from any folder)."""
    config = yaml.safe_load((REPO / "pipeline.yaml").read_text())
    config["data"]["base"] = str(REPO / "data" / "taxi")
    config["data"]["schema_path"] = str(REPO / "data" / "taxi" / "schema" / "schema.pbtxt")
    return config
