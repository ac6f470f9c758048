"""DataGate: turns ExampleValidator's anomalies into a pass/block decision recorded in ML Metadata.

The decision is an artifact (DataGateResult) with custom properties BLESSED_KEY (1/0) and
PROBLEM_COUNT_KEY; downstream components run under a Cond on `blessed`, so blocked data never
reaches Transform, Trainer or Pusher. PROBLEMS_FILE in the artifact lists each problem in
plain words: feature, problem, details (TFDV's description names the offending values).
"""
import json
import os

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter
from tfx.utils import io_utils
from tensorflow_metadata.proto.v0 import anomalies_pb2

from components.artifacts import DataGateResult
from components.contracts import BLESSED_KEY, PROBLEM_COUNT_KEY, PROBLEMS_FILE, SPAN_KEY


def describe_anomalies(anomalies: anomalies_pb2.Anomalies, split: str) -> list[dict]:
    problems = []
    for feature, info in sorted(anomalies.anomaly_info.items()):
        for reason in info.reason or [None]:
            problems.append({
                "split": split,
                "feature": feature,
                "problem": reason.short_description if reason else info.short_description,
                "details": reason.description if reason else info.description,
            })
    if anomalies.HasField("dataset_anomaly_info"):
        for reason in anomalies.dataset_anomaly_info.reason:
            problems.append({"split": split, "feature": "(whole data set)",
                             "problem": reason.short_description, "details": reason.description})
    return problems


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties):
        anomalies_artifact = artifact_utils.get_single_instance(input_dict["anomalies"])
        result = artifact_utils.get_single_instance(output_dict["result"])
        problems = []
        for split in artifact_utils.decode_split_names(anomalies_artifact.split_names):
            path = os.path.join(artifact_utils.get_split_uri([anomalies_artifact], split), "SchemaDiff.pb")
            anomalies = anomalies_pb2.Anomalies()
            anomalies.ParseFromString(io_utils.read_bytes_file(path))
            problems.extend(describe_anomalies(anomalies, split))
        io_utils.write_string_file(os.path.join(result.uri, PROBLEMS_FILE), json.dumps(problems, indent=1))
        result.set_int_custom_property(BLESSED_KEY, 0 if problems else 1)
        result.set_int_custom_property(PROBLEM_COUNT_KEY, len(problems))
        result.set_int_custom_property(SPAN_KEY, anomalies_artifact.span)


class DataGateSpec(types.ComponentSpec):
    PARAMETERS = {}
    INPUTS = {"anomalies": ChannelParameter(type=standard_artifacts.ExampleAnomalies)}
    OUTPUTS = {"result": ChannelParameter(type=DataGateResult)}


class DataGate(base_component.BaseComponent):
    SPEC_CLASS = DataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, anomalies: types.BaseChannel):
        super().__init__(spec=DataGateSpec(anomalies=anomalies, result=types.Channel(type=DataGateResult)))
