"""Replay: spans arrive one by one, and each retraining policy is scored on the span that follows.

For every policy (never retrain after the first span, full retrain on every span, drift-aware),
the spans are copied one at a time into that policy's own data folder and the pipeline runs as
`python -m pipeline run` would (its own ML Metadata, pipeline root and serving folder). After
each run, the model then being served is scored on the next span: prequential evaluation, the
way a deployed model meets data it has not seen. AUC uses the label the served model's own
transform graph computes (`transform_features`), so the replay never re-implements the label.
"""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
import time

import yaml

from pipeline import logs
from pipeline.config import PipelineConfig
from pipeline.predict import raw_feature_spec, served_version_dir
from pipeline.spans import complete_spans, file_pattern, span_folders

POLICIES = ("never", "always_full", "drift_aware")


def run_replay(config: PipelineConfig, config_file: pathlib.Path, output: pathlib.Path, policies=POLICIES,
               first_span: int | None = None, last_span: int | None = None, echo=print) -> list[dict]:
    """The `replay` use case: the replay (its output in `output`/replay.log), then its table, plot and totals."""
    unknown = sorted(set(policies) - set(POLICIES))
    if unknown:
        raise ValueError(f"unknown policies {', '.join(unknown)}; allowed: {', '.join(POLICIES)}")
    output.mkdir(parents=True, exist_ok=True)
    echo(f"Replay of {', '.join(policies)}; logs: {output / 'replay.log'}")
    with logs.to_file(output / "replay.log"):
        rows = replay(config, config_file, output, policies, first_span, last_span, echo)
    echo(table(rows))
    plot(rows, output / "replay.png")
    (output / "totals.json").write_text(json.dumps(totals(rows), indent=1))
    echo(f"per-span results: {output / 'replay.json'}; plot: {output / 'replay.png'}")
    return rows


def policy_config(config: PipelineConfig, config_file: pathlib.Path, policy: str, workdir: pathlib.Path) -> pathlib.Path:
    """The user's config, with this policy and every output under the policy's own folder."""
    settings = yaml.safe_load(config_file.read_text())
    settings["pipeline"]["root"] = str(workdir / "outputs")
    settings["data"]["base"] = str(workdir / "data")
    settings["data"]["schema_path"] = str(config.path(config.data.schema_path))
    settings.setdefault("retraining", {})["policy"] = policy
    settings["serving"]["base"] = str(workdir / "outputs" / "serving")
    settings["metadata"] = {"sqlite_path": str(workdir / "outputs" / "metadata.sqlite")}
    settings["logging"] = {"directory": str(workdir / "outputs" / "logs")}
    if settings["retraining"].get("drift", {}).get("serving_logs"):
        settings["retraining"]["drift"]["serving_logs"] = str(config.path(settings["retraining"]["drift"]["serving_logs"]))
    path = workdir / "pipeline.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


def score(model_dir: pathlib.Path, span_folder: pathlib.Path, pattern: str, raw_spec: dict, label_name: str) -> float:
    """AUC of a served model on a span's raw rows, sent as serialized tf.Examples."""
    import csv

    import tensorflow as tf
    from sklearn.metrics import roc_auc_score

    from components.features import example_from_csv_row

    model = tf.saved_model.load(str(model_dir))
    transform = model.signatures["transform_features"]
    serve = model.signatures["serving_default"]
    rows = []
    for path in sorted(span_folder.glob(pattern)):
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    serialized = tf.constant([example_from_csv_row(row, raw_spec).SerializeToString() for row in rows])
    labels = transform(examples=serialized)[label_name].numpy().reshape(-1)
    scores = serve(examples=serialized)["probabilities"].numpy().reshape(-1)
    if len(set(labels.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(labels, scores))


def replay(config: PipelineConfig, config_file: pathlib.Path, output: pathlib.Path, policies=POLICIES,
           first_span: int | None = None, last_span: int | None = None, echo=print) -> list[dict]:
    folders = span_folders(config)
    spans = [s for s in complete_spans(config)
             if (first_span is None or s >= first_span) and (last_span is None or s <= last_span)]
    if len(spans) < 2:
        raise ValueError(f"replay needs at least two complete spans, found {spans}")
    pattern = file_pattern(config)
    raw_spec = raw_feature_spec(config)
    rows = []
    for policy in policies:
        workdir = output / policy
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "data").mkdir(parents=True)
        run_config = policy_config(config, config_file, policy, workdir)
        for index, span in enumerate(spans):
            shutil.copytree(folders[span], workdir / "data" / folders[span].name)
            summary_file = workdir / f"summary-span-{span}.json"
            started = time.monotonic()
            completed = subprocess.run(
                [sys.executable, "-m", "pipeline", "run", "--config", str(run_config), "--summary-json", str(summary_file)],
                capture_output=True, text=True)
            seconds = time.monotonic() - started
            summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
            served = served_version_dir(workdir / "outputs" / "serving" / config.serving.model_name)
            next_span = spans[index + 1] if index + 1 < len(spans) else None
            auc = (score(served, folders[next_span], pattern, raw_spec, config.label.name)
                   if served and next_span else None)
            row = {
                "policy": policy, "span": span, "exit_code": completed.returncode,
                "decision": (summary.get("retraining") or {}).get("mode", summary.get("status", "failed")),
                "outcome": outcome(summary),
                "pushed": bool(summary.get("push", {}).get("pushed")),
                "seconds": round(seconds, 1), "next_span": next_span,
                "next_span_auc": None if auc is None else round(auc, 4),
            }
            rows.append(row)
            echo(f"  {policy:<12} span {span:>2}: {row['decision']:<13} {row['outcome']:<20} exit {row['exit_code']}  "
                 f"{row['seconds']:6.1f} s"
                 + (f"  AUC on span {next_span}: {row['next_span_auc']}" if auc is not None else ""))
    (output / "replay.json").write_text(json.dumps(rows, indent=1))
    return rows


def outcome(summary: dict) -> str:
    """What became of a run: pushed, blocked (by which gate), no candidate (skip), or failed."""
    if not summary or summary.get("status") == "failed":
        return "failed"
    if summary.get("status") == "data_blocked":
        return "blocked: data gate"
    if summary.get("push", {}).get("pushed"):
        return "pushed"
    rejections = (summary.get("verdict") or {}).get("rejections") or []
    if rejections:
        return "blocked: " + ", ".join(f"{r['gate']} gate" for r in rejections)
    return "no candidate"


def totals(rows: list[dict]) -> dict[str, dict]:
    import math

    result = {}
    for policy in dict.fromkeys(row["policy"] for row in rows):
        mine = [row for row in rows if row["policy"] == policy]
        aucs = [row["next_span_auc"] for row in mine if row["next_span_auc"] is not None and not math.isnan(row["next_span_auc"])]
        result[policy] = {
            "mean_next_span_auc": round(sum(aucs) / len(aucs), 4) if aucs else None,
            "total_seconds": round(sum(row["seconds"] for row in mine), 1),
            "decisions": {d: sum(1 for row in mine if row["decision"] == d) for d in dict.fromkeys(r["decision"] for r in mine)},
            "outcomes": {o: sum(1 for row in mine if row["outcome"] == o) for o in dict.fromkeys(r["outcome"] for r in mine)},
        }
    return result


def table(rows: list[dict]) -> str:
    from tabulate import tabulate

    by_span: dict[int, dict] = {}
    for row in rows:
        entry = by_span.setdefault(row["span"], {"span": row["span"], "scored on": row["next_span"]})
        entry[f"{row['policy']} decision"] = row["decision"]
        entry[f"{row['policy']} outcome"] = row["outcome"]
        entry[f"{row['policy']} AUC"] = row["next_span_auc"]
        entry[f"{row['policy']} s"] = row["seconds"]
    per_span = tabulate(list(by_span.values()), headers="keys", floatfmt=".4f", missingval="-")
    summary = tabulate([{"policy": p, **{k: v for k, v in t.items()}} for p, t in totals(rows).items()],
                       headers="keys", floatfmt=".4f")
    return f"{per_span}\n\n{summary}"


def plot(rows: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    for policy in dict.fromkeys(row["policy"] for row in rows):
        points = [(row["next_span"], row["next_span_auc"]) for row in rows
                  if row["policy"] == policy and row["next_span_auc"] is not None]
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=policy)
    axis.set_xlabel("span scored (the model served after the previous span)")
    axis.set_ylabel("AUC on the next span")
    axis.set_title("Prequential AUC per retraining policy")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
