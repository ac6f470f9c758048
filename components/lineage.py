"""Following events in ML Metadata: who produced an artifact, what an execution read, what its readers made.

On ml_metadata alone, so the resolver (components/blessed_lineage.py) and the light commands
(`status`, the report) walk the same lineage without TFX or TensorFlow.
"""
from __future__ import annotations

from typing import Optional

from ml_metadata.proto import metadata_store_pb2


def producer(store, artifact_id: int) -> Optional[int]:
    """The execution that output the artifact."""
    for event in store.get_events_by_artifact_ids([artifact_id]):
        if event.type == metadata_store_pb2.Event.OUTPUT:
            return event.execution_id
    return None


def inputs_of(store, execution_id: int) -> set[int]:
    return {event.artifact_id for event in store.get_events_by_execution_ids([execution_id])
            if event.type == metadata_store_pb2.Event.INPUT}


def outputs_of_consumers(store, artifact_ids: set[int]) -> set[int]:
    consumers = {event.execution_id for event in store.get_events_by_artifact_ids(list(artifact_ids))
                 if event.type == metadata_store_pb2.Event.INPUT}
    return {event.artifact_id for event in store.get_events_by_execution_ids(list(consumers))
            if event.type == metadata_store_pb2.Event.OUTPUT}
