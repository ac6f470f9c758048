"""RetrainPolicy: decides, for the newest span, to skip, fine-tune or fully retrain, and says why.

The decision is an artifact (RetrainDecision) whose custom property `mode` drives the Cond
blocks of the pipeline; `reasons` (JSON list of sentences) goes to ML Metadata and the summary.
  - skip:         the data gate blocked the span; or the span is not newer than the blessed
                  model's data; or the policy is `never` and a model is blessed;
  - full_retrain: no blessed model yet, policy `always_full`, a schema change, drift over a
                  threshold, or `full_retrain_every_n_spans` spans since the graph was analysed;
  - fine_tune:    otherwise: warm start from the blessed model through its own transform graph.
"""
import json

import tensorflow_transform as tft
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils

from components.blessed_lineage import spans
from components.data_gate import BLESSED_KEY, DataGateResult
from components.drift_check import DriftReport

MODE_KEY = "mode"
SKIP, FINE_TUNE, FULL_RETRAIN = "skip", "fine_tune", "full_retrain"


class RetrainDecision(types.Artifact):
    """How this run retrains (custom property `mode`) and why (`reasons`)."""

    TYPE_NAME = "RetrainDecision"


def decide(policy: str, every_n: int, span: int, baseline_spans: list[int], analysed_spans: list[int],
           schema_changed: bool, drifted: list[str], data_blocked: bool = False) -> tuple[str, list[str]]:
    if data_blocked:
        return SKIP, [f"the data gate blocked span {span}"]
    if not baseline_spans:
        return FULL_RETRAIN, ["no blessed model yet"]
    if span <= max(baseline_spans):
        return SKIP, [f"span {span} is not newer than the blessed model's data (spans {baseline_spans})"]
    if policy == "never":
        return SKIP, ["retraining.policy is 'never': the blessed model stays"]
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


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        decision = artifact_utils.get_single_instance(output_dict["decision"])
        span = max(spans(input_dict["examples"]))
        report = artifact_utils.get_single_instance(input_dict["drift_report"])
        drifted = json.loads(report.get_string_custom_property("drifted_features") or "[]")
        graphs = input_dict.get("baseline_transform_graph") or []
        schema_changed = False
        if graphs:
            schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(
                artifact_utils.get_single_uri(input_dict["schema"])))
            schema_changed = tft.TFTransformOutput(graphs[0].uri).raw_metadata.schema != schema
        gate = artifact_utils.get_single_instance(input_dict["data_gate"])
        mode, reasons = decide(
            exec_properties["policy"], exec_properties["full_retrain_every_n_spans"], span,
            spans(input_dict.get("baseline_examples") or []), spans(input_dict.get("analysed_examples") or []),
            schema_changed, drifted, data_blocked=gate.get_int_custom_property(BLESSED_KEY) != 1)
        decision.set_string_custom_property(MODE_KEY, mode)
        decision.set_string_custom_property("reasons", json.dumps(reasons))
        decision.set_int_custom_property("span", span)


class RetrainPolicySpec(types.ComponentSpec):
    PARAMETERS = {
        "policy": ExecutionParameter(type=str),
        "full_retrain_every_n_spans": ExecutionParameter(type=int),
    }
    INPUTS = {
        "examples": ChannelParameter(type=standard_artifacts.Examples),
        "schema": ChannelParameter(type=standard_artifacts.Schema),
        "data_gate": ChannelParameter(type=DataGateResult),
        "drift_report": ChannelParameter(type=DriftReport),
        "baseline_examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "analysed_examples": ChannelParameter(type=standard_artifacts.Examples, optional=True),
        "baseline_transform_graph": ChannelParameter(type=standard_artifacts.TransformGraph, optional=True),
    }
    OUTPUTS = {"decision": ChannelParameter(type=RetrainDecision)}


class RetrainPolicy(base_component.BaseComponent):
    SPEC_CLASS = RetrainPolicySpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, examples, schema, data_gate, drift_report, baseline_examples, analysed_examples,
                 baseline_transform_graph, policy: str, full_retrain_every_n_spans: int):
        super().__init__(spec=RetrainPolicySpec(
            examples=examples, schema=schema, data_gate=data_gate, drift_report=drift_report,
            baseline_examples=baseline_examples,
            analysed_examples=analysed_examples, baseline_transform_graph=baseline_transform_graph,
            policy=policy, full_retrain_every_n_spans=full_retrain_every_n_spans,
            decision=types.Channel(type=RetrainDecision),
        ))
