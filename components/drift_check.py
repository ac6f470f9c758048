"""DriftCheck: how far the newest span is from the data the blessed model was trained on.

Both sides are StatisticsGen's 'train' split statistics, so nothing is read twice.
  - String features: TFDV's L-infinity distance between value frequencies (`l_infinity`).
  - Numeric features are measured on the baseline's own quantile buckets, not on equal-width
    histograms (whose buckets one outlier stretches, so heavy-tailed features swung on noise):
      `psi`       population stability index of the two spans over the baseline's quantile
                  buckets plus a bucket for missing values;
      `location`  median shift, in baseline interquartile ranges;
      `scale`     |ln| of the ratio of the interquartile ranges.
    Both sides' fractions below a boundary are read off TFDV's quantile histograms, which
    StatisticsGen computes at STATISTICS_QUANTILES resolution. Features used as categories
    (treatment `identity`) get `psi` only: their median says nothing.
A feature drifts when any of its measures is over its threshold (a null threshold: reported only) and
over its noise limit: the largest value two random samples of these sizes from one distribution
would give, at `significance` standard deviations. So a small span does not raise alarms on noise,
and a large one is held to the threshold.
The optional training/serving skew check compares the span with logged serving requests (CSV)
through TFDV's skew comparators; skew is reported, not acted on.

The report (DRIFT_REPORT_FILE: every measure of every feature with its threshold and verdict) is the
output artifact; DRIFTED_KEY, DRIFTED_FEATURES_KEY and SKEWED_FEATURES_KEY are its custom properties.
"""
from __future__ import annotations

import bisect
import json
import math
import os

import tensorflow_data_validation as tfdv
from scipy import stats
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components.artifacts import DriftReport
from components.contracts import (DRIFT_REPORT_FILE, DRIFTED_FEATURES_KEY, DRIFTED_KEY, HAS_BASELINE_KEY, SETTINGS_KEY,
                                  SKEWED_FEATURES_KEY)
from components.settings import DriftCheckSettings

SPLIT = "train"
STATISTICS_QUANTILES = 100       # StatisticsGen's quantile histogram resolution (assembly sets it)
_FLOOR = 1e-4                    # PSI's floor for an empty bucket on one side
_LARGEST = 10.0                  # location and scale are capped here (a spread that collapsed to 0)


# --- numeric measures on quantile histograms ---------------------------------------------------

class Distribution:
    """A numeric feature's distribution as TFDV's quantile histogram gives it: fractions below a value
    (interpolated linearly inside a bucket; a bucket of one value is a point mass) and quantiles."""

    def __init__(self, feature: statistics_pb2.FeatureNameStatistics):
        histogram = next((h for h in feature.num_stats.histograms
                          if h.type == statistics_pb2.Histogram.QUANTILES), None)
        self.buckets = [(b.low_value, b.high_value, b.sample_count) for b in histogram.buckets] if histogram else []
        counted = sum(count for _, _, count in self.buckets)
        common = feature.num_stats.common_stats
        self.present_count = common.num_non_missing
        self.count = common.num_non_missing + common.num_missing
        self.missing = common.num_missing / self.count if self.count else 0.0
        self._counts = [count / counted for _, _, count in self.buckets] if counted else []
        self._cumulative = [0.0]
        for share in self._counts:
            self._cumulative.append(self._cumulative[-1] + share)

    def below(self, value: float) -> float:
        """Fraction of the non-missing values at or below `value`."""
        fraction = 0.0
        for (low, high, _), share in zip(self.buckets, self._counts):
            if high <= value:
                fraction += share
            elif low < value:
                fraction += share * (value - low) / (high - low)
        return min(fraction, 1.0)

    def quantile(self, fraction: float) -> float:
        """The value below which `fraction` of the values lie; a fraction outside [0, 1] reads as its nearest end."""
        index = min(max(bisect.bisect_left(self._cumulative, fraction) - 1, 0), len(self.buckets) - 1)
        low, high, _ = self.buckets[index]
        share = self._counts[index]
        inside = (fraction - self._cumulative[index]) / share if share else 0.0
        return low + (high - low) * min(max(inside, 0.0), 1.0)

    def spread(self, pair: tuple[float, float]) -> float:
        return self.quantile(pair[1]) - self.quantile(pair[0])


def _bucket_shares(distribution: Distribution, boundaries: list[float]) -> list[float]:
    """Shares of all values (missing ones included) in (-inf, b1], (b1, b2], ..., (bn, inf) and missing."""
    present = 1.0 - distribution.missing
    below = [0.0] + [distribution.below(b) for b in boundaries] + [1.0]
    return [present * (high - low) for low, high in zip(below, below[1:])] + [distribution.missing]


def population_stability_index(baseline: list[float], current: list[float]) -> float:
    total = 0.0
    for expected, actual in zip(baseline, current):
        if expected < _FLOOR and actual < _FLOOR:
            continue
        expected, actual = max(expected, _FLOOR), max(actual, _FLOOR)
        total += (actual - expected) * math.log(actual / expected)
    return total


def _capped(value: float) -> float:
    return max(-_LARGEST, min(_LARGEST, value))


def numeric_measures(baseline: statistics_pb2.FeatureNameStatistics, current: statistics_pb2.FeatureNameStatistics,
                     quantile_buckets: int, significance: float, measures: tuple[str, ...]) -> dict[str, tuple]:
    """(value, noise limit) of each measure of one numeric feature; (None, None) where it cannot be taken.

    The noise limit is how large the measure can come out between two random samples of these sizes from
    one distribution, at `significance` standard deviations: for PSI from its chi-square law, for location
    and scale from the rank noise of the baseline's own quantiles (distribution-free, ties included).
    """
    base, new = Distribution(baseline), Distribution(current)
    if not base.buckets or not new.buckets:
        return {measure: (None, None) for measure in measures}
    inverse_n = 1.0 / base.present_count + 1.0 / new.present_count
    boundaries = sorted({base.quantile(i / quantile_buckets) for i in range(1, quantile_buckets)})
    expected, actual = _bucket_shares(base, boundaries), _bucket_shares(new, boundaries)
    occupied = sum(1 for e, a in zip(expected, actual) if max(e, a) >= _FLOOR)
    alpha = 2 * stats.norm.sf(significance)
    psi_noise = (1.0 / base.count + 1.0 / new.count) * stats.chi2.isf(alpha, max(occupied - 1, 1))
    result = {"psi": (population_stability_index(expected, actual), psi_noise)}

    def rank_noise(fraction):  # a sample quantile's rank wanders by about sqrt(p(1-p)/n)
        return significance * math.sqrt(fraction * (1 - fraction) * inverse_n)

    # The interquartile range, or the 10-90 range where a value holds more than half the data.
    pair = next((p for p in ((0.25, 0.75), (0.1, 0.9)) if base.spread(p) > 0), None)
    if pair is None:
        result.update(location=(None, None), scale=(None, None))
    else:
        low, high = pair
        spread = base.spread(pair)
        median, wander = base.quantile(0.5), rank_noise(0.5)
        location_noise = max(base.quantile(0.5 + wander) - median, median - base.quantile(0.5 - wander))
        result["location"] = (_capped((new.quantile(0.5) - median) / spread), _capped(location_noise / spread))
        widest = base.quantile(high + rank_noise(high)) - base.quantile(low - rank_noise(low))
        narrowest = base.quantile(high - rank_noise(high)) - base.quantile(low + rank_noise(low))
        scale_noise = max(math.log(widest / spread), -math.log(narrowest / spread) if narrowest > 0 else _LARGEST)
        ratio = new.spread(pair) / spread
        result["scale"] = (math.log(ratio) if ratio > math.exp(-_LARGEST) else -_LARGEST, _capped(scale_noise))
    return {measure: result[measure] for measure in measures}


def l_infinity_noise(baseline: statistics_pb2.FeatureNameStatistics, current: statistics_pb2.FeatureNameStatistics,
                     significance: float) -> float:
    """How far one value's frequency can move between two random samples of these sizes (at most 0.5 sd units)."""
    counts = [feature.string_stats.common_stats.num_non_missing for feature in (baseline, current)]
    if not all(counts):
        return _LARGEST
    return significance * 0.5 * math.sqrt(1.0 / counts[0] + 1.0 / counts[1])


# --- the report -------------------------------------------------------------------------------

def _features_by_name(statistics: statistics_pb2.DatasetFeatureStatisticsList) -> dict:
    return {".".join(feature.path.step) or feature.name: feature for feature in statistics.datasets[0].features}


def _row(feature: str, check: str, measure: str, value, threshold, noise_limit=None) -> dict:
    """A measure's verdict: over its threshold, and (for drift) over what sampling noise explains."""
    # TFDV's L-infinity distance can come out as 1.0000000000000002: the verdict is taken on the
    # value as reported (6 places), so a threshold of 1 is never crossed.
    value = None if value is None else round(float(value), 6)
    noise_limit = None if noise_limit is None else round(float(noise_limit), 6)
    over = (value is not None and threshold is not None and abs(value) > threshold
            and (noise_limit is None or abs(value) > noise_limit))
    return {"feature": feature, "check": check, "measure": measure, "value": value, "threshold": threshold,
            "noise_limit": noise_limit, "over_threshold": over}


def drift_rows(current: statistics_pb2.DatasetFeatureStatisticsList,
               baseline: statistics_pb2.DatasetFeatureStatisticsList,
               schema: schema_pb2.Schema, settings: DriftCheckSettings) -> list[dict]:
    """Every drift measure of every feature of `settings` (per feature its kind, string, category or
    numeric, and the threshold of each of its measures)."""
    rows = []
    new, old = _features_by_name(current), _features_by_name(baseline)
    significance = settings.significance
    strings = {name: spec for name, spec in settings.features.items() if spec.kind == "string"}
    if strings:
        schema = _with_comparators(schema, {name: 1.0 for name in strings}, "drift_comparator")
        anomalies = tfdv.validate_statistics(current, schema, previous_statistics=baseline)
        measured = {".".join(info.path.step): info.drift_measurements[0].value
                    for info in anomalies.drift_skew_info if info.drift_measurements}
        for name, spec in strings.items():
            noise = l_infinity_noise(old[name], new[name], significance) if name in old and name in new else None
            rows.append(_row(name, "drift", "l_infinity", measured.get(name), spec.thresholds["l_infinity"], noise))
    for name, spec in settings.features.items():
        if spec.kind == "string":
            continue
        measures = tuple(spec.thresholds)   # pipeline.config.DRIFT_MEASURES of the feature's kind
        if name in new and name in old:
            values = numeric_measures(old[name], new[name], settings.quantile_buckets, significance, measures)
        else:
            values = dict.fromkeys(measures, (None, None))
        for measure in measures:
            value, noise = values[measure]
            rows.append(_row(name, "drift", measure, value, spec.thresholds[measure], noise))
    return sorted(rows, key=lambda row: (row["feature"], row["measure"]))


def _with_comparators(schema: schema_pb2.Schema, thresholds: dict[str, float], comparator: str) -> schema_pb2.Schema:
    """A copy of the schema with TFDV's comparator (L-infinity for strings, JSD otherwise) on these features."""
    copy = schema_pb2.Schema()
    copy.CopyFrom(schema)
    for feature in copy.feature:
        if feature.name not in thresholds:
            continue
        target = getattr(feature, comparator)
        if feature.type == schema_pb2.BYTES:
            target.infinity_norm.threshold = thresholds[feature.name]
        else:
            target.jensen_shannon_divergence.threshold = thresholds[feature.name]
    return copy


def skew_rows(current: statistics_pb2.DatasetFeatureStatisticsList, serving: statistics_pb2.DatasetFeatureStatisticsList,
              schema: schema_pb2.Schema, features: list[str], threshold: float) -> list[dict]:
    """TFDV's skew comparators between the training span and logged serving requests."""
    schema = _with_comparators(schema, {name: threshold for name in features}, "skew_comparator")
    anomalies = tfdv.validate_statistics(current, schema, environment="SERVING", serving_statistics=serving)
    rows = []
    for info in anomalies.drift_skew_info:
        for measurement in info.skew_measurements:
            measure = "l_infinity" if measurement.type == measurement.L_INFTY else "jensen_shannon"
            rows.append(_row(".".join(info.path.step), "skew", measure, measurement.value, measurement.threshold))
    return rows


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        report = artifact_utils.get_single_instance(output_dict["report"])
        current = stats_artifact_utils.load_statistics(
            artifact_utils.get_single_instance(input_dict["statistics"]), SPLIT).proto()
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
            artifact_utils.get_single_uri(input_dict["schema"])))
        settings = DriftCheckSettings.model_validate_json(exec_properties[SETTINGS_KEY])

        rows = []
        baseline = input_dict.get("baseline_statistics") or []
        if baseline:
            previous = stats_artifact_utils.load_statistics(baseline[0], SPLIT).proto()
            rows += drift_rows(current, previous, schema, settings)
        if settings.serving_logs:
            serving = tfdv.generate_statistics_from_csv(os.path.join(settings.serving_logs, "*.csv"))
            rows += skew_rows(current, serving, schema, list(settings.features), settings.skew_threshold)

        over = {check: sorted({row["feature"] for row in rows if row["check"] == check and row["over_threshold"]})
                for check in ("drift", "skew")}
        io_utils.write_string_file(os.path.join(report.uri, DRIFT_REPORT_FILE), json.dumps(rows, indent=1))
        report.set_int_custom_property(HAS_BASELINE_KEY, int(bool(baseline)))
        report.set_int_custom_property(DRIFTED_KEY, int(bool(over["drift"])))
        report.set_string_custom_property(DRIFTED_FEATURES_KEY, json.dumps(over["drift"]))
        # Skew is reported, not acted on: retraining on training data does not fix a serving-side difference.
        report.set_string_custom_property(SKEWED_FEATURES_KEY, json.dumps(over["skew"]))


class DriftCheckSpec(types.ComponentSpec):
    PARAMETERS = {SETTINGS_KEY: ExecutionParameter(type=str)}   # DriftCheckSettings as JSON
    INPUTS = {
        "statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "baseline_statistics": ChannelParameter(type=standard_artifacts.ExampleStatistics, optional=True),
    }
    OUTPUTS = {"report": ChannelParameter(type=DriftReport)}


class DriftCheck(base_component.BaseComponent):
    SPEC_CLASS = DriftCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, statistics, schema, baseline_statistics, settings: DriftCheckSettings):
        super().__init__(spec=DriftCheckSpec(
            statistics=statistics, schema=schema, baseline_statistics=baseline_statistics,
            settings=settings.model_dump_json(), report=types.Channel(type=DriftReport),
        ))
