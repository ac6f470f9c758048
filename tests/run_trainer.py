"""TFX's Trainer executor (GenericExecutor, our run_fn) in a process of its own, as an orchestrator's worker
runs it: `python run_trainer.py '<json>'` with the artifacts' URIs, the Trainer's settings and how many
logical CPU devices to make first (they can only be made before TensorFlow starts). TF_CONFIG, for
multi_worker, comes from the environment."""
import json
import os
import sys

import tensorflow as tf
from tfx.components.trainer.executor import GenericExecutor
from tfx.types import standard_artifacts


def artifact(kind, uri: str, **properties):
    made = kind()
    made.uri = uri
    for name, value in properties.items():
        setattr(made, name, value)
    return made


def main(arguments: dict) -> None:
    tf.get_logger().setLevel("INFO")   # the strategy and its devices, as TensorFlow logs them
    [cpu] = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * arguments["cpus"])
    inputs = {"examples": [artifact(standard_artifacts.Examples, arguments["examples"],
                                    split_names=json.dumps(["train", "eval"]))],
              "transform_graph": [artifact(standard_artifacts.TransformGraph, arguments["transform_graph"])]}
    outputs = {"model": [artifact(standard_artifacts.Model, arguments["model"])],
               "model_run": [artifact(standard_artifacts.ModelRun, arguments["model_run"])]}
    properties = {"run_fn": "components.trainer.run_fn", "custom_config": json.dumps(arguments["settings"]),
                  "train_args": json.dumps({"num_steps": arguments["train_steps"]}),
                  "eval_args": json.dumps({"num_steps": arguments["eval_steps"]})}
    for output in outputs.values():   # as TFX's launcher does before an executor runs
        os.makedirs(output[0].uri, exist_ok=True)
    GenericExecutor().Do(inputs, outputs, properties)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
