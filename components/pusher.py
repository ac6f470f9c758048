"""Pusher executor: TFX's Pusher checks (model and serving blessings), with an atomic push into TF
Serving's model base and its deployment bundle (components/serving_base.py says how and why).

The PushedModel records, besides TFX's own properties, the Model it serves (MODEL_ID_KEY) and the
SavedModel folder copied in (MODEL_PATH_KEY), so `rollback` can push an earlier one again from ML
Metadata alone.
"""
from __future__ import annotations

import json
import os

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils

from components.artifacts import single
from components.contracts import BUNDLE_PREFIX, MODEL_ID_KEY, MODEL_PATH_KEY, PUSH_FILE
from components.serving_base import push_version, remove_staging
from components.settings import ServingSection


class Executor(pusher_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        [model_push] = single(output_dict, specs.PUSHED_MODEL_KEY)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[specs.PUSH_DESTINATION_KEY], destination)
        model_base = destination.filesystem.base_directory
        remove_staging(model_base)
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        [model] = single(input_dict, specs.MODEL_KEY)
        serving = ServingSection.model_validate_json(exec_properties[specs.CUSTOM_CONFIG_KEY])
        model_path = self.GetModelPath(input_dict)
        version, serving_path = push_version(model_path, model_base, serving)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        model_push.set_int_custom_property(MODEL_ID_KEY, model.id)
        model_push.set_string_custom_property(MODEL_PATH_KEY, model_path)
        fileio.makedirs(model_push.uri)
        with fileio.open(os.path.join(model_push.uri, PUSH_FILE), "w") as handle:
            handle.write(json.dumps({"model": model.uri, "version": version, "serving_path": serving_path,
                                     "bundle": os.path.join(model_base, BUNDLE_PREFIX + version)}, indent=1))
        logging.info("Model pushed to %s", serving_path)


class AtomicPusher(tfx.components.Pusher):
    """TFX's Pusher component with the executor above; its custom_config is the `serving:` section."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
