"""pipeline.skip_unchanged: a run whose inputs are all as the last settled run left them is not started again.

A run settles when its outcome is what a rerun would repeat: it pushed a model trained on the newest span
(the next decision is skip: the span is not newer than the served model's data), its retraining decision
was skip, or the data gate blocked the span (the same files give the same anomalies). A run whose candidate
a gate rejected does not settle: the next run on the span escalates (components/retrain_policy.py).

The inputs are fingerprinted without TensorFlow or TFX (a rerun answers in about a second instead of starting
both): the validated config, this project's code and the versions of the TFX libraries, every file under
data.base (name, size, modification time), the schema file, the serving logs, and the newest execution and
artifact ids of the ML Metadata store (a rollback, or any other run, changes them). The record is a custom
property of the pipeline's context in ML Metadata, written and read under the store's run lock.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pathlib

from ml_metadata import metadata_store as mlmd

import components
import pipeline
from components.contracts import SKIP, UNCHANGED_SINCE_KEY
from pipeline import metadata_store
from pipeline.config import PipelineConfig

# The libraries whose upgrade can change a run's outcome.
LIBRARIES = ("tfx", "tensorflow", "tensorflow-transform", "tensorflow-data-validation", "tensorflow-model-analysis",
             "apache-beam", "ml-metadata", "tf-keras", "tensorflow-model-remediation")


def _files(folder: pathlib.Path) -> list[tuple[str, int, int]]:
    listed = []
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            stat = os.stat(path)
            listed.append((os.path.relpath(path, folder), stat.st_size, stat.st_mtime_ns))
    return sorted(listed)


def _store_head(store) -> list[int]:
    newest = mlmd.ListOptions(limit=1, order_by=mlmd.OrderByField.ID, is_asc=False)
    return [next((item.id for item in listing(list_options=newest)), 0)
            for listing in (store.get_executions, store.get_artifacts)]


def fingerprint(config: PipelineConfig, store) -> str:
    code = {path.relative_to(pathlib.Path(package.__file__).parent.parent).as_posix(): path.read_bytes()
            for package in (pipeline, components) for path in pathlib.Path(package.__file__).parent.rglob("*.py")}
    serving_logs = config.retraining.drift.serving_logs
    schema = config.path(config.data.schema_path).stat()
    parts = {
        "config": config.model_dump_json(),
        "config_dir": str(config.path(".")),
        "code": hashlib.sha256(b"".join(name.encode() + text for name, text in sorted(code.items()))).hexdigest(),
        "libraries": [importlib.metadata.version(name) for name in LIBRARIES],
        "data": _files(config.path(config.data.base)),
        "schema": [schema.st_size, schema.st_mtime_ns],
        "serving_logs": _files(config.path(serving_logs)) if serving_logs else [],
        "store": _store_head(store),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def settled_run(config: PipelineConfig) -> dict | None:
    """The last settled run's record when nothing has changed since it, else None."""
    store = metadata_store.open_store(config)
    context = metadata_store.pipeline_context(store, config.pipeline.name)
    if context is None or UNCHANGED_SINCE_KEY not in context.custom_properties:
        return None
    record = json.loads(context.custom_properties[UNCHANGED_SINCE_KEY].string_value)
    return record if record["fingerprint"] == fingerprint(config, store) else None


def record(config: PipelineConfig, result: dict) -> None:
    """After a run (under the run lock): its record if it settled; otherwise no record, so the next run runs."""
    store = metadata_store.open_store(config)
    context = metadata_store.pipeline_context(store, config.pipeline.name)
    if context is None:   # refused before TFX registered the pipeline
        return
    skipped = (result.get("retraining") or {}).get("mode") == SKIP
    settled = result["status"] == "data_blocked" or (result["status"] == "ok" and (skipped or result["push"]["pushed"]))
    if settled:
        context.custom_properties[UNCHANGED_SINCE_KEY].string_value = json.dumps({
            "fingerprint": fingerprint(config, store), "run_id": result["run_id"], "status": result["status"],
            "push": result["push"]})
    elif UNCHANGED_SINCE_KEY in context.custom_properties:
        del context.custom_properties[UNCHANGED_SINCE_KEY]
    else:
        return
    store.put_contexts([context])
