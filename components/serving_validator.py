"""ServingValidator: the candidate is loaded and queried as TF Serving would, before the Pusher.

In the spirit of TFX's InfraValidator, which needs Docker or Kubernetes to start a model server:
here the SavedModel is loaded in a fresh Python process (components.serving_check), its warmup file
is replayed and the Trainer's canary rows go through both serving signatures as
`tensorflow_serving.apis` PredictRequests. The outcome is a standard InfraBlessing (BLESSED_KEY 1/0),
which TFX's Pusher already refuses to push without; SERVING_REPORT_FILE holds the load time,
latencies and every problem, and SERVING_REASON_KEY says why a model was refused.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tfx import types
from tfx.components.util import model_utils
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components.artifacts import single
from components.contracts import (BLESSED_KEY, CANARY_FILE, CURRENT_MODEL_ID_KEY, SERVING_REASON_KEY,
                                  SERVING_REPORT_FILE, SETTINGS_KEY)
from components.settings import ServingValidation, ServingValidatorSettings


def _limit_problems(report: dict, limits: ServingValidation) -> list[str]:
    problems = []
    if report.get("load_seconds", 0) > limits.max_load_seconds:
        problems.append(f"loading took {report['load_seconds']:.1f} s (limit {limits.max_load_seconds:g} s)")
    if report.get("latency_ms_p99", 0) > limits.max_latency_ms:
        problems.append(f"one-row p99 latency {report['latency_ms_p99']:.2f} ms (limit {limits.max_latency_ms:g} ms)")
    return problems


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        model, model_run, model_blessing = single(input_dict, "model", "model_run", "model_blessing")
        [blessing] = single(output_dict, "blessing")
        settings = ServingValidatorSettings.model_validate_json(exec_properties[SETTINGS_KEY])
        blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
        report_file = os.path.join(blessing.uri, SERVING_REPORT_FILE)
        if not model_utils.is_model_blessed(model_blessing):
            self._decide(blessing, ["not blessed by the Evaluator, so not loaded"], {})
            return
        completed = subprocess.run(
            [sys.executable, "-m", "components.serving_check", path_utils.serving_model_path(model.uri),
             os.path.join(model_run.uri, CANARY_FILE), report_file, "--settings", settings.model_dump_json()],
            capture_output=True, text=True)
        if completed.returncode != 0 or not os.path.exists(report_file):
            last_lines = " | ".join(completed.stderr.strip().splitlines()[-3:])
            self._decide(blessing, [f"the model did not load and answer in a fresh process (exit {completed.returncode}): "
                                    f"{last_lines}"], {})
            return
        report = json.loads(io_utils.read_string_file(report_file))
        self._decide(blessing, report["problems"] + _limit_problems(report, settings.validation), report)

    @staticmethod
    def _decide(blessing, problems: list[str], report: dict) -> None:
        report = {**report, "problems": problems, "blessed": not problems}
        io_utils.write_string_file(os.path.join(blessing.uri, SERVING_REPORT_FILE), json.dumps(report, indent=1))
        io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_NOT_BLESSED" if problems else "INFRA_BLESSED"), "")
        blessing.set_int_custom_property(BLESSED_KEY, 0 if problems else 1)
        blessing.set_string_custom_property(SERVING_REASON_KEY, "; ".join(problems))
        for key in ("load_seconds", "latency_ms_p50", "latency_ms_p99"):
            if key in report:
                blessing.set_float_custom_property(key, report[key])


class ServingValidatorSpec(types.ComponentSpec):
    PARAMETERS = {SETTINGS_KEY: ExecutionParameter(type=str)}   # ServingValidatorSettings as JSON
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "model_run": ChannelParameter(type=standard_artifacts.ModelRun),
        "model_blessing": ChannelParameter(type=standard_artifacts.ModelBlessing),
    }
    OUTPUTS = {"blessing": ChannelParameter(type=standard_artifacts.InfraBlessing)}


class ServingValidator(base_component.BaseComponent):
    SPEC_CLASS = ServingValidatorSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, model_run: types.BaseChannel, model_blessing: types.BaseChannel,
                 settings: ServingValidatorSettings):
        super().__init__(spec=ServingValidatorSpec(
            model=model, model_run=model_run, model_blessing=model_blessing, settings=settings.model_dump_json(),
            blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
