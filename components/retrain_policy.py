"""RetrainPolicy: decides, for the newest span, to skip, fine-tune or fully retrain, and says why.

The decision is an artifact (RetrainDecision) whose custom property MODE_KEY drives the Cond
blocks of the pipeline; REASONS_KEY (JSON list of sentences), the model that serves and the spans it
lags, and the span's rejected candidates go to ML Metadata and the summary.
  - skip:         the data gate blocked the span; or a full retrain on this span was rejected under
                  the same settings (it would only be rejected again: the served model stays until a
                  new span arrives, or the settings change);
                  or the span is not newer than the blessed model's data; or the policy is `never`
                  and a model is blessed;
  - full_retrain: no blessed model yet, a fine-tuned candidate for this span was rejected under the
                  same settings (escalation),
                  policy `always_full`, a schema change, drift over a threshold, or
                  `full_retrain_every_n_spans` spans since the graph was analysed;
  - fine_tune:    otherwise: warm start from the blessed model through its own transform graph.
With fairness.remediation, the decision also says whether the candidate trains with MinDiff (MIN_DIFF_KEY, and
the Trainer's training options): always, or once a candidate of the span failed a gap gate; that candidate then
does not count for the escalation, so the same mode is tried once with MinDiff (components/remediation.py).
"""
import json
import os

import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components import remediation
from components.artifacts import DataGateResult, DriftReport, RetrainDecision, Verdict, single
from components.blessed_lineage import spans
from components.contracts import (BLESSED_KEY, DRIFTED_FEATURES_KEY, FINE_TUNE, FULL_RETRAIN, MIN_DIFF_KEY, MODE_KEY,
                                  REASONS_KEY, REJECTED_KEY, REJECTIONS_KEY, RUN_KEY, SERVING_KEY, SETTINGS_DIGEST_KEY,
                                  SETTINGS_KEY, SKIP, SPAN_KEY, TRAINING_OPTIONS_FILE)
from components.settings import RetrainPolicySettings


def _rejected_runs(rejected: list[dict]) -> str:
    return "; ".join(f"run {r['run_id']}: {', '.join(g['gate'] + ' gate' for g in r['rejections'])}" for r in rejected)


def decide(policy: str, every_n: int, span: int, baseline_spans: list[int], analysed_spans: list[int],
           schema_changed: bool, drifted: list[str], data_blocked: bool = False,
           rejected: list[dict] = ()) -> tuple[str, list[str]]:
    """`rejected`: this span's rejected candidates, {"run_id", "mode", "rejections"} each."""
    if data_blocked:
        return SKIP, [f"the data gate blocked span {span}"]
    by_mode = {mode: [r for r in rejected if r["mode"] == mode] for mode in (FINE_TUNE, FULL_RETRAIN)}
    if by_mode[FULL_RETRAIN]:
        return SKIP, [f"a full retrain on span {span} was rejected ({_rejected_runs(by_mode[FULL_RETRAIN])}); "
                      f"the served model stays until a new span arrives"]
    if not baseline_spans:
        return FULL_RETRAIN, ["no blessed model yet"]
    if span <= max(baseline_spans):
        return SKIP, [f"span {span} is not newer than the blessed model's data (spans {baseline_spans})"]
    if policy == "never":
        return SKIP, ["retraining.policy is 'never': the blessed model stays"]
    if by_mode[FINE_TUNE]:
        return FULL_RETRAIN, [f"the fine-tuned candidate for span {span} was rejected "
                              f"({_rejected_runs(by_mode[FINE_TUNE])}): escalating to a full retrain"]
    if policy == "always_full":
        return FULL_RETRAIN, ["retraining.policy is 'always_full'"]
    reasons = []
    if schema_changed:
        reasons.append("the schema differs from the one the blessed model's transform graph was built with")
    if drifted:
        reasons.append(f"drift over threshold in: {', '.join(drifted)}")
    if every_n and analysed_spans and span - max(analysed_spans) >= every_n:
        reasons.append(f"{span - max(analysed_spans)} spans since the transform graph was analysed "
                       f"(full_retrain_every_n_spans: {every_n})")
    if reasons:
        return FULL_RETRAIN, reasons
    return FINE_TUNE, [f"span {span} is new and no feature drifted over its threshold"]


def rejected_on(verdicts: list[types.Artifact], span: int, settings_digest: str) -> list[dict]:
    """The rejected candidates (verdicts) made for this span under these settings, oldest first."""
    return [{"run_id": v.get_string_custom_property(RUN_KEY), "mode": v.get_string_custom_property(MODE_KEY),
             "min_diff": v.get_int_custom_property(MIN_DIFF_KEY) == 1,
             "rejections": json.loads(v.get_string_custom_property(REJECTIONS_KEY) or "[]")}
            for v in sorted(verdicts, key=lambda v: v.id)
            if v.get_int_custom_property(SPAN_KEY) == span
            and v.get_string_custom_property(SETTINGS_DIGEST_KEY) == settings_digest]


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        settings = RetrainPolicySettings.model_validate_json(exec_properties[SETTINGS_KEY])
        decision, options = single(output_dict, "decision", "training_options")
        report, gate = single(input_dict, "drift_report", "data_gate")
        span = max(spans(input_dict["examples"]))
        drifted = json.loads(report.get_string_custom_property(DRIFTED_FEATURES_KEY) or "[]")
        graphs = input_dict.get("baseline_transform_graph") or []
        schema_changed = False
        if graphs:
            schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
                artifact_utils.get_single_uri(input_dict["schema"])))
            schema_changed = tft.TFTransformOutput(graphs[0].uri).raw_metadata.schema != schema
        baseline_spans = spans(input_dict.get("baseline_examples") or [])
        digest = settings.settings_digest
        rejected = rejected_on(input_dict.get("rejected_verdicts") or [], span, digest)
        min_diff, min_diff_reasons = remediation.with_min_diff(settings.remediation_when, rejected)
        mode, reasons = decide(
            settings.policy, settings.full_retrain_every_n_spans, span,
            baseline_spans, spans(input_dict.get("analysed_examples") or []),
            schema_changed, drifted, data_blocked=gate.get_int_custom_property(BLESSED_KEY) != 1,
            rejected=remediation.counted_for_escalation(rejected, min_diff))
        min_diff = min_diff and mode != SKIP
        reasons += min_diff_reasons if min_diff else []
        models = input_dict.get("baseline_model") or []
        serving = {"model_id": models[0].id if models else None, "model_uri": models[0].uri if models else None,
                   "trained_on_spans": baseline_spans,
                   "lags_span": span if not baseline_spans or span > max(baseline_spans) else None}
        decision.set_string_custom_property(MODE_KEY, mode)
        decision.set_string_custom_property(REASONS_KEY, json.dumps(reasons))
        decision.set_int_custom_property(SPAN_KEY, span)
        decision.set_string_custom_property(SERVING_KEY, json.dumps(serving))
        decision.set_string_custom_property(REJECTED_KEY, json.dumps(rejected))
        decision.set_string_custom_property(SETTINGS_DIGEST_KEY, digest)
        decision.set_int_custom_property(MIN_DIFF_KEY, int(min_diff))
        io_utils.write_string_file(os.path.join(options.uri, TRAINING_OPTIONS_FILE), json.dumps({"min_diff": min_diff}))


class RetrainPolicySpec(types.ComponentSpec):
    PARAMETERS = {SETTINGS_KEY: ExecutionParameter(type=str)}   # RetrainPolicySettings as JSON
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "data_gate": ChannelParameter(type=DataGateResult),
        "drift_report": ChannelParameter(type=DriftReport),
        "baseline_model": ChannelParameter(type=standard_artifacts.Model, optional=True),
        "baseline_examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "analysed_examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "baseline_transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph, optional=True),
        "rejected_verdicts": ChannelParameter(type=Verdict, optional=True),
    }
    # training_options: what the Trainers are told at run time (TFX hands a Trainer's `hyperparameters` input to
    # run_fn as fn_args.hyperparameters); their custom_config is fixed when the pipeline is built.
    OUTPUTS = {"decision": ChannelParameter(type=RetrainDecision),
               "training_options": ChannelParameter(type=standard_artifacts.HyperParameters)}


class RetrainPolicy(base_component.BaseComponent):
    SPEC_CLASS = RetrainPolicySpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, schema, data_gate, drift_report, baseline_model, baseline_examples, analysed_examples,
                 baseline_transform_graph, rejected_verdicts, settings: RetrainPolicySettings):
        super().__init__(spec=RetrainPolicySpec(
            examples=examples, schema=schema, data_gate=data_gate, drift_report=drift_report,
            baseline_model=baseline_model, baseline_examples=baseline_examples,
            analysed_examples=analysed_examples, baseline_transform_graph=baseline_transform_graph,
            rejected_verdicts=rejected_verdicts,
            settings=settings.model_dump_json(),
            decision=types.Channel(type=RetrainDecision),
            training_options=types.Channel(type=standard_artifacts.HyperParameters),
        ))
