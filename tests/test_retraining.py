"""Continuous retraining on real taxi rows: skip, fine-tune through the saved graph, full retrain on drift.

One project, runs in order: span 1 (first model), no new span, a span like span 1 (fine-tune),
a span with injected drift (full retrain).
"""
import hashlib
import json
import pathlib
import random

import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras

from components.artifacts import Verdict
from components.contracts import (FINE_TUNE, FULL_RETRAIN, MODE_KEY, REJECTIONS_KEY, RUN_KEY, SETTINGS_DIGEST_KEY, SKIP,
                                  SPAN_KEY, WARM_START_FILE)
from components.retrain_policy import decide, rejected_on
from pipeline import metadata_store
from pipeline.config import load_config
from project_helpers import TAXI, read_rows, run_cli, write_config, write_span

NEW_COMPANY = "Brand New Cab Co"
SETTINGS = {
    "retraining": {"fine_tune": {"frozen_layers": ["hidden_0"], "train_steps": 50, "unfrozen_steps": 20}},
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
    (dict(rejected=[{"run_id": "r1", "mode": FINE_TUNE, "rejections": [{"gate": "model", "reasons": ["auc"]}]}]),
     FULL_RETRAIN, "the fine-tuned candidate for span 4 was rejected (run r1: model gate): escalating"),
    (dict(policy="always_full", rejected=[{"run_id": "r2", "mode": FULL_RETRAIN, "rejections": [{"gate": "serving"}]}]),
     SKIP, "a full retrain on span 4 was rejected (run r2: serving gate)"),
    (dict(baseline_spans=[], rejected=[{"run_id": "r3", "mode": FULL_RETRAIN, "rejections": [{"gate": "model"}]}]),
     SKIP, "the served model stays until a new span arrives"),
])
def test_policy_decisions(arguments, mode, reason):
    defaults = dict(policy="drift_aware", every_n=0, span=4, baseline_spans=[3], analysed_spans=[2],
                    schema_changed=False, drifted=[])
    decided, reasons = decide(**{**defaults, **arguments})
    assert decided == mode
    assert any(reason in sentence for sentence in reasons), reasons


def test_rejections_count_only_on_the_same_span_under_the_same_settings():
    verdicts = []
    for span, digest, mode in ((3, "same", FINE_TUNE), (3, "changed", FULL_RETRAIN), (2, "same", FULL_RETRAIN)):
        verdict = Verdict()
        verdict.id = len(verdicts) + 1
        verdict.set_int_custom_property(SPAN_KEY, span)
        for key, value in ((SETTINGS_DIGEST_KEY, digest), (MODE_KEY, mode), (RUN_KEY, f"run{span}"),
                           (REJECTIONS_KEY, json.dumps([{"gate": "model", "reasons": ["auc"]}]))):
            verdict.set_string_custom_property(key, value)
        verdicts.append(verdict)
    assert rejected_on(verdicts, 3, "same") == [
        {"run_id": "run3", "mode": FINE_TUNE, "min_diff": False, "rejections": [{"gate": "model", "reasons": ["auc"]}]}]
    assert rejected_on(verdicts, 4, "same") == []


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """Span 1 is two real quarters (2,683 rows), so a random 1,000 of them is a sample of the same data."""
    header, rows = read_rows(TAXI / "span-06" / "data.csv")
    rows += read_rows(TAXI / "span-07" / "data.csv")[1]
    project = tmp_path_factory.mktemp("retraining")
    write_span(project, 1, header, rows)
    write_config(project, SETTINGS)
    return project, header, rows


@pytest.fixture(scope="module")
def runs(project):
    """Each step's (completed process, summary), in order."""
    project, header, rows = project
    config = project / "pipeline.yaml"
    results = {"first": run_cli(config), "no_new_span": run_cli(config)}

    sample = random.Random(7).sample(rows, 1000)
    write_span(project, 2, header, sample)
    results["sample_span"] = run_cli(config)

    write_span(project, 3, header, [dict(row, fare=f"{float(row['fare']) * 1.5:.2f}") for row in sample])
    results["fare_scaled_span"] = run_cli(config)
    return results


def decision_in_store(project, run_id):
    project = project[0] if isinstance(project, tuple) else project
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


def test_a_random_sample_is_no_drift_and_is_fine_tuned_from_the_blessed_model_through_its_saved_graph(project, runs):
    """A random 1,000 of the blessed model's own rows: no drift (TFDV's equal-width JSD called trip_miles drifted on
    such a sample), so the policy fine-tunes."""
    project = project[0]
    completed, summary = runs["sample_span"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FINE_TUNE, summary["retraining"]
    assert decision_in_store(project, summary["run_id"]) == (FINE_TUNE, summary["retraining"]["reasons"])
    assert summary["drift"]["compared_with_blessed_model_data"] and summary["drift"]["drifted_features"] == []
    measured = {(m["feature"], m["measure"]) for m in summary["drift"]["measurements"]}
    assert {("trip_miles", "psi"), ("trip_miles", "location"), ("trip_miles", "scale"), ("company", "l_infinity"),
            ("pickup_community_area", "psi")} <= measured
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

    # The fine-tuned model carries the first model's transform graph: a company it never saw lands in
    # that graph's out-of-vocabulary bucket.
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


def test_one_numeric_feature_scaled_is_drift_in_that_feature_and_a_full_retrain(project, runs):
    """The same 1,000 rows with fare x1.5 and nothing else changed (TFDV's JSD gave a x1.6 fare 0.240, under
    its 0.25 threshold)."""
    completed, summary = runs["fare_scaled_span"]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FULL_RETRAIN
    assert summary["drift"]["drifted_features"] == ["fare"]
    fare = {m["measure"]: m for m in summary["drift"]["measurements"] if m["feature"] == "fare"}
    for measure in ("psi", "location"):   # over the threshold and over the noise limit
        assert fare[measure]["over_threshold"] and fare[measure]["value"] > fare[measure]["noise_limit"], fare
    assert fare["psi"]["threshold"] == 0.1 and fare["scale"]["value"] > 0.3   # ln 1.5, give or take the hash split
    assert any(r == "drift over threshold in: fare" for r in summary["retraining"]["reasons"])
    assert "    - fare (drift): psi 0." in completed.stdout
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert outcomes["Transform"] == outcomes["Trainer"] == "done" and outcomes["FineTuneTrainer"] == "skipped"
    assert summary["trained_on_spans"] == [3]
