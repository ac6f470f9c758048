"""The run summary: gates passed or failed and why, metrics, and where the model went.

Read from ML Metadata (ml_metadata alone) and the artifacts' files, by the names in components/contracts.py;
TFMA is imported only to read an evaluation's metrics and validation result.
"""
from __future__ import annotations

import json
import pathlib
from dataclasses import asdict

from components.contracts import (
    BASELINE_MODEL_KEY, BLESSED_KEY, CANDIDATE_VERDICT, DATA_GATE, DATA_GATE_RESULT, DRIFT_CHECK, DRIFT_REPORT,
    DRIFT_REPORT_FILE, DRIFTED_FEATURES_KEY, EVALUATOR, EXAMPLE_STATISTICS, FAIRNESS_REPORT_CSV, FAIRNESS_REPORT_JSON,
    FAIRNESS_REPORT_PNG, FINE_TUNE_TRAINER, FULL_RETRAIN, HAS_BASELINE_KEY, HISTORY_FILE, INFRA_BLESSING, MIN_DIFF_KEY,
    MODE_KEY, MODEL_BLESSING, MODEL_EVALUATION, MODEL_RUN, PROBLEMS_FILE, PUSHED_DESTINATION_KEY, PUSHED_KEY,
    PUSHED_MODEL, PUSHED_VERSION_KEY, PUSHER, REASONS_KEY, REJECTED_KEY, REJECTIONS_KEY, RETRAIN_DECISION,
    RETRAIN_POLICY, SERVING_KEY, SERVING_REASON_KEY, SERVING_REPORT_FILE, SERVING_VALIDATOR, SKEWED_FEATURES_KEY, SKIP,
    STATISTICS_GEN, TRAINER, VERDICT)
from components import remediation
from components.evaluation import OVERALL, display_name, slice_key_name
from components.validation_result import CHANGE, describe_failure, gate_failures
from pipeline import metadata_store
from pipeline.config import PipelineConfig

def evaluation_metrics(evaluation_uri: str) -> dict[str, dict[str, float]]:
    """Candidate model's scalar metrics per slice, read from TFMA's output."""
    import tensorflow_model_analysis as tfma

    per_slice: dict[str, dict[str, float]] = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        if metrics_for_slice.HasField("cross_slice_key"):  # differences between slices: gates, not metrics
            continue
        values = per_slice.setdefault(slice_key_name(metrics_for_slice.slice_key), {})
        for entry in metrics_for_slice.metric_keys_and_values:
            key = entry.key
            if key.model_name == "baseline" or key.HasField("sub_key") or entry.value.WhichOneof("type") != "double_value":
                continue
            name = display_name(key.name) + (CHANGE if key.is_diff else "")
            values[name] = round(entry.value.double_value.value, 6)
    return per_slice


def fairness_report(evaluation_uri: str) -> dict | None:
    """Where the per-slice table and chart are, and which slices were too small to gate."""
    folder = pathlib.Path(evaluation_uri)
    if not (folder / FAIRNESS_REPORT_JSON).exists():
        return None
    report = json.loads((folder / FAIRNESS_REPORT_JSON).read_text())
    return {
        "table": str(folder / FAIRNESS_REPORT_CSV), "json": str(folder / FAIRNESS_REPORT_JSON),
        "chart": str(folder / FAIRNESS_REPORT_PNG),
        "slices": len(report["slices"]), "min_slice_size": report["min_slice_size"],
        "not_gated": [f"{row['slice']} ({row['examples']})" for row in report["slices"] if not row["gated"]],
    }


def collect(config: PipelineConfig, run_id: str, timings, log_file: str, error: str = "",
            refused_files: list[dict] = (), with_evaluation: bool = True) -> dict:
    """The run's outcome from ML Metadata; `refused_files` (spans.refused_files) when the run was refused
    before ExampleGen, which the data gate reports. with_evaluation=False leaves out the evaluation's failures
    and metrics, the only facts read with TFMA: `status` collects many runs without TensorFlow."""
    outputs = metadata_store.run_outputs(config, run_id)

    def produced(node: str, type_name: str) -> list:
        return outputs.get(node, {}).get(type_name, [])

    summary = {
        "run_id": run_id,
        "pipeline": config.pipeline.name,
        "log_file": log_file,
        "components": [asdict(timing) for timing in timings],
        "trained_on_spans": metadata_store.spans_read_by(config, run_id, (TRAINER, FINE_TUNE_TRAINER)),
        "statistics": next((a.uri for a in produced(STATISTICS_GEN, EXAMPLE_STATISTICS)), None),
        "data_gate": None,
        "drift": None,
        "retraining": None,
        "verdict": None,
        "training": None,
        "model_gate": None,
        "serving_gate": None,
        "push": {"pushed": False, "path": None, "reason": ""},
    }
    if refused_files:
        summary["data_gate"] = {"passed": False, "problems": list(refused_files)}
    for result in produced(DATA_GATE, DATA_GATE_RESULT):
        problems = json.loads((pathlib.Path(result.uri) / PROBLEMS_FILE).read_text())
        summary["data_gate"] = {"passed": metadata_store.custom_int(result, BLESSED_KEY) == 1, "problems": problems}
    for report in produced(DRIFT_CHECK, DRIFT_REPORT):
        summary["drift"] = {
            "compared_with_blessed_model_data": metadata_store.custom_int(report, HAS_BASELINE_KEY) == 1,
            "drifted_features": json.loads(metadata_store.custom_str(report, DRIFTED_FEATURES_KEY) or "[]"),
            "skewed_features": json.loads(metadata_store.custom_str(report, SKEWED_FEATURES_KEY) or "[]"),
            "measurements": json.loads((pathlib.Path(report.uri) / DRIFT_REPORT_FILE).read_text()),
        }
    for decision in produced(RETRAIN_POLICY, RETRAIN_DECISION):
        summary["retraining"] = {
            "mode": metadata_store.custom_str(decision, MODE_KEY),
            "min_diff": metadata_store.custom_int(decision, MIN_DIFF_KEY) == 1,
            "reasons": json.loads(metadata_store.custom_str(decision, REASONS_KEY)),
            "serving": json.loads(metadata_store.custom_str(decision, SERVING_KEY) or "null"),
            "rejected_candidates": json.loads(metadata_store.custom_str(decision, REJECTED_KEY) or "[]"),
        }
    for verdict in produced(CANDIDATE_VERDICT, VERDICT):
        rejected = json.loads(metadata_store.custom_str(verdict, REJECTIONS_KEY) or "[]")
        next_mode, next_min_diff = None, False
        if rejected:   # this span's earlier rejections, then this one: what the next run's policy reads
            candidates = (summary["retraining"] or {}).get("rejected_candidates", []) + [{
                "run_id": run_id, "mode": metadata_store.custom_str(verdict, MODE_KEY),
                "min_diff": metadata_store.custom_int(verdict, MIN_DIFF_KEY) == 1, "rejections": rejected}]
            remedy = config.fairness.remediation
            next_mode, next_min_diff = remediation.next_run(candidates, remedy.when if remedy else None)
        summary["verdict"] = {
            "pushed": metadata_store.custom_int(verdict, PUSHED_KEY) == 1, "rejections": rejected,
            "next_run_on_this_span": next_mode, "next_run_min_diff": next_min_diff,
        }
    for trainer in (TRAINER, FINE_TUNE_TRAINER):
        for model_run in produced(trainer, MODEL_RUN):
            history = pathlib.Path(model_run.uri) / HISTORY_FILE
            summary["training"] = {"trainer": trainer,
                                   "history": json.loads(history.read_text()) if history.exists() else {}}
    for blessing in produced(EVALUATOR, MODEL_BLESSING):
        evaluation_uri = next(iter(a.uri for a in produced(EVALUATOR, MODEL_EVALUATION)), None)
        read = evaluation_uri if with_evaluation else None
        summary["model_gate"] = {
            "passed": metadata_store.custom_int(blessing, BLESSED_KEY) == 1,
            "compared_with_baseline": bool(metadata_store.custom_str(blessing, BASELINE_MODEL_KEY)),
            "failures": gate_failures(read) if read else [],
            "metrics": evaluation_metrics(read) if read else {},
            "fairness": fairness_report(evaluation_uri) if evaluation_uri else None,
        }
    for blessing in produced(SERVING_VALIDATOR, INFRA_BLESSING):
        report = pathlib.Path(blessing.uri) / SERVING_REPORT_FILE
        summary["serving_gate"] = {
            "passed": metadata_store.custom_int(blessing, BLESSED_KEY) == 1,
            "reason": metadata_store.custom_str(blessing, SERVING_REASON_KEY),
            "report": json.loads(report.read_text()) if report.exists() else {},
        }
    for pushed in produced(PUSHER, PUSHED_MODEL):
        if metadata_store.custom_int(pushed, PUSHED_KEY) == 1:
            summary["push"] = {"pushed": True, "path": metadata_store.custom_str(pushed, PUSHED_DESTINATION_KEY),
                               "version": metadata_store.custom_str(pushed, PUSHED_VERSION_KEY),
                               "reason": "blessed by every gate"}

    unresolved = [timing.name for timing in timings if timing.outcome == "failed"]
    if unresolved and not error:
        error = f"{', '.join(unresolved)} could not resolve its inputs (see the log)"
    if error:
        summary["status"] = "failed"
        summary["push"]["reason"] = f"the run failed: {error}"
    elif summary["data_gate"] and not summary["data_gate"]["passed"]:
        summary["status"] = "data_blocked"
        summary["push"]["reason"] = ("the span's files cannot be read as CSV; nothing was ingested" if refused_files else
                                     "the data gate found anomalies; nothing was transformed, trained or pushed")
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
            noise = f", noise limit {m['noise_limit']:.4f}" if m.get("noise_limit") is not None else ""
            lines.append(f"    - {m['feature']} ({m['check']}): {m['measure']} {m['value']:.4f} > {m['threshold']}{noise}")
    retraining = summary["retraining"]
    if retraining is not None:
        with_min_diff = " with MinDiff" if retraining.get("min_diff") else ""
        lines.append(f"  retraining: {retraining['mode']}{with_min_diff} ({'; '.join(retraining['reasons'])})")
        serving = retraining.get("serving") or {}
        if retraining["mode"] == SKIP and serving.get("lags_span") is not None:
            served = (f"model {serving['model_id']} (trained on spans {', '.join(map(str, serving['trained_on_spans']))})"
                      if serving.get("model_id") else "no model")
            lines.append(f"    serving: {served}, lagging span {serving['lags_span']}")
        for candidate in retraining.get("rejected_candidates", []):
            for rejection in candidate["rejections"]:
                lines.append(f"    rejected earlier: run {candidate['run_id']} ({candidate['mode']}"
                             f"{' with MinDiff' if candidate.get('min_diff') else ''}) by the "
                             f"{rejection['gate']} gate: {'; '.join(rejection['reasons'])}")
    gate = summary["model_gate"]
    if gate is not None:
        against = "absolute thresholds and the blessed baseline" if gate["compared_with_baseline"] else "absolute thresholds (no blessed baseline yet)"
        lines.append(f"  model gate: {'passed' if gate['passed'] else 'BLOCKED'} ({against})")
        for failure in gate["failures"]:
            lines.append(f"    - {describe_failure(failure)}")
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
    verdict = summary.get("verdict")
    if verdict and verdict["next_run_on_this_span"]:
        following = verdict["next_run_on_this_span"]
        decided = retraining or {}
        if verdict.get("next_run_min_diff") and following == decided.get("mode") and not decided.get("min_diff"):
            why = "(a gap gate failed: the same mode again, with MinDiff; fairness.remediation)"
        elif following == FULL_RETRAIN:
            why = "(escalation after a rejected fine-tune)"
        else:
            why = "(a rejected full retrain is not repeated; a new span starts afresh)"
        lines.append(f"  next run on this span: {following}{' with MinDiff' if verdict.get('next_run_min_diff') else ''} {why}")
    push = summary["push"]
    lines.append(f"  pushed: {push['path']}" if push["pushed"] else f"  not pushed: {push['reason'] or 'no model was trained'}")
    if summary["log_file"]:   # none under an orchestrator: each task's log is the orchestrator's
        lines.append(f"  log: {summary['log_file']}")
    return "\n".join(lines)
