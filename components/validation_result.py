"""TFMA's validation result in plain words: which gate failed, on which slice, with what value.

Read by the CandidateVerdict (what became of a candidate) and by the run summary.
"""
from __future__ import annotations

import json

from components.evaluation import display_name, slice_key_name, slicing_spec_name

CHANGE = " (change vs baseline)"
GAP = " (difference between the slices)"


def _validated_slice_name(per_slice) -> str:
    """A slice, or for a cross-slice gate the two slices whose difference was checked."""
    if per_slice.HasField("cross_slice_key"):
        cross = per_slice.cross_slice_key
        return f"{slice_key_name(cross.baseline_slice_key)} vs {slice_key_name(cross.comparison_slice_key)}"
    return slice_key_name(per_slice.slice_key)


def _threshold_json(threshold):
    from google.protobuf import json_format

    return json_format.MessageToDict(threshold)


def gate_failures(evaluation_uri: str) -> list[dict]:
    """Every failed gate of an evaluation: slice, metric, value, threshold."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(evaluation_uri)
    failures = []
    for per_slice in result.metric_validations_per_slice:
        for failure in per_slice.failures:
            failures.append({
                "slice": _validated_slice_name(per_slice),
                "metric": (display_name(failure.metric_key.name) + (CHANGE if failure.metric_key.is_diff else "")
                           + (GAP if per_slice.HasField("cross_slice_key") else "")),
                "value": round(failure.metric_value.double_value.value, 6),
                "threshold": _threshold_json(failure.metric_threshold),
            })
    if result.missing_thresholds:
        failures.append({"slice": "", "metric": "(a gated metric)", "value": None,
                         "threshold": "no value was computed for a metric that has a threshold"})
    for missing in result.missing_slices:
        failures.append({"slice": slicing_spec_name(missing), "metric": "(every gated metric)", "value": None,
                         "threshold": "the slice has no examples in the eval split"})
    return failures


def describe_failure(failure: dict) -> str:
    return (f"{failure['metric']} on {failure['slice'] or 'every slice'} = {failure['value']}, "
            f"threshold {json.dumps(failure['threshold'])}")
