"""DriftCheck: how far the newest span is from the data the blessed model was trained on.

TFDV's comparators on the 'train' split statistics: L-infinity distance for string features,
approximate Jensen-Shannon divergence for numeric ones, with per-feature thresholds. Optionally
a training/serving skew check against statistics of logged serving requests (CSV). The report
(`drift.json`: every measured feature with its distance, threshold and verdict) is the output
artifact; `drifted`, `drifted_features` and `skewed_features` are custom properties in ML Metadata.
"""
import json
import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

REPORT_FILE = "drift.json"
SPLIT = "train"


class DriftReport(types.Artifact):
    """Per-feature distances of the newest span from the blessed model's training data."""

    TYPE_NAME = "DriftReport"


def _set_comparators(schema: schema_pb2.Schema, features: list[str], thresholds: dict, default: float, skew: float):
    for feature in schema.feature:
        if feature.name not in features:
            continue
        threshold = thresholds.get(feature.name, default)
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = threshold
            feature.skew_comparator.infinity_norm.threshold = skew
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
            feature.skew_comparator.jensen_shannon_divergence.threshold = skew


def _measurements(anomalies, kind: str) -> list[dict]:
    rows = []
    for info in anomalies.drift_skew_info:
        measured = info.drift_measurements if kind == "drift" else info.skew_measurements
        for measurement in measured:
            # Both distances are at most 1, but TFDV's can come out as 1.0000000000000002: the verdict is
            # taken on the distance as reported, so a threshold of 1 is never crossed.
            distance = round(measurement.value, 6)
            rows.append({
                "feature": ".".join(info.path.step),
                "check": kind,
                "comparator": "L-infinity" if measurement.type == measurement.L_INFTY else "Jensen-Shannon",
                "distance": distance,
                "threshold": measurement.threshold,
                "over_threshold": distance > measurement.threshold,
            })
    return rows


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        report = artifact_utils.get_single_instance(output_dict["report"])
        current = stats_artifact_utils.load_statistics(
            artifact_utils.get_single_instance(input_dict["statistics"]), SPLIT).proto()
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict["schema"])))
        _set_comparators(schema, json.loads(exec_properties["features"]), json.loads(exec_properties["thresholds"]),
                         exec_properties["default_threshold"], exec_properties["skew_threshold"])

        rows = []
        baseline = input_dict.get("baseline_statistics") or []
        if baseline:
            previous = stats_artifact_utils.load_statistics(baseline[0], SPLIT).proto()
            rows += _measurements(tfdv.validate_statistics(current, schema, previous_statistics=previous), "drift")
        serving_logs = exec_properties.get("serving_logs")
        if serving_logs:
            serving = tfdv.generate_statistics_from_csv(os.path.join(serving_logs, "*.csv"))
            rows += _measurements(
                tfdv.validate_statistics(current, schema, environment="SERVING", serving_statistics=serving), "skew")

        over = {check: sorted({row["feature"] for row in rows if row["check"] == check and row["over_threshold"]})
                for check in ("drift", "skew")}
        io_utils.write_string_file(os.path.join(report.uri, REPORT_FILE), json.dumps(rows, indent=1))
        report.set_int_custom_property("has_baseline", int(bool(baseline)))
        report.set_int_custom_property("drifted", int(bool(over["drift"])))
        report.set_string_custom_property("drifted_features", json.dumps(over["drift"]))
        # Skew is reported, not acted on: retraining on training data does not fix a serving-side difference.
        report.set_string_custom_property("skewed_features", json.dumps(over["skew"]))


class DriftCheckSpec(types.ComponentSpec):
    PARAMETERS = {
        "features": ExecutionParameter(type=str),        # JSON list of the model's raw features
        "thresholds": ExecutionParameter(type=str),      # JSON {feature: threshold}
        "default_threshold": ExecutionParameter(type=float),
        "skew_threshold": ExecutionParameter(type=float),
        "serving_logs": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "baseline_statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {"report": ChannelParameter(type=DriftReport)}


class DriftCheck(base_component.BaseComponent):
    SPEC_CLASS = DriftCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics, schema, baseline_statistics, features: list[str], thresholds: dict,
                 default_threshold: float, skew_threshold: float, serving_logs: str | None = None):
        super().__init__(spec=DriftCheckSpec(
            statistics=statistics, schema=schema, baseline_statistics=baseline_statistics,
            features=json.dumps(features), thresholds=json.dumps(thresholds),
            default_threshold=default_threshold, skew_threshold=skew_threshold, serving_logs=serving_logs,
            report=types.Channel(type=DriftReport),
        ))
