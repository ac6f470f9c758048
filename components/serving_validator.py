"""ServingValidator: the candidate is loaded and queried as TF Serving would, before the Pusher.

In the spirit of TFX's InfraValidator, which needs Docker or Kubernetes to start a model server:
here the SavedModel is loaded in a fresh Python process (components.serving_check), its warmup file
is replayed and the Trainer's canary rows go through both serving signatures as
`tensorflow_serving.apis` PredictRequests. The outcome is a standard InfraBlessing (`blessed` 1/0),
which TFX's Pusher already refuses to push without; `serving_validation.json` holds the load time,
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
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from components.contracts import SERVING_REASON_KEY
from components.trainer import CANARY_FILE

REPORT_FILE = "serving_validation.json"
BLESSED_KEY = "blessed"  # what TFX's Pusher reads (model_utils.is_infra_validated)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _limit_problems(report: dict, settings: dict) -> list[str]:
    problems = []
    if report.get("load_seconds", 0) > settings["max_load_seconds"]:
        problems.append(f"loading took {report['load_seconds']:.1f} s (limit {settings['max_load_seconds']:g} s)")
    if report.get("latency_ms_p99", 0) > settings["max_latency_ms"]:
        problems.append(f"one-row p99 latency {report['latency_ms_p99']:.2f} ms (limit {settings['max_latency_ms']:g} ms)")
    return problems


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        model = artifact_utils.get_single_instance(input_dict["model"])
        model_run = artifact_utils.get_single_instance(input_dict["model_run"])
        model_blessing = artifact_utils.get_single_instance(input_dict["model_blessing"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        settings = json.loads(exec_properties["settings"])
        blessing.set_int_custom_property("current_model_id", model.id)
        report_file = os.path.join(blessing.uri, REPORT_FILE)
        if not model_utils.is_model_blessed(model_blessing):
            self._decide(blessing, ["not blessed by the Evaluator, so not loaded"], {})
            return
        completed = subprocess.run(
            [sys.executable, "-m", "components.serving_check", path_utils.serving_model_path(model.uri),
             os.path.join(model_run.uri, CANARY_FILE), report_file,
             "--settings", json.dumps(settings), "--model-name", exec_properties["model_name"]],
            cwd=REPO, capture_output=True, text=True)
        if completed.returncode != 0 or not os.path.exists(report_file):
            last_lines = " | ".join(completed.stderr.strip().splitlines()[-3:])
            self._decide(blessing, [f"the model did not load and answer in a fresh process (exit {completed.returncode}): "
                                    f"{last_lines}"], {})
            return
        report = json.loads(io_utils.read_string_file(report_file))
        self._decide(blessing, report["problems"] + _limit_problems(report, settings), report)

    @staticmethod
    def _decide(blessing, problems: list[str], report: dict) -> None:
        report = {**report, "problems": problems, "blessed": not problems}
        io_utils.write_string_file(os.path.join(blessing.uri, REPORT_FILE), json.dumps(report, indent=1))
        io_utils.write_string_file(os.path.join(blessing.uri, "INFRA_NOT_BLESSED" if problems else "INFRA_BLESSED"), "")
        blessing.set_int_custom_property(BLESSED_KEY, 0 if problems else 1)
        blessing.set_string_custom_property(SERVING_REASON_KEY, "; ".join(problems))
        for key in ("load_seconds", "latency_ms_p50", "latency_ms_p99"):
            if key in report:
                blessing.set_float_custom_property(key, report[key])


class ServingValidatorSpec(types.ComponentSpec):
    PARAMETERS = {
        "settings": ExecutionParameter(type=str),     # JSON: transform settings, tolerance and limits
        "model_name": ExecutionParameter(type=str),
    }
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
                 settings: dict, model_name: str):
        super().__init__(spec=ServingValidatorSpec(
            model=model, model_run=model_run, model_blessing=model_blessing,
            settings=json.dumps(settings, sort_keys=True), model_name=model_name,
            blessing=types.Channel(type=standard_artifacts.InfraBlessing)))
