"""Continuous retraining on real taxi rows: skip, fine-tune through the saved graph, full retrain on drift.

One project, runs in order: span 1 (first model), no new span, a span like span 1 (fine-tune),
a span with injected drift (full retrain).
"""
import hashlib
import json
import pathlib

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.retrain_policy import FINE_TUNE, FULL_RETRAIN, SKIP, decide
from components.trainer import WARM_START_FILE
from pipeline import metadata_store
from pipeline.config import load_config
from project_helpers import run_cli, served_versions, write_config, write_span

NEW_COMPANY = "Brand New Cab Co"
SETTINGS = {
    "retraining": {"drift": {"default_threshold": 0.4, "thresholds": {"payment_type": 0.2}},
                   "fine_tune": {"frozen_layers": ["hidden_0"], "train_steps": 50, "unfrozen_steps": 20}},
}


@pytest.mark.parametrize("arguments, mode, reason", [
    (dict(data_blocked=True, baseline_spans=[]), SKIP, "the data gate blocked span 4"),
    (dict(baseline_spans=[]), FULL_RETRAIN, "no blessed model yet"),
    (dict(span=3, baseline_spans=[3]), SKIP, "span 3 is not newer"),
    (dict(policy="never"), SKIP, "'never'"),
    (dict(policy="always_full"), FULL_RETRAIN, "'always_full'"),
    (dict(schema_changed=True), FULL_RETRAIN, "schema differs"),
    (dict(drifted=["fare"]), FULL_RETRAIN, "drift over threshold in: fare"),
    (dict(every_n=2, analysed_spans=[2]), FULL_RETRAIN, "2 spans since the transform graph was analysed"),
    (dict(every_n=3, analysed_spans=[2]), FINE_TUNE, "no feature drifted"),
])
def test_policy_decisions(arguments, mode, reason):
    defaults = dict(policy="drift_aware", every_n=0, span=4, baseline_spans=[3], analysed_spans=[2],
                    schema_changed=False, drifted=[])
    decided, reasons = decide(**{**defaults, **arguments})
    assert decided == mode
    assert any(reason in sentence for sentence in reasons), reasons


@pytest.fixture(scope="module")
def project(tmp_path_factory, taxi_rows):
    header, rows = taxi_rows
    project = tmp_path_factory.mktemp("retraining")
    write_span(project, 1, header, rows[:500])
    write_config(project, SETTINGS)
    return project


@pytest.fixture(scope="module")
def runs(project, taxi_rows):
    """Each step's (completed process, summary), in order."""
    header, rows = taxi_rows
    config = project / "pipeline.yaml"
    results = {"first": run_cli(config), "no_new_span": run_cli(config)}

    similar = [dict(row) for row in rows[500:900]]
    for row in similar[::10]:
        row["company"] = NEW_COMPANY
    write_span(project, 2, header, similar)
    results["similar_span"] = run_cli(config)

    drifted = [dict(row) for row in rows[900:1300]]
    for row in drifted:  # fares and tips tripled (the label keeps its meaning), payment mix inverted
        row["fare"] = f"{float(row['fare']) * 3:.2f}"
        row["tips"] = f"{float(row['tips']) * 3:.2f}"
        row["payment_type"] = "Credit Card" if row["payment_type"] == "Cash" else "Cash"
    write_span(project, 3, header, drifted)
    results["drifted_span"] = run_cli(config)
    return results


def decision_in_store(project, run_id):
    decision = metadata_store.run_outputs(load_config(project / "pipeline.yaml"), run_id)["RetrainPolicy"]["RetrainDecision"][0]
    return metadata_store.custom_str(decision, "mode"), json.loads(metadata_store.custom_str(decision, "reasons"))


def test_first_span_is_a_full_training(runs):
    completed, summary = runs["first"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FULL_RETRAIN and summary["push"]["pushed"]


def test_no_new_span_skips_training_and_pushes_nothing(project, runs):
    completed, summary = runs["no_new_span"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == SKIP
    assert decision_in_store(project, summary["run_id"])[0] == SKIP
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert {outcomes[n] for n in ("Transform", "Trainer", "FineTuneTrainer", "Evaluator", "Pusher")} == {"skipped"}
    assert not summary["push"]["pushed"] and "no retraining: span 1 is not newer" in summary["push"]["reason"]
    assert "retraining: skip (span 1 is not newer" in completed.stdout


def test_similar_span_is_fine_tuned_from_the_blessed_model_through_its_saved_graph(project, runs):
    completed, summary = runs["similar_span"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FINE_TUNE, summary["retraining"]
    assert decision_in_store(project, summary["run_id"]) == (FINE_TUNE, summary["retraining"]["reasons"])
    assert summary["drift"]["compared_with_blessed_model_data"] and summary["drift"]["drifted_features"] == []
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert outcomes["FineTuneTrainer"] == "done"
    assert outcomes["Transform"] == outcomes["Trainer"] == "skipped"
    assert summary["trained_on_spans"] == [2]

    config = load_config(project / "pipeline.yaml")
    first_outputs = metadata_store.run_outputs(config, runs["first"][1]["run_id"])
    tuned_outputs = metadata_store.run_outputs(config, summary["run_id"])
    first_graph = first_outputs["Transform"]["TransformGraph"][0]
    # The weights started from the blessed model's, as loaded from its artifact (checked, not assumed).
    blessed_model = first_outputs["Trainer"]["Model"][0]
    warm_start = json.loads((pathlib.Path(tuned_outputs["FineTuneTrainer"]["ModelRun"][0].uri) / WARM_START_FILE).read_text())
    assert warm_start["base_model"] == str(pathlib.Path(blessed_model.uri) / "Format-Serving")
    original = keras.models.load_model(warm_start["base_model"], compile=False)
    digest = hashlib.sha256()
    for weights in original.get_weights():
        digest.update(weights.tobytes())
    assert warm_start["base_weights_sha256"] == digest.hexdigest()
    assert warm_start["frozen_layers"] == ["hidden_0"] and warm_start["phases"] == [50, 20]

    # The fine-tuned model carries the first model's transform graph: a company first seen in span 2
    # lands in that graph's out-of-vocabulary bucket.
    tuned = tf.saved_model.load(str(pathlib.Path(tuned_outputs["FineTuneTrainer"]["Model"][0].uri) / "Format-Serving"))
    vocabulary_size = tft.TFTransformOutput(first_graph.uri).vocabulary_size_by_name("company")
    example = tf.train.Example()
    for name, value in (("company", NEW_COMPANY.encode()), ("payment_type", b"Cash")):
        example.features.feature[name].bytes_list.value.append(value)
    for name, value in (("fare", 10.0), ("tips", 0.0), ("trip_miles", 1.0)):
        example.features.feature[name].float_list.value.append(value)
    for name, value in (("trip_start_hour", 3), ("trip_start_day", 2), ("trip_start_month", 5), ("trip_start_timestamp", 1)):
        example.features.feature[name].int64_list.value.append(value)
    transformed = tuned.signatures["transform_features"](examples=tf.constant([example.SerializeToString()]))
    assert int(transformed["company_xf"].numpy()[0]) == vocabulary_size
    assert summary["push"]["pushed"]


def test_drifted_span_is_fully_retrained_and_the_report_names_the_features(project, runs):
    completed, summary = runs["drifted_span"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FULL_RETRAIN
    drifted = set(summary["drift"]["drifted_features"])
    assert {"fare", "payment_type"} <= drifted
    measured = {m["feature"]: m for m in summary["drift"]["measurements"]}
    assert measured["fare"]["comparator"] == "Jensen-Shannon" and measured["fare"]["distance"] > 0.4
    assert measured["payment_type"]["comparator"] == "L-infinity" and measured["payment_type"]["threshold"] == 0.2
    assert measured["pickup_latitude"]["threshold"] == 0.4   # the default; trip_miles has its own
    assert any("drift over threshold in: " in r and "fare" in r for r in summary["retraining"]["reasons"])
    assert "    - fare (drift): Jensen-Shannon" in completed.stdout
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert outcomes["Transform"] == outcomes["Trainer"] == "done" and outcomes["FineTuneTrainer"] == "skipped"
    assert summary["trained_on_spans"] == [3]
