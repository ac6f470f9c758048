"""Benchmark: this pipeline against TFX's own taxi template and against plain Keras, on the same rows, with targets.

    .venv/bin/python benchmarks/pipeline_speed.py [--scale 15000,150000,1500000] [--work outputs/benchmarks/speed]

In one invocation, on the 15,002 taxi rows TFX's template ships with:
  (a) the template, copied from the installed tfx (`tfx template copy --model=taxi`) with every step enabled,
      run by its own local_runner.py;
  (b) this pipeline doing the same work (benchmarks/taxi_template.yaml: the template's features, model, steps
      and batch), plus what the template lacks (curated schema, data gate, drift check, serving validation);
  (c) the floor: the same model on the same rows with pandas, tf.data and Keras (benchmarks/keras_floor.py);
then (b) again with no new data, and (b) on one new span (a jittered resample of the rows: the retraining
cycle, a fine-tune). Then the scale curve: fresh runs of (b) on 10 spans of jittered resampled rows at each
--scale size. Each run is a child process; wall time, CPU time (user + system of the process tree) and peak
RSS (sum over the tree, sampled every 0.1 s) are measured from outside. The targets are printed as PASS/FAIL.
"""
from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import psutil
import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
# The rows `tfx template copy --model=taxi` copies into the template (found without importing tfx: 13 s).
TAXI_ROWS = pathlib.Path(importlib.util.find_spec("tfx").submodule_search_locations[0]) / "examples" / \
    "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"
WORKLOAD = REPO / "benchmarks" / "taxi_template.yaml"
SPANS_AT_SCALE = 10
# Relative noise. Coordinates stay as they are: they are community-area centroids, and moving them by 0.002
# degrees is drift by DriftCheck's measure (PSI 0.28 on pickup_latitude), which makes the new span a full retrain.
JITTERED = {"fare": 0.05, "trip_miles": 0.05, "tips": 0.05, "trip_seconds": 0.05}
INTEGERS = {"trip_seconds"}
# The template's local_runner.py with a time on each log line, to read its components' times back.
TEMPLATE_RUNNER = ("import logging, runpy; logging.basicConfig(format='%(asctime)s %(levelname)s:%(name)s:%(message)s'); "
                   "runpy.run_path('local_runner.py', run_name='__main__')")


def measure(label: str, command: list[str], cwd: pathlib.Path, log: pathlib.Path, allowed_exits=(0,)) -> dict:
    """Runs `command` to its end; wall, CPU and peak RSS of its whole process tree. Another exit code than
    `allowed_exits` stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    with log.open("w") as output:
        process = psutil.Popen(command, cwd=cwd, stdout=output, stderr=subprocess.STDOUT)
        peak = 0
        while process.poll() is None:
            try:
                peak = max(peak, sum(member.memory_info().rss for member in [process, *process.children(recursive=True)]))
            except psutil.Error:   # a child ended between listing and reading it
                pass
            time.sleep(0.1)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)   # every process of the tree that was waited for
    total_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if process.returncode not in allowed_exits:
        sys.exit(f"{label}: exit code {process.returncode}; see {log}")
    result = {"label": label, "wall_s": wall, "cpu_s": total_cpu, "peak_rss_gb": peak / 2**30, "log": str(log),
              "exit_code": process.returncode}
    print(f"  {label:<44} {wall:7.1f} s wall {total_cpu:7.1f} s CPU {peak / 2**30:5.2f} GB peak RSS"
          + (f" (exit {process.returncode})" if process.returncode else ""), flush=True)
    return result


def copy_template(work: pathlib.Path) -> pathlib.Path:
    """TFX's taxi template with every `TODO(step N): Uncomment here to add ...` step enabled."""
    template = work / "template"
    shutil.rmtree(template, ignore_errors=True)
    subprocess.run([BIN / "tfx", "template", "copy", "--model=taxi", "--pipeline_name=taxi_template",
                    f"--destination_path={template}"], check=True, capture_output=True)
    definition = template / "pipeline" / "pipeline.py"
    source = definition.read_text()
    enabled = re.sub(r"(# TODO\(step \d\): Uncomment here to add \w+ to the pipeline\.\n\s*)# (components\.append)",
                     r"\1\2", source)
    assert enabled.count("  components.append(") == 8, "the template's steps changed: update copy_template"
    definition.write_text(enabled)
    return template


def write_spans(rows: pd.DataFrame, base: pathlib.Path, first_span: int, count: int) -> None:
    """`rows` cut into `count` complete spans, numbered from first_span."""
    for index, part in enumerate(np.array_split(np.arange(len(rows)), count)):
        folder = base / f"span-{first_span + index:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.iloc[part].to_csv(folder / "data.csv", index=False)
        (folder / "_SUCCESS").write_text("")


def resampled(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    """`size` rows drawn with replacement, four numbers jittered by 5% (so rows are rarely copies); empty cells
    stay empty and integer columns integers (the curated schema's data gate checks both)."""
    generator = np.random.default_rng(seed)
    sample = rows.iloc[generator.integers(0, len(rows), size)].reset_index(drop=True)
    for column, scale in JITTERED.items():
        number = pd.to_numeric(sample[column].replace("", np.nan))
        moved = number * generator.normal(1.0, scale, size).clip(0.5, 1.5)
        text = moved.round().map("{:.0f}".format) if column in INTEGERS else moved.round(6).map("{:g}".format)
        sample[column] = text.where(number.notna(), "")
    return sample


def workload_config(work: pathlib.Path, name: str, file_name: str | None = None, **overrides) -> pathlib.Path:
    """benchmarks/taxi_template.yaml with its data and outputs moved under work/name, and `overrides`
    ({section: {key: value}}); every other knob as it is."""
    config = yaml.safe_load(WORKLOAD.read_text())
    for section, values in overrides.items():
        config[section].update(values)
    root = work / name
    config["pipeline"]["root"] = str(root / "pipeline")
    config["data"]["base"] = str(root / "data")
    config["data"]["schema_path"] = str(REPO / "data" / "taxi" / "schema" / "schema.pbtxt")
    config["serving"]["base"] = str(root / "serving")
    config["metadata"]["sqlite_path"] = str(root / "pipeline" / "metadata.sqlite")
    config["logging"]["directory"] = str(root / "pipeline" / "logs")
    path = work / f"{file_name or name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def run_pipeline(key: str, label: str, config: pathlib.Path, work: pathlib.Path) -> dict:
    summary = work / f"{key}.json"
    result = measure(label, [str(BIN / "python"), "-m", "pipeline", "run", "--config", str(config),
                             "--summary-json", str(summary)], REPO, work / f"{summary.stem}.log",
                     allowed_exits=(0, 3, 4, 5))   # a gate that blocks is an outcome, said in the summary
    result["summary"] = json.loads(summary.read_text())
    return result


def template_components(log: pathlib.Path) -> list[dict]:
    """Seconds of each of the template's components, from TFX's 'Component X is running/finished.' lines."""
    started, components = {}, []
    for line in log.read_text().splitlines():
        found = re.match(r"(\S+ \S+) INFO:absl:Component (\S+) is (running|finished)\.$", line)
        if found:
            moment = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f")
            if found.group(3) == "running":
                started[found.group(2)] = moment
            else:
                seconds = (moment - started[found.group(2)]).total_seconds()
                components.append({"name": found.group(2), "seconds": seconds, "outcome": "done"})
    return components


def components_line(components: list[dict]) -> str:
    ran = [part for part in components if part["outcome"] == "done" and part["seconds"] >= 0.5]
    return ", ".join(f"{part['name']} {part['seconds']:.1f}" for part in ran)


def check(name: str, value: float, limit: float, unit: str = "x") -> bool:
    passed = value <= limit
    print(f"  {'PASS' if passed else 'FAIL'}  {name}: {value:.2f}{unit} (target <= {limit}{unit})")
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="15000,150000,1500000", help="row counts of the scale curve ('' for none)")
    parser.add_argument("--work", default=str(REPO / "outputs" / "benchmarks" / "speed"))
    parser.add_argument("--scale-beam-mode", default="in_memory", choices=["in_memory", "multi_processing"],
                        help="beam.direct_running_mode of the scale curve's runs (multi_processing: a worker per core)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="the side-by-side runs on 15,002 rows (--no-compare: the scale curve alone)")
    args = parser.parse_args()
    work = pathlib.Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    rows = pd.read_csv(TAXI_ROWS, dtype=str, keep_default_na=False)   # cells as written: an integer stays one
    print(f"Same {len(rows):,} taxi rows ({TAXI_ROWS.name} of the installed tfx); work folder {work}")
    compared = compare(rows, work) if args.compare else {}
    scale = scale_curve(rows, work, [int(size) for size in args.scale.split(",") if size], args.scale_beam_mode)
    passed = targets(compared, scale)
    (work / "results.json").write_text(json.dumps({**compared, "scale": scale}, indent=1))
    print(f"results: {work / 'results.json'}")
    return 0 if all(passed) else 1


def compare(rows: pd.DataFrame, work: pathlib.Path) -> dict:

    template = copy_template(work)
    template_run = measure("(a) TFX taxi template, every step", [str(BIN / "python"), "-c", TEMPLATE_RUNNER],
                           template, work / "template.log")
    template_run["components"] = template_components(work / "template.log")
    config = workload_config(work, "pipeline")
    write_spans(rows, work / "pipeline" / "data", 1, 1)
    full = run_pipeline("pipeline", "(b) this pipeline, same work", config, work)
    floor = measure("(c) floor: pandas + tf.data + Keras", [str(BIN / "python"), str(REPO / "benchmarks" / "keras_floor.py"),
                                                            str(TAXI_ROWS), str(work / "floor-model")],
                    REPO, work / "floor.log")
    rerun = run_pipeline("rerun", "rerun: (b) again, no new data", config, work)
    through_tfx = workload_config(work, "pipeline", "pipeline-through-tfx", pipeline={"skip_unchanged": False})
    rerun_tfx = run_pipeline("rerun-through-tfx", "rerun through TFX (skip_unchanged: false)", through_tfx, work)
    write_spans(resampled(rows, len(rows), seed=1), work / "pipeline" / "data", 2, 1)
    cycle = run_pipeline("retrain", "retrain: (b) on one new span", config, work)
    print(f"  (a) components over 0.5 s: {components_line(template_run['components'])}")
    print(f"  (b) components over 0.5 s: {components_line(full['summary']['components'])}")
    print(f"  retraining cycle: {cycle['summary']['retraining']['mode']}; components over 0.5 s: "
          f"{components_line(cycle['summary']['components'])}")
    return {"template": template_run, "pipeline": full, "floor": floor, "rerun": rerun, "rerun_through_tfx": rerun_tfx,
            "retrain": cycle}


def scale_curve(rows: pd.DataFrame, work: pathlib.Path, sizes: list[int], beam_mode: str) -> list[dict]:
    scale = []
    for size in sizes:
        name = f"scale-{size}"
        config_at_size = workload_config(work, name, data={"spans": {"policy": "last_k", "k": SPANS_AT_SCALE}},
                                         beam={"direct_running_mode": beam_mode, "direct_num_workers": 0})
        write_spans(resampled(rows, size, seed=size), work / name / "data", 1, SPANS_AT_SCALE)
        result = run_pipeline(name, f"scale: {size:,} rows in {SPANS_AT_SCALE} spans, {beam_mode}", config_at_size, work)
        result["rows"] = size
        scale.append(result)
        print(f"    {size / result['wall_s']:,.0f} rows/s; components over 0.5 s: {components_line(result['summary']['components'])}")
    return scale


def targets(compared: dict, scale: list[dict]) -> list[bool]:
    print()
    passed = []
    if compared:
        template_run, full, floor = compared["template"], compared["pipeline"], compared["floor"]
        base = template_run["wall_s"]
        print(f"Ratios: (b)/(a) {full['wall_s'] / base:.2f}x wall, {full['cpu_s'] / template_run['cpu_s']:.2f}x CPU; "
              f"(b)/(c) {full['wall_s'] / floor['wall_s']:.2f}x wall; rerun through TFX / (a) "
              f"{compared['rerun_through_tfx']['wall_s'] / base:.2f}x")
        passed += [check("full run / template", full["wall_s"] / base, 1.0),
                   check("re-run with no new data / template", compared["rerun"]["wall_s"] / base, 0.15),
                   check("retraining cycle for one new span / template", compared["retrain"]["wall_s"] / base, 0.5)]
    largest = max(scale, key=lambda result: result["rows"], default=None)
    if largest and largest["rows"] >= 1_500_000:
        passed += [check(f"{largest['rows']:,} rows end to end", largest["wall_s"] / 60, 15, " min"),
                   check(f"{largest['rows']:,} rows peak RSS", largest["peak_rss_gb"], 6, " GB")]
    return passed


if __name__ == "__main__":
    sys.exit(main())
