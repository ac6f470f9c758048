"""DriftCheck's executor on statistics of real taxi rows: drift against the blessed model's data,
and the optional training/serving skew check against logged serving requests."""
import csv
import json
import os

import pytest
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.drift_check import REPORT_FILE, DriftReport, Executor, _measurements
from project_helpers import TAXI, write_span


def statistics_artifact(tmp_path, name, csv_path):
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(tmp_path / name)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(os.path.join(artifact.uri, "Split-train"))
    statistics = tfdv.generate_statistics_from_csv(str(csv_path))
    with open(os.path.join(artifact.uri, "Split-train", "FeatureStats.pb"), "wb") as handle:
        handle.write(statistics.SerializeToString())
    artifact.set_string_custom_property("tfx_version", "1.16.0")
    return artifact


def run_check(tmp_path, current, baseline, serving_logs=None):
    schema = standard_artifacts.Schema()
    schema.uri = str(TAXI / "schema")
    report = DriftReport()
    report.uri = str(tmp_path / "report")
    Executor().Do(
        {"statistics": [current], "schema": [schema], "baseline_statistics": [baseline] if baseline else []},
        {"report": [report]},
        {"features": json.dumps(["fare", "payment_type", "trip_miles"]), "thresholds": json.dumps({"fare": 0.05}),
         "default_threshold": 0.3, "skew_threshold": 0.2, "serving_logs": serving_logs},
    )
    rows = json.loads((tmp_path / "report" / REPORT_FILE).read_text())
    return report, rows


@pytest.fixture
def spans(tmp_path, taxi_rows):
    header, rows = taxi_rows
    older = write_span(tmp_path, 1, header, rows[:600]) / "data.csv"
    shifted = [dict(row, fare=f"{float(row['fare']) * 2:.2f}") for row in rows[600:1200]]
    newer = write_span(tmp_path, 2, header, shifted) / "data.csv"
    return header, rows, older, newer


def test_drift_names_each_feature_with_distance_threshold_and_comparator(tmp_path, spans):
    _, _, older, newer = spans
    report, rows = run_check(tmp_path, statistics_artifact(tmp_path, "new", newer), statistics_artifact(tmp_path, "old", older))
    measured = {row["feature"]: row for row in rows}
    assert set(measured) == {"fare", "payment_type", "trip_miles"}
    assert measured["fare"] == {**measured["fare"], "comparator": "Jensen-Shannon", "threshold": 0.05, "over_threshold": True}
    assert measured["payment_type"]["comparator"] == "L-infinity" and measured["payment_type"]["threshold"] == 0.3
    assert not measured["payment_type"]["over_threshold"] and 0 < measured["payment_type"]["distance"] < 0.3
    assert report.get_int_custom_property("drifted") == 1
    assert json.loads(report.get_string_custom_property("drifted_features")) == ["fare"]


def test_no_baseline_means_nothing_to_compare(tmp_path, spans):
    _, _, _, newer = spans
    report, rows = run_check(tmp_path, statistics_artifact(tmp_path, "new", newer), None)
    assert rows == [] and report.get_int_custom_property("has_baseline") == 0
    assert report.get_int_custom_property("drifted") == 0


def test_serving_skew_is_reported_and_kept_apart_from_drift(tmp_path, spans):
    header, rows, older, _ = spans
    logs = tmp_path / "serving_logs"
    logs.mkdir()
    requests = [name for name in header if name != "tips"]            # serving requests carry no label
    with (logs / "requests.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=requests, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(dict(row, payment_type="Credit Card") for row in rows[:400])
    current = statistics_artifact(tmp_path, "current", older)
    report, measured = run_check(tmp_path, current, current, serving_logs=str(logs))
    skew = {row["feature"]: row for row in measured if row["check"] == "skew"}
    assert skew["payment_type"]["over_threshold"] and skew["payment_type"]["comparator"] == "L-infinity"
    assert not skew["trip_miles"]["over_threshold"]
    assert json.loads(report.get_string_custom_property("skewed_features")) == ["payment_type"]
    assert json.loads(report.get_string_custom_property("drifted_features")) == []



def test_a_threshold_of_one_is_never_crossed():
    """Quarters share no month, so trip_start_month is at the maximum distance, 1; TFDV computed it as
    1.0000000000000004 for the train splits of spans 5 and 6 (found in the replay benchmark)."""
    anomalies = anomalies_pb2.Anomalies()
    info = anomalies.drift_skew_info.add()
    info.path.step.append("trip_start_month")
    info.drift_measurements.add(type=anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE,
                                value=1.0000000000000004, threshold=1.0)
    assert _measurements(anomalies, "drift") == [{
        "feature": "trip_start_month", "check": "drift", "comparator": "Jensen-Shannon", "distance": 1.0,
        "threshold": 1.0, "over_threshold": False}]
