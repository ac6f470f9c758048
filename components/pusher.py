"""Pusher executor: an atomic, reversible push into TF Serving's model base, with its deployment bundle.

TF Serving's file-system poller loads any folder of `<base>/<model>/` whose name is a number. TFX's
own Pusher copies file by file into `<version>/`, so an interrupted push leaves a partial version
that the poller may try to load. Here the version is written completely under a hidden staging
name (`.incoming-<version>`, never a number) and then renamed into place with one rename(2):
the poller sees no version or a whole one. Staging left by an interrupted push is removed by the
next push. Only the newest `versions_to_keep` versions stay.
"""
from __future__ import annotations

import json
import os
import shutil
import time

from absl import logging
from tfx import v1 as tfx
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components import deployment
from components.export import TPU_FUNCTION_ALIAS

STAGING_PREFIX = ".incoming-"
BUNDLE_PREFIX = "deploy-"
MODEL_ID_KEY = "model_id"        # PushedModel → the Model artifact it serves (rollback follows it)
PUSH_FILE = "push.json"


def versions(model_base: str) -> list[int]:
    """Version numbers TF Serving would see, oldest first."""
    if not os.path.isdir(model_base):
        return []
    return sorted(int(name) for name in os.listdir(model_base)
                  if name.isdigit() and os.path.isdir(os.path.join(model_base, name)))


def remove_staging(model_base: str) -> list[str]:
    """Remove what an interrupted push left (staging, a bundle without its version); returns the names."""
    if not os.path.isdir(model_base):
        return []
    names = os.listdir(model_base)
    left = sorted(name for name in names if name.startswith(STAGING_PREFIX)
                  or (name.startswith(BUNDLE_PREFIX) and name.removeprefix(BUNDLE_PREFIX) not in names))
    for name in left:
        logging.warning("Removing %s, left by an interrupted push", os.path.join(model_base, name))
        shutil.rmtree(os.path.join(model_base, name))
    return left


def push_version(model_path: str, model_base: str, serving: dict) -> tuple[str, str]:
    """Copy a SavedModel in as a new version, atomically; write its bundle; prune old versions.

    Returns (version, serving path)."""
    remove_staging(model_base)
    os.makedirs(model_base, exist_ok=True)
    existing = versions(model_base)
    version = str(max(int(time.time()), (existing[-1] + 1) if existing else 0))
    staging = os.path.join(model_base, STAGING_PREFIX + version)
    bundle = os.path.join(model_base, BUNDLE_PREFIX + version)
    serving_path = os.path.join(model_base, version)
    try:
        shutil.copytree(model_path, staging)
        deployment.write_bundle(bundle, serving, model_base, version, TPU_FUNCTION_ALIAS)
        os.rename(staging, serving_path)  # the one step TF Serving's poller can observe
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(bundle, ignore_errors=True)
        raise
    prune(model_base, serving["versions_to_keep"])
    return version, serving_path


def prune(model_base: str, keep: int) -> list[int]:
    """Delete all but the newest `keep` versions (and their bundles); returns the versions deleted."""
    old = versions(model_base)[:-keep]
    for version in old:
        shutil.rmtree(os.path.join(model_base, str(version)))
        shutil.rmtree(os.path.join(model_base, f"{BUNDLE_PREFIX}{version}"), ignore_errors=True)
    return old


class Executor(pusher_executor.Executor):
    """TFX's Pusher checks (model and serving blessings), with the atomic push above."""

    def Do(self, input_dict, output_dict, exec_properties):
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        model_base = destination.filesystem.base_directory
        remove_staging(model_base)
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        serving = json.loads(exec_properties[standard_component_specs.CUSTOM_CONFIG_KEY])["serving"]
        version, serving_path = push_version(self.GetModelPath(input_dict), model_base, serving)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        model_push.set_int_custom_property(MODEL_ID_KEY, model.id)
        fileio.makedirs(model_push.uri)
        with fileio.open(os.path.join(model_push.uri, PUSH_FILE), "w") as handle:
            handle.write(json.dumps({"model": model.uri, "version": version, "serving_path": serving_path,
                                     "bundle": os.path.join(model_base, BUNDLE_PREFIX + version)}, indent=1))
        logging.info("Model pushed to %s", serving_path)


class AtomicPusher(tfx.components.Pusher):
    """TFX's Pusher component with the executor above."""

    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)
