"""The model gate's names in one place: the metrics a gate can hold on, how a slice is named, and the
TFMA EvalConfig built from pipeline.yaml's `evaluation` and `fairness` sections.

Light at import (no TensorFlow, TFMA or TFX): pipeline/config.py validates gate names with it, and
`python -m pipeline --help` must not load TensorFlow. eval_config imports TFMA when it is called.
"""
from __future__ import annotations

import json

# --- metric names -------------------------------------------------------------------------------

EXACT_AUC = "auc"                  # components/exact_auc.py's metric, behind AUC gates and `auc` slice gates
EXACT_AUC_CLASS = "ExactAUC"       # named, not imported: exact_auc.py loads TFMA and imports this module
EXACT_AUC_MODULE = "components.exact_auc"
EXAMPLE_COUNT = "example_count"
SLICE_METRICS = (EXACT_AUC, EXAMPLE_COUNT)   # the metrics a fairness gate names without a threshold
CLASS_METRIC_NAMES = {EXACT_AUC_CLASS: EXACT_AUC, "ExampleCount": EXAMPLE_COUNT}   # TFMA metric class -> its value's name
RATE_METRICS = {  # a gated rate of pipeline.yaml's fairness section -> TFMA's metric class for it
    "false_positive_rate": "FPR", "false_negative_rate": "FNR", "true_positive_rate": "TPR",
    "true_negative_rate": "TNR", "positive_rate": "PredictedPositiveRate",
    "false_discovery_rate": "FalseDiscoveryRate", "false_omission_rate": "FalseOmissionRate",
}
# Rates a fairness gate can hold, at one of fairness.thresholds (Fairness Indicators reports these and more).
GATED_RATES = tuple(RATE_METRICS)
FAIRNESS_PREFIX = "fairness_indicators_metrics/"
# evaluation.gates' metric -> the name of its value in TFMA's output
GATE_VALUE_NAMES = {"AUC": EXACT_AUC, "BinaryAccuracy": "binary_accuracy", "Precision": "precision",
                    "Recall": "recall", "Calibration": "calibration"}


def display_name(metric_name: str) -> str:
    """A TFMA metric key's name as the report and the summary show it (Fairness Indicators' prefix dropped)."""
    return metric_name.removeprefix(FAIRNESS_PREFIX)


def metric_threshold(metric: str) -> float | None:
    """The decision threshold of a `rate@threshold` metric name (None for auc, example_count)."""
    return None if metric in SLICE_METRICS else float(metric.split("@", 1)[1])


def gated_metric_name(metric) -> str:
    """The key a tfma.MetricConfig's thresholds hold on: its configured name, else its class's default name."""
    name = json.loads(metric.config or "{}").get("name")
    return name or CLASS_METRIC_NAMES.get(metric.class_name, metric.class_name)


# --- slice names --------------------------------------------------------------------------------

OVERALL = "Overall"   # the whole eval split


def slice_gaps(rows: list[dict], metric: str) -> dict[str, float]:
    """Per slicing, the largest difference of a metric between its gated slices (the fairness report's rows):
    what a gap gate holds on."""
    by_slicing: dict[str, list[float]] = {}
    for row in rows:
        value = row["metrics"].get(metric)
        if row["gated"] and value is not None and value == value:   # NaN: no positives (or negatives) in the slice
            by_slicing.setdefault(row["slicing"], []).append(value)
    return {slicing: max(values) - min(values) for slicing, values in by_slicing.items() if len(values) > 1}


def slice_name(keys, values) -> str:
    """`sex=Male, race=White`: a slice as the fairness report, the failed gates and the summary name it."""
    return ", ".join(f"{key}={value}" for key, value in zip(keys, values))


def slice_key_name(slice_key) -> str:
    """The name of a TFMA SliceKey (OVERALL for the whole eval split); TFMA keeps text values as bytes."""
    columns, values = _columns_and_values(slice_key)
    return slice_name(columns, [value.decode() if isinstance(value, bytes) else value for value in values]) or OVERALL


def slicing_spec_name(spec) -> str:
    """The name of a TFMA SlicingSpec (what a gate asked for, as ValidationResult.missing_slices names it):
    `sex=Female`, or `sex=*` for every value of a column."""
    parts = [f"{key}={value}" for key, value in sorted(spec.feature_values.items())]
    parts += [f"{key}=*" for key in spec.feature_keys if key not in spec.feature_values]
    return ", ".join(parts) or spec.slice_keys_sql or OVERALL


def slice_id(keys, values) -> tuple:
    """A slice as a dict key, the same for count_slices' values (text as str) and for TFMA's SliceKey (bytes)."""
    return tuple(sorted((key, value.encode() if isinstance(value, str) else value) for key, value in zip(keys, values)))


def slice_key_id(slice_key) -> tuple:
    return slice_id(*_columns_and_values(slice_key))


def _columns_and_values(slice_key) -> tuple[list, list]:
    singles = slice_key.single_slice_keys
    return ([single.column for single in singles],
            [getattr(single, single.WhichOneof("kind")) if single.WhichOneof("kind") else None for single in singles])


# --- the EvalConfig -----------------------------------------------------------------------------

def eval_config(evaluation, fairness, label_name: str):
    """Model gates on the whole eval split; fairness gates per slice (narrowed to large slices at run time).

    evaluation and fairness are pipeline.yaml's EvaluationSection and FairnessSection.
    """
    import tensorflow_model_analysis as tfma
    from fairness_indicators import fairness_indicators_metrics

    metric_args = {
        "BinaryAccuracy": {"threshold": evaluation.decision_threshold},
        "Precision": {"thresholds": evaluation.decision_threshold},
        "Recall": {"thresholds": evaluation.decision_threshold},
    }
    gates = {gate.metric: gate for gate in evaluation.gates}
    metrics = []
    # TFMA's calibration plot (10,000 score buckets, for its notebook viewer) cost a quarter of the Evaluator's
    # time on 25,000 eval rows; nothing in the pipeline reads it.
    plots = ("CalibrationPlot",) if evaluation.calibration_plot else ()
    for name in ("ExampleCount", "AUC", "BinaryAccuracy", "Precision", "Recall", "Calibration", *plots,
                 "MeanLabel", "MeanPrediction"):
        if name == "AUC":  # exact: TFMA's own AUC ties every saturated score in its lowest bin (components/exact_auc.py)
            metric = tfma.MetricConfig(class_name=EXACT_AUC_CLASS, module=EXACT_AUC_MODULE)
        else:
            metric = tfma.MetricConfig(class_name=name, config=_json(metric_args.get(name)))
        if name in gates:
            metric.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()], threshold=_threshold(gates[name]))
        metrics.append(metric)
    metrics.append(tfma.MetricConfig(class_name="FairnessIndicators", module=fairness_indicators_metrics.__name__,
                                     config=_json({"thresholds": fairness.thresholds})))
    # TFMA thresholds hold on the keys of the MetricConfig they sit in, and Fairness Indicators' keys are
    # its sub-metrics: so a gated rate is also computed alone, by TFMA's metric of that rate at that threshold.
    named = {gated_metric_name(metric): metric for metric in metrics}
    gated = {name: named[name] for name in SLICE_METRICS}
    for gate in [*fairness.slice_gates, *fairness.gap_gates]:
        if gate.metric not in gated:
            rate = gate.metric.split("@", 1)[0]
            gated[gate.metric] = tfma.MetricConfig(
                class_name=RATE_METRICS[rate],
                config=_json({"thresholds": metric_threshold(gate.metric), "name": gate.metric}))
            metrics.append(gated[gate.metric])
    slicings = [tfma.SlicingSpec(feature_keys=keys) for keys in fairness.slices]
    for gate in fairness.slice_gates:
        gated[gate.metric].per_slice_thresholds.add(slicing_specs=slicings, threshold=_threshold(gate))
    cross_slicings = []
    for gate in fairness.gap_gates:
        gap = tfma.MetricThreshold()
        gap.value_threshold.lower_bound.value = -gate.max_gap
        gap.value_threshold.upper_bound.value = gate.max_gap
        specs = [tfma.CrossSlicingSpec(baseline_spec=tfma.SlicingSpec(feature_keys=keys))
                 for keys in ([gate.slices] if gate.slices else fairness.slices)]
        gated[gate.metric].cross_slice_thresholds.add(cross_slicing_specs=specs, threshold=gap)
        cross_slicings += [spec for spec in specs if spec not in cross_slicings]
    config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_default",
            label_key=label_name,
            prediction_key="probabilities",
            preprocessing_function_names=["transform_features"],
        )],
        slicing_specs=[tfma.SlicingSpec()] + slicings,
        cross_slicing_specs=cross_slicings,
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
    config.options.min_slice_size.value = fairness.min_slice_size  # read by FairnessEvaluator's executor
    # The metrics above replace the ones compiled into the Keras model; computing those too made TFMA
    # load every model a second time as Keras and run it per batch (about half of the Evaluator's time).
    config.options.include_default_metrics.value = False
    return config


def _json(arguments) -> str:
    return json.dumps(arguments) if arguments else ""


def _threshold(gate):
    """A gate's bounds, and for an evaluation gate the regression it allows against the blessed baseline."""
    import tensorflow_model_analysis as tfma

    threshold = tfma.MetricThreshold()
    if gate.lower_bound is not None:
        threshold.value_threshold.lower_bound.value = gate.lower_bound
    if gate.upper_bound is not None:
        threshold.value_threshold.upper_bound.value = gate.upper_bound
    if getattr(gate, "max_regression", None) is not None:   # a slice gate has no baseline comparison
        threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -gate.max_regression
    return threshold
