"""The run summary: gates passed or failed and why, metrics, and where the model went."""
from __future__ import annotations

import json
import pathlib
from dataclasses import asdict

from components.data_gate import BLESSED_KEY, PROBLEMS_FILE
from components.drift_check import REPORT_FILE
from components.fairness_evaluator import REPORT_CSV, REPORT_JSON, REPORT_PNG, display_name
from components.retrain_policy import MODE_KEY, SKIP
from components.serving_validator import REASON_KEY
from components.serving_validator import REPORT_FILE as SERVING_REPORT_FILE
from pipeline import metadata_store
from pipeline.config import PipelineConfig

OVERALL = "Overall"
CHANGE = " (change vs baseline)"
GAP = " (difference between the slices)"


def _slice_name(slice_key) -> str:
    parts = []
    for single in slice_key.single_slice_keys:
        value = getattr(single, single.WhichOneof("kind")) if single.WhichOneof("kind") else None
        parts.append(f"{single.column}={value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts) or OVERALL


def _validated_slice_name(per_slice) -> str:
    """A slice, or for a cross-slice gate the two slices whose difference was checked."""
    if per_slice.HasField("cross_slice_key"):
        cross = per_slice.cross_slice_key
        return f"{_slice_name(cross.baseline_slice_key)} vs {_slice_name(cross.comparison_slice_key)}"
    return _slice_name(per_slice.slice_key)


def evaluation_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """Candidate model's scalar metrics per slice, read from TFMA's output."""
    import tensorflow_model_analysis as tfma

    per_slice: dict[str, dict[str, float]] = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.HasField("cross_slice_key"):  # differences between slices: gates, not metrics
            continue
        values = per_slice.setdefault(_slice_name(metrics_for_slice.slice_key), {})
        for entry in metrics_for_slice.metric_keys_and_values:
            key = entry.key
            if key.model_name == "baseline" or key.HasField("sub_key") or entry.value.WhichOneof("type") != "double_value":
                continue
            name = display_name(key.name) + (CHANGE if key.is_diff else "")
            values[name] = round(entry.value.double_value.value, 6)
    return per_slice


def gate_failures(evaluation_uri: str) -> list[dict]:
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
                "threshold": json.loads(_threshold_json(failure.metric_threshold)),
            })
    if result.missing_thresholds:
        failures.append({"slice": "", "metric": "(a gated metric)", "value": None,
                         "threshold": "no value was computed for a metric that has a threshold"})
    for missing in result.missing_slices:
        failures.append({"slice": _slice_name(missing), "metric": "(every gated metric)", "value": None,
                         "threshold": "the slice has no examples in the eval split"})
    return failures


def fairness_report(evaluation_uri: str) -> dict | None:
    """Where the per-slice table and chart are, and which slices were too small to gate."""
    folder = pathlib.Path(evaluation_uri)
    if not (folder / REPORT_JSON).exists():
        return None
    report = json.loads((folder / REPORT_JSON).read_text())
    return {
        "table": str(folder / REPORT_CSV), "json": str(folder / REPORT_JSON), "chart": str(folder / REPORT_PNG),
        "slices": len(report["slices"]), "min_slice_size": report["min_slice_size"],
        "not_gated": [f"{row['slice']} ({row['examples']})" for row in report["slices"] if not row["gated"]],
    }


def _threshold_json(threshold) -> str:
    from google.protobuf import json_format
    return json.dumps(json_format.MessageToDict(threshold))


def collect(config: PipelineConfig, run_id: str, timings, log_file: str, error: str = "") -> dict:
    outputs = metadata_store.run_outputs(config, run_id)

    def produced(node: str, type_name: str) -> list:
        return outputs.get(node, {}).get(type_name, [])

    summary = {
        "run_id": run_id,
        "pipeline": config.pipeline.name,
        "log_file": log_file,
        "components": [asdict(timing) for timing in timings],
        "trained_on_spans": metadata_store.spans_read_by(config, run_id, ("Trainer", "FineTuneTrainer")),
        "data_gate": None,
        "drift": None,
        "retraining": None,
        "model_gate": None,
        "serving_gate": None,
        "push": {"pushed": False, "path": None, "reason": ""},
    }
    for result in produced("DataGate", "DataGateResult"):
        problems = json.loads((pathlib.Path(result.uri) / PROBLEMS_FILE).read_text())
        summary["data_gate"] = {"passed": metadata_store.custom_int(result, BLESSED_KEY) == 1, "problems": problems}
    for report in produced("DriftCheck", "DriftReport"):
        summary["drift"] = {
            "compared_with_blessed_model_data": metadata_store.custom_int(report, "has_baseline") == 1,
            "drifted_features": json.loads(metadata_store.custom_str(report, "drifted_features") or "[]"),
            "skewed_features": json.loads(metadata_store.custom_str(report, "skewed_features") or "[]"),
            "measurements": json.loads((pathlib.Path(report.uri) / REPORT_FILE).read_text()),
        }
    for decision in produced("RetrainPolicy", "RetrainDecision"):
        summary["retraining"] = {"mode": metadata_store.custom_str(decision, MODE_KEY),
                                 "reasons": json.loads(metadata_store.custom_str(decision, "reasons"))}
    for blessing in produced("Evaluator", "ModelBlessing"):
        evaluation_uri = next(iter(a.uri for a in produced("Evaluator", "ModelEvaluation")), None)
        summary["model_gate"] = {
            "passed": metadata_store.custom_int(blessing, "blessed") == 1,
            "compared_with_baseline": bool(metadata_store.custom_str(blessing, "baseline_model")),
            "failures": gate_failures(evaluation_uri) if evaluation_uri else [],
            "metrics": evaluation_metrics(evaluation_uri) if evaluation_uri else {},
            "fairness": fairness_report(evaluation_uri) if evaluation_uri else None,
        }
    for blessing in produced("ServingValidator", "InfraBlessing"):
        report = pathlib.Path(blessing.uri) / SERVING_REPORT_FILE
        summary["serving_gate"] = {
            "passed": metadata_store.custom_int(blessing, "blessed") == 1,
            "reason": metadata_store.custom_str(blessing, REASON_KEY),
            "report": json.loads(report.read_text()) if report.exists() else {},
        }
    for pushed in produced("Pusher", "PushedModel"):
        if metadata_store.custom_int(pushed, "pushed") == 1:
            summary["push"] = {"pushed": True, "path": metadata_store.custom_str(pushed, "pushed_destination"),
                               "version": metadata_store.custom_str(pushed, "pushed_version"),
                               "reason": "blessed by every gate"}

    unresolved = [timing.name for timing in timings if timing.outcome == "failed"]
    if unresolved and not error:
        error = f"{', '.join(unresolved)} could not resolve its inputs (see the log)"
    if error:
        summary["status"] = "failed"
        summary["push"]["reason"] = f"the run failed: {error}"
    elif summary["data_gate"] and not summary["data_gate"]["passed"]:
        summary["status"] = "data_blocked"
        summary["push"]["reason"] = "the data gate found anomalies; nothing was transformed, trained or pushed"
    elif summary["retraining"] and summary["retraining"]["mode"] == SKIP:
        summary["status"] = "ok"
        summary["push"]["reason"] = "no retraining: " + "; ".join(summary["retraining"]["reasons"])
    elif summary["model_gate"] and not summary["model_gate"]["passed"]:
        summary["status"] = "model_blocked"
        summary["push"]["reason"] = "the model gate did not bless the model"
    elif summary["serving_gate"] and not summary["serving_gate"]["passed"]:
        summary["status"] = "serving_blocked"
        summary["push"]["reason"] = "serving validation failed: " + summary["serving_gate"]["reason"]
    else:
        summary["status"] = "ok"
    return summary


def render(summary: dict) -> str:
    lines = [f"Run {summary['run_id']} of pipeline '{summary['pipeline']}': {summary['status'].upper()}"]
    if summary["trained_on_spans"]:
        lines.append(f"  trained on spans: {', '.join(map(str, summary['trained_on_spans']))}")
    gate = summary["data_gate"]
    if gate is not None:
        lines.append(f"  data gate: {'passed' if gate['passed'] else 'BLOCKED'}")
        for problem in gate["problems"]:
            lines.append(f"    - {problem['feature']} [{problem['split']}]: {problem['problem']}: {problem['details']}")
    drift = summary["drift"]
    if drift is not None and drift["measurements"]:
        over = [m for m in drift["measurements"] if m["over_threshold"]]
        lines.append(f"  drift vs the blessed model's data / skew vs serving logs: "
                     f"{len(over)} of {len(drift['measurements'])} checks over threshold")
        for m in over:
            lines.append(f"    - {m['feature']} ({m['check']}): {m['comparator']} {m['distance']:.4f} > {m['threshold']}")
    if summary["retraining"] is not None:
        lines.append(f"  retraining: {summary['retraining']['mode']} ({'; '.join(summary['retraining']['reasons'])})")
    gate = summary["model_gate"]
    if gate is not None:
        against = "absolute thresholds and the blessed baseline" if gate["compared_with_baseline"] else "absolute thresholds (no blessed baseline yet)"
        lines.append(f"  model gate: {'passed' if gate['passed'] else 'BLOCKED'} ({against})")
        for failure in gate["failures"]:
            lines.append(f"    - {failure['metric']} on {failure['slice'] or 'every slice'} = {failure['value']}, "
                         f"threshold {json.dumps(failure['threshold'])}")
        overall = gate["metrics"].get(OVERALL, {})
        values = {name: value for name, value in overall.items() if not name.endswith(CHANGE)}
        if values:
            lines.append("  metrics (eval split, overall): "
                         + ", ".join(f"{name} {value:.4f}" for name, value in sorted(values.items())))
        fairness = gate.get("fairness")
        if fairness:
            lines.append(f"  slices: {fairness['slices']} reported in {fairness['table']} and {fairness['chart']}")
            small = fairness["not_gated"]
            if small:
                shown = ", ".join(small[:8]) + (f" and {len(small) - 8} more" if len(small) > 8 else "")
                lines.append(f"    not gated (under {fairness['min_slice_size']} examples): {shown}")
        changes = {name.removesuffix(CHANGE): value for name, value in overall.items() if name.endswith(CHANGE)}
        if changes:
            lines.append("  change vs baseline: " + ", ".join(f"{name} {value:+.4f}" for name, value in sorted(changes.items())))
    gate = summary["serving_gate"]
    if gate is not None:
        report = gate["report"]
        measured = ", ".join(f"{label} {report[key]}" for key, label in (
            ("load_seconds", "load s"), ("latency_ms_p50", "one-row p50 ms"), ("latency_ms_p99", "p99 ms"),
            ("warmup_requests", "warmup requests"), ("canary_rows", "canary rows")) if key in report)
        lines.append(f"  serving validation: {'passed' if gate['passed'] else 'BLOCKED'}" + (f" ({measured})" if measured else ""))
        for problem in report.get("problems", []):
            lines.append(f"    - {problem}")
    push = summary["push"]
    lines.append(f"  pushed: {push['path']}" if push["pushed"] else f"  not pushed: {push['reason'] or 'no model was trained'}")
    lines.append(f"  log: {summary['log_file']}")
    return "\n".join(lines)
