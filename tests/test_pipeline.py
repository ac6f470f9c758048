"""The whole pipeline, for real (TFX LocalDagRunner, Beam, SQLite ML Metadata), on one small real span.

One project is shared by the tests of this module, in order: a first run pushes a model; a span
with an anomaly stops at the data gate; a worse model is not pushed.
"""
import json
import pathlib
import shutil

import pytest
import tensorflow as tf

from components.features import example_from_csv_row, serving_feature_spec
from components.contracts import CANARY_FILE
from pipeline import metadata_store
from pipeline.config import load_config
from project_helpers import FIRST_SPAN_ROWS, read_rows, run_cli, served_versions, write_config, write_span

def test_first_run_passes_both_gates_and_pushes_in_tf_serving_layout(project, first_run):
    completed, summary = first_run
    assert summary["status"] == "ok"
    assert summary["data_gate"]["passed"] and summary["model_gate"]["passed"]
    assert not summary["model_gate"]["compared_with_baseline"]
    assert summary["trained_on_spans"] == [1]
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    names = [c["name"] for c in summary["components"]]
    stages = ["CsvExampleGen", "StatisticsGen", "ExampleValidator", "DataGate", "DriftCheck", "RetrainPolicy",
              "Transform", "Trainer", "Evaluator", "ServingValidator", "Pusher"]
    assert sorted(stages, key=names.index) == stages
    assert {outcomes[name] for name in stages} == {"done"}
    assert outcomes["FineTuneTrainer"] == "skipped"
    assert summary["retraining"]["mode"] == "full_retrain" and summary["retraining"]["reasons"] == ["no blessed model yet"]
    assert summary["retraining"]["serving"]["model_id"] is None and summary["retraining"]["rejected_candidates"] == []
    assert summary["verdict"] == {"pushed": True, "rejections": [], "next_run_on_this_span": None,
                                  "next_run_min_diff": False}
    assert summary["retraining"]["min_diff"] is False
    overall = summary["model_gate"]["metrics"]["Overall"]
    assert overall["auc"] >= 0.6 and overall["example_count"] > 50
    assert any(key.startswith("payment_type=") for key in summary["model_gate"]["metrics"])

    versions = served_versions(project)
    assert len(versions) == 1 and versions[0].isdigit()
    pushed = project / "outputs" / "serving" / "taxi" / versions[0]
    assert summary["push"]["path"] == str(pushed)
    assert (pushed / "saved_model.pb").is_file() and (pushed / "variables").is_dir()
    assert f"pushed: {pushed}" in completed.stdout
    for line in ("Transform              started", "Pusher                 done"):
        assert line in completed.stdout
    assert pathlib.Path(summary["log_file"]).is_file()


def test_pushed_model_serves_raw_csv_rows_like_the_trainer_predicted(project, first_run, taxi_rows):
    _, summary = first_run
    config = load_config(project / "pipeline.yaml")
    model_run = metadata_store.run_outputs(config, summary["run_id"])["Trainer"]["ModelRun"][0]
    canary = json.loads((pathlib.Path(model_run.uri) / CANARY_FILE).read_text())["rows"]
    assert len(canary) == 20

    model = tf.saved_model.load(summary["push"]["path"])
    serve = model.signatures["serving_default"]
    raw_spec = {name: spec for name, spec in serve.structured_input_signature[1].items()}
    assert list(raw_spec) == ["examples"]
    import tensorflow_transform as tft
    transform_graph = metadata_store.run_outputs(config, summary["run_id"])["Transform"]["TransformGraph"][0]
    settings = config.transform_settings()
    request_spec = serving_feature_spec(tft.TFTransformOutput(transform_graph.uri).raw_feature_spec(), settings)
    assert "tips" not in request_spec

    # The canary rows are rows of the span's CSV: find each one, and send the CSV row as TF Serving would get it.
    _, csv_rows = read_rows(project / "data" / "span-01" / "data.csv")
    def same_row(row, features):
        return all(str(row[name]) != "" and abs(float(row[name]) - value) < 1e-3 if isinstance(value, float)
                   else str(row[name]) == str(value) for name, value in features.items())
    matched = [(next(r for r in csv_rows if same_row(r, entry["features"])), entry["probability"]) for entry in canary]
    serialized = [example_from_csv_row(row, request_spec).SerializeToString() for row, _ in matched]
    outputs = serve(examples=tf.constant(serialized))
    probabilities = outputs["probabilities"].numpy()[:, 0]
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    assert probabilities == pytest.approx([p for _, p in matched], abs=1e-5)
    assert set(outputs["classes"].numpy()[:, 0]) <= {0, 1}
    assert "transform_features" in model.signatures


@pytest.mark.parametrize("damage, feature, words", [
    ("new_payment_type", "payment_type", "Unexpected string values"),
    ("missing_required_column", "trip_miles", "Column dropped"),
])
def test_span_with_an_anomaly_stops_at_the_data_gate(project, first_run, taxi_rows, damage, feature, words):
    header, rows = taxi_rows
    rows = [dict(row) for row in rows[FIRST_SPAN_ROWS:FIRST_SPAN_ROWS + 300]]
    if damage == "new_payment_type":
        for row in rows[::3]:
            row["payment_type"] = "Bitcoin"
    else:
        header = [name for name in header if name != "trip_miles"]
    before = served_versions(project)
    span = write_span(project, 2, header, rows)
    try:
        completed, summary = run_cli(project / "pipeline.yaml")
    finally:
        shutil.rmtree(span)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert summary["status"] == "data_blocked"
    problems = [p for p in summary["data_gate"]["problems"] if p["feature"] == feature]
    assert problems and words in problems[0]["problem"]
    if damage == "new_payment_type":
        assert "Bitcoin" in problems[0]["details"]
    assert f"- {feature} [train]: {problems[0]['problem']}" in completed.stdout
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert {outcomes[name] for name in ("Transform", "Trainer", "Evaluator", "Pusher")} == {"skipped"}
    assert summary["model_gate"] is None and not summary["push"]["pushed"]
    assert served_versions(project) == before


def test_worse_model_than_the_blessed_one_is_not_pushed(project, first_run, taxi_rows):
    header, rows = taxi_rows
    write_span(project, 2, header, rows[FIRST_SPAN_ROWS:FIRST_SPAN_ROWS + 300])
    before = served_versions(project)
    worse = write_config(project, {
        # Features that say little about tipping, and hardly any training.
        "features": [{"name": "trip_start_day", "treatment": "identity", "buckets": 8},
                     {"name": "trip_start_month", "treatment": "identity", "buckets": 13},
                     {"name": "trip_miles", "treatment": "zscore"},
                     {"name": "trip_seconds", "treatment": "zscore"}],
        "training": {"train_steps": 10},
        "evaluation": {"gates": [{"metric": "AUC", "max_regression": 0.01}]},
        "retraining": {"policy": "always_full"},
    }, name="worse.yaml")
    completed, summary = run_cli(worse)
    assert completed.returncode == 4, completed.stdout + completed.stderr
    assert summary["status"] == "model_blocked"
    gate = summary["model_gate"]
    assert gate["compared_with_baseline"] and not gate["passed"]
    assert [f["metric"] for f in gate["failures"]] == ["auc (change vs baseline)"]
    assert gate["failures"][0]["value"] < -0.01
    assert "not pushed: the model gate did not bless the model" in completed.stdout
    assert served_versions(project) == before
