"""The per-slice fairness report FairnessEvaluator writes into each evaluation: every slice of every
slicing, small ones included (TFMA gates only the large ones), with its size, whether it was gated and
the candidate's metrics, as a table (CSV, JSON) and a bar chart with the gates' lines.
"""
from __future__ import annotations

import collections
import csv
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma

from components.contracts import FAIRNESS_REPORT_CSV, FAIRNESS_REPORT_JSON, FAIRNESS_REPORT_PNG
from components.evaluation import (EXACT_AUC, display_name, gated_metric_name, slice_gaps, slice_id, slice_key_id,
                                   slice_name)


def report_rows(evaluation_uri: str, counts: dict[tuple, collections.Counter], min_size: int) -> list[dict]:
    """One row per slice of each slicing: its size, whether it was gated, and the candidate's metrics."""
    metrics_by_slice = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.HasField("cross_slice_key"):
            continue
        values = {}
        for entry in metrics_for_slice.metric_keys_and_values:
            metric_key = entry.key
            if (metric_key.model_name == "baseline" or metric_key.is_diff or metric_key.HasField("sub_key")
                    or entry.value.WhichOneof("type") != "double_value"):
                continue
            values[display_name(metric_key.name)] = entry.value.double_value.value
        metrics_by_slice[slice_key_id(metrics_for_slice.slice_key)] = values
    rows = []
    for keys, counter in counts.items():
        for values, size in sorted(counter.items(), key=lambda item: str(item[0])):
            rows.append({"slicing": " x ".join(keys), "slice": slice_name(keys, values), "examples": size,
                         "gated": size >= min_size, "metrics": metrics_by_slice.get(slice_id(keys, values), {})})
    return rows


def _gates(eval_config: tfma.EvalConfig) -> tuple[dict, dict]:
    """Per metric: the (lower, upper) bounds of its slice gates, and the largest gap its gap gates allow."""
    bounds, gaps = {}, {}
    for metric in (metric for spec in eval_config.metrics_specs for metric in spec.metrics):
        for threshold in metric.per_slice_thresholds:
            if all(not spec.feature_keys and not spec.feature_values for spec in threshold.slicing_specs):
                continue  # a gate on the whole eval split (evaluation.gates), not on slices
            value = threshold.threshold.value_threshold
            bounds[gated_metric_name(metric)] = (value.lower_bound.value if value.HasField("lower_bound") else None,
                                                 value.upper_bound.value if value.HasField("upper_bound") else None)
        for threshold in metric.cross_slice_thresholds:
            gaps[gated_metric_name(metric)] = threshold.threshold.value_threshold.upper_bound.value
    return bounds, gaps


def write_report(evaluation_uri: str, rows: list[dict], eval_config: tfma.EvalConfig, min_size: int) -> None:
    """The rows and the gates of eval_config (as narrowed to large slices) as JSON, CSV and a chart."""
    bounds, gaps = _gates(eval_config)
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, FAIRNESS_REPORT_JSON), "w") as handle:
        json.dump({"min_slice_size": min_size, "slice_gates": {k: list(v) for k, v in bounds.items()},
                   "gap_gates": gaps, "slices": rows}, handle, indent=1)
    metric_names = sorted({name for row in rows for name in row["metrics"]})
    with tf.io.gfile.GFile(os.path.join(evaluation_uri, FAIRNESS_REPORT_CSV), "w") as handle:
        writer = csv.writer(handle)
        writer.writerow(["slicing", "slice", "examples", "gated"] + metric_names)
        for row in rows:
            writer.writerow([row["slicing"], row["slice"], row["examples"], row["gated"]]
                            + [row["metrics"].get(name, "") for name in metric_names])
    plot_report(os.path.join(evaluation_uri, FAIRNESS_REPORT_PNG), rows, bounds, gaps)


def plot_report(path: str, rows: list[dict], bounds: dict, gaps: dict) -> None:
    """One panel per gated metric (AUC when none is): a bar per slice, small slices hatched, gate lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys([*bounds, *gaps])) or [EXACT_AUC]
    figure, axes = plt.subplots(len(metrics), 1, figsize=(max(6.0, 0.45 * len(rows) + 2), 3.2 * len(metrics)),
                                squeeze=False)
    labels = [row["slice"] for row in rows]
    for axis, metric in zip(axes[:, 0], metrics):
        heights = [row["metrics"].get(metric, float("nan")) for row in rows]
        bars = axis.bar(range(len(rows)), heights, color=["tab:blue" if row["gated"] else "lightgray" for row in rows])
        for bar, row in zip(bars, rows):
            if not row["gated"]:
                bar.set_hatch("//")
        lower, upper = bounds.get(metric, (None, None))
        for bound, label in ((lower, "floor"), (upper, "ceiling")):
            if bound is not None:
                axis.axhline(bound, color="tab:red", linestyle="--", label=f"{label} {bound:g}")
        title = metric
        if metric in gaps:
            measured = ", ".join(f"{slicing}: {gap:.3f}" for slicing, gap in slice_gaps(rows, metric).items())
            title += f"  (gap allowed {gaps[metric]:g}; measured {measured or 'n/a'})"
        axis.set_title(title, fontsize=9)
        axis.set_xticks(range(len(rows)))
        axis.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
        axis.grid(axis="y", alpha=0.3)
        if lower is not None or upper is not None:
            axis.legend(fontsize=7)
    figure.suptitle("Per-slice metrics (hatched gray: below min_slice_size, reported but not gated)", fontsize=9)
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
