"""CandidateVerdict: what became of this run's candidate model, kept in ML Metadata for the runs after it.

The last component of a run that trained. Its artifact records the span and the retraining mode
the candidate was made for, whether it was pushed, and if not which gate rejected it and why.
The next runs read the rejected verdicts (through the blessed-model resolver) and escalate instead
of repeating themselves: a rejected fine-tune makes the next run on that span a full retrain, a
rejected full retrain makes the runs on that span skip (components/retrain_policy.py). Only under
the same settings: the verdict carries the digest of the settings the candidate and its gates
depended on, so a user who changes a gate or the model gets a new attempt. A model gate's rejection lists its
failed gap gates apart (`gaps`), and the verdict says whether the candidate trained with MinDiff: with
fairness.remediation, a gap failure without MinDiff is tried again with it (components/remediation.py).
"""
from __future__ import annotations

import json

from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter

from components.artifacts import RetrainDecision, Verdict, single
from components.contracts import (MIN_DIFF_KEY, MODE_KEY, MODEL_GATE, PUSHED_KEY, REJECTIONS_KEY, RUN_KEY, SERVING_GATE,
                                  SERVING_REASON_KEY, SETTINGS_DIGEST_KEY, SPAN_KEY)
from components.validation_result import GAP, describe_failure, gate_failures


def rejections(model_blessed: bool, failures: list[dict], serving_blessed: bool, serving_reason: str) -> list[dict]:
    """The gates that said no, in the pipeline's order; the serving gate only counts once the model gate passed.
    `failures`: the evaluation's gate_failures."""
    if not model_blessed:
        return [{"gate": MODEL_GATE,
                 "reasons": [describe_failure(f) for f in failures] or ["the Evaluator did not bless the model"],
                 "gaps": [describe_failure(f) for f in failures if f["metric"].endswith(GAP)]}]
    if not serving_blessed:
        return [{"gate": SERVING_GATE, "reasons": [serving_reason or "serving validation failed"]}]
    return []


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        [verdict] = single(output_dict, "verdict")
        decision, model_blessing, infra_blessing, pushed, evaluation = single(
            input_dict, "decision", "model_blessing", "infra_blessing", "pushed_model", "evaluation")
        rejected = rejections(
            model_utils.is_model_blessed(model_blessing),
            gate_failures(evaluation.uri),
            model_utils.is_infra_validated(infra_blessing),
            infra_blessing.get_string_custom_property(SERVING_REASON_KEY))
        verdict.set_int_custom_property(SPAN_KEY, decision.get_int_custom_property(SPAN_KEY))
        verdict.set_string_custom_property(MODE_KEY, decision.get_string_custom_property(MODE_KEY))
        verdict.set_string_custom_property(SETTINGS_DIGEST_KEY, decision.get_string_custom_property(SETTINGS_DIGEST_KEY))
        verdict.set_int_custom_property(MIN_DIFF_KEY, decision.get_int_custom_property(MIN_DIFF_KEY))
        verdict.set_int_custom_property(PUSHED_KEY, pushed.get_int_custom_property(PUSHED_KEY))
        verdict.set_string_custom_property(REJECTIONS_KEY, json.dumps(rejected))
        verdict.set_string_custom_property(RUN_KEY, self._context.pipeline_run_id or "")


class CandidateVerdictSpec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {
        "decision": ChannelParameter(type=RetrainDecision),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
        "evaluation": ChannelParameter(type=standard_artifacts.ModelEvaluation),
        "infra_blessing": ChannelParameter(type=standard_artifacts.InfraBlessing),
        "pushed_model": ChannelParameter(type=standard_artifacts.PushedModel),
    }
    OUTPUTS = {"verdict": ChannelParameter(type=Verdict)}


class CandidateVerdict(base_component.BaseComponent):
    SPEC_CLASS = CandidateVerdictSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, decision, model_blessing, evaluation, infra_blessing, pushed_model):
        super().__init__(spec=CandidateVerdictSpec(
            decision=decision, model_blessing=model_blessing, evaluation=evaluation,
            infra_blessing=infra_blessing, pushed_model=pushed_model,
            verdict=types.Channel(type=Verdict)))
