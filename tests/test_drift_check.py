"""DriftCheck on statistics of real taxi rows: drift against the blessed model's data (stable on a
random sample, sensitive to one feature scaled), and the training/serving skew check against logged
serving requests."""
import csv
import json
import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.artifacts import DriftReport
from components.contracts import DRIFT_REPORT_FILE, SETTINGS_KEY
from components.drift_check import Distribution, Executor, _row, drift_rows
from components.settings import DriftCheckSettings
from pipeline.stages.ingest import statistics_options
from project_helpers import TAXI, write_span

NUMERIC = {"psi": 0.1, "location": 0.15, "scale": 0.3}
SETTINGS = DriftCheckSettings(
    quantile_buckets=10, significance=4.0, skew_threshold=0.2, serving_logs=None,
    features={"fare": {"kind": "numeric", "thresholds": NUMERIC},
              "trip_miles": {"kind": "numeric", "thresholds": NUMERIC},
              "trip_start_hour": {"kind": "category", "thresholds": {"psi": 0.1}},
              "payment_type": {"kind": "string", "thresholds": {"l_infinity": 0.3}}},
)


def statistics_artifact(tmp_path, name, csv_path):
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(tmp_path / name)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(os.path.join(artifact.uri, "Split-train"))
    statistics = tfdv.generate_statistics_from_csv(str(csv_path), stats_options=statistics_options())
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
        {SETTINGS_KEY: SETTINGS.model_copy(update={"serving_logs": serving_logs}).model_dump_json()},
    )
    rows = json.loads((tmp_path / "report" / DRIFT_REPORT_FILE).read_text())
    return report, rows


@pytest.fixture
def spans(tmp_path, taxi_rows):
    header, rows = taxi_rows
    older = write_span(tmp_path, 1, header, rows[:600]) / "data.csv"
    shifted = [dict(row, fare=f"{float(row['fare']) * 2:.2f}") for row in rows[600:1200]]
    newer = write_span(tmp_path, 2, header, shifted) / "data.csv"
    return header, rows, older, newer


def test_drift_reports_every_measure_with_its_threshold_and_noise_limit(tmp_path, spans):
    _, _, older, newer = spans
    report, rows = run_check(tmp_path, statistics_artifact(tmp_path, "new", newer), statistics_artifact(tmp_path, "old", older))
    measured = {(row["feature"], row["measure"]): row for row in rows}
    assert set(measured) == {("fare", "psi"), ("fare", "location"), ("fare", "scale"), ("trip_miles", "psi"),
                             ("trip_miles", "location"), ("trip_miles", "scale"), ("trip_start_hour", "psi"),
                             ("payment_type", "l_infinity")}
    for measure in ("psi", "location", "scale"):   # fares doubled: every measure of fare is over, and over noise
        row = measured[("fare", measure)]
        assert row["over_threshold"] and abs(row["value"]) > max(row["threshold"], row["noise_limit"]), row
    assert 0.5 < measured[("fare", "scale")]["value"] < 0.9   # ln 2, give or take two different samples
    payment = measured[("payment_type", "l_infinity")]
    assert payment["threshold"] == 0.3 and not payment["over_threshold"] and 0 < payment["value"] < 0.3
    assert not any(row["over_threshold"] for row in rows if row["feature"] != "fare"), rows
    assert report.get_int_custom_property("drifted") == 1
    assert json.loads(report.get_string_custom_property("drifted_features")) == ["fare"]


def frame_statistics(frame):
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=statistics_options())


def schema():
    return tfdv.load_schema_text(str(TAXI / "schema" / "schema.pbtxt"))


def test_a_random_sample_of_the_same_rows_is_not_drift():
    """All 15,002 rows against a random 1,000 of them: TFDV's equal-width JSD gave trip_miles 0.80 here."""
    everything = pd.concat([pd.read_csv(path) for path in sorted(TAXI.glob("span-*/data.csv"))], ignore_index=True)
    for seed in range(3):
        sample = everything.sample(n=1000, random_state=seed)
        rows = drift_rows(frame_statistics(sample), frame_statistics(everything), schema(), SETTINGS)
        assert not [row for row in rows if row["over_threshold"]], rows
        miles = {row["measure"]: row["value"] for row in rows if row["feature"] == "trip_miles"}
        assert miles["psi"] < 0.05 and abs(miles["location"]) < 0.1 and abs(miles["scale"]) < 0.15, miles


def test_one_numeric_feature_times_one_and_a_half_is_drift_in_that_feature_alone():
    frame = pd.read_csv(TAXI / "span-06" / "data.csv")
    for feature in ("fare", "trip_miles"):
        scaled = frame.copy()
        scaled[feature] = scaled[feature] * 1.5
        rows = drift_rows(frame_statistics(scaled), frame_statistics(frame), schema(), SETTINGS)
        assert {row["feature"] for row in rows if row["over_threshold"]} == {feature}, rows


def test_quantile_histogram_reads_fractions_and_quantiles():
    feature = statistics_pb2.FeatureNameStatistics(name="x")
    feature.num_stats.common_stats.num_non_missing = 30
    feature.num_stats.common_stats.num_missing = 10
    histogram = feature.num_stats.histograms.add(type=statistics_pb2.Histogram.QUANTILES)
    for low, high in ((0, 0), (0, 10), (10, 20)):   # a point mass at 0, then two even buckets
        histogram.buckets.add(low_value=low, high_value=high, sample_count=10)
    distribution = Distribution(feature)
    assert distribution.missing == 0.25
    assert distribution.below(-1) == 0 and distribution.below(0) == pytest.approx(1 / 3)
    assert distribution.below(5) == pytest.approx(0.5) and distribution.below(20) == 1
    assert distribution.quantile(0.5) == pytest.approx(5) and distribution.quantile(0.2) == 0
    assert distribution.quantile(1.2) == 20 and distribution.quantile(-0.1) == 0   # the noise bands reach past the ends


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
    assert skew["payment_type"]["over_threshold"] and skew["payment_type"]["measure"] == "l_infinity"
    assert not skew["trip_miles"]["over_threshold"]
    assert json.loads(report.get_string_custom_property("skewed_features")) == ["payment_type"]
    assert json.loads(report.get_string_custom_property("drifted_features")) == []


def test_a_threshold_of_one_is_never_crossed():
    """Quarters share no month, so a categorical distance is at its maximum, 1; TFDV computed one as
    1.0000000000000004 for the train splits of spans 5 and 6 (found in the replay benchmark)."""
    assert _row("trip_start_month", "drift", "l_infinity", 1.0000000000000004, 1.0) == {
        "feature": "trip_start_month", "check": "drift", "measure": "l_infinity", "value": 1.0,
        "threshold": 1.0, "noise_limit": None, "over_threshold": False}
