"""`python -m pipeline rollback`: serve the previous pushed model again, and record it in ML Metadata.

The previous model is pushed again as a new, higher version (atomically, as any push), so TF
Serving's `latest` policy moves to it, and the rolled-back version folder is deleted so no policy
can serve it. The rolled-back Model is marked `rolled_back`, so the next run neither compares
against it nor fine-tunes from it; the rollback itself is an execution with the model as input
and a PushedModel as output, like a push. Reads and writes ML Metadata with ml_metadata alone, and
copies the SavedModel folder each push recorded (MODEL_PATH_KEY): no TFX, no TensorFlow.
"""
from __future__ import annotations

import os
import shutil
import time

from ml_metadata.proto import metadata_store_pb2

from components.contracts import (BUNDLE_PREFIX, MODEL_ID_KEY, MODEL_PATH_KEY, PUSHED_DESTINATION_KEY, PUSHED_KEY,
                                  PUSHED_MODEL, PUSHED_VERSION_KEY, ROLLBACK, ROLLED_BACK_FROM_KEY, ROLLED_BACK_KEY)
from components.serving_base import push_version, versions
from pipeline import metadata_store
from pipeline.config import PipelineConfig
from pipeline.metadata_store import custom_int, custom_str


class RollbackError(Exception):
    """Nothing to roll back to; the message says why."""


def _set_int(artifact, key: str, value: int) -> None:
    artifact.custom_properties[key].int_value = value


def _set_str(artifact, key: str, value: str) -> None:
    artifact.custom_properties[key].string_value = value


def rollback(config: PipelineConfig) -> dict:
    """Under the store's run lock: a rollback never interleaves with a run (StoreBusy if one holds it)."""
    with metadata_store.run_lock(config):
        return _rollback(config)


def _rollback(config: PipelineConfig) -> dict:
    store = metadata_store.open_store(config)
    model_base = str(config.serving_dir)
    served = versions(model_base)
    if not served:
        raise RollbackError(f"no version is served under {model_base}")
    current_version = str(served[-1])
    pushed = metadata_store.pushed_models(store, config.pipeline.name)
    current = next((p for p in reversed(pushed) if custom_str(p, PUSHED_VERSION_KEY) == current_version), None)
    if current is None:
        raise RollbackError(f"version {current_version} in {model_base} was not pushed by pipeline "
                            f"'{config.pipeline.name}' (no PushedModel of it in ML Metadata)")
    models = {m.id: m for m in store.get_artifacts_by_id(list({custom_int(p, MODEL_ID_KEY) for p in pushed}))}
    current_model = models[custom_int(current, MODEL_ID_KEY)]

    def usable(push) -> bool:
        model = models.get(custom_int(push, MODEL_ID_KEY))
        return (model is not None and model.id != current_model.id and not custom_int(model, ROLLED_BACK_KEY)
                and os.path.isdir(custom_str(push, MODEL_PATH_KEY)))

    previous = next((p for p in reversed(pushed) if usable(p)), None)
    if previous is None:
        raise RollbackError(f"no earlier pushed model of pipeline '{config.pipeline.name}' is left to serve "
                            f"instead of version {current_version}")
    model = models[custom_int(previous, MODEL_ID_KEY)]
    model_path = custom_str(previous, MODEL_PATH_KEY)
    version, serving_path = push_version(model_path, model_base, config.serving)
    shutil.rmtree(os.path.join(model_base, current_version), ignore_errors=True)
    shutil.rmtree(os.path.join(model_base, BUNDLE_PREFIX + current_version), ignore_errors=True)

    _set_int(current_model, ROLLED_BACK_KEY, 1)
    store.put_artifacts([current_model])
    _record(store, config.pipeline.name, model, model_path, version, serving_path, current_version)
    return {"from_version": current_version, "to_version": version, "serving_path": serving_path,
            "model": model.uri, "previous_version": custom_str(previous, PUSHED_VERSION_KEY)}


def _record(store, pipeline_name: str, model, model_path: str, version: str, serving_path: str,
            from_version: str) -> None:
    execution_type = metadata_store_pb2.ExecutionType(name=ROLLBACK)
    execution = metadata_store_pb2.Execution(
        type_id=store.put_execution_type(execution_type),
        last_known_state=metadata_store_pb2.Execution.COMPLETE)
    _set_str(execution, "from_version", from_version)
    _set_str(execution, "to_version", version)
    _set_int(execution, "time", int(time.time()))
    pushed = metadata_store_pb2.Artifact(type_id=store.get_artifact_type(PUSHED_MODEL).id, uri=serving_path,
                                         state=metadata_store_pb2.Artifact.LIVE)
    _set_int(pushed, PUSHED_KEY, 1)
    _set_str(pushed, PUSHED_DESTINATION_KEY, serving_path)
    _set_str(pushed, PUSHED_VERSION_KEY, version)
    _set_int(pushed, MODEL_ID_KEY, model.id)
    _set_str(pushed, MODEL_PATH_KEY, model_path)
    _set_str(pushed, ROLLED_BACK_FROM_KEY, from_version)
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    store.put_execution(
        execution,
        artifact_and_events=[(model, metadata_store_pb2.Event(type=metadata_store_pb2.Event.INPUT)),
                             (pushed, metadata_store_pb2.Event(type=metadata_store_pb2.Event.OUTPUT))],
        contexts=[context])
