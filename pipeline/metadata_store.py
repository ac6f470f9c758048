"""ML Metadata: where the store is, and what the pipeline reads back (spans already ingested, what a run
produced). Built on ml_metadata alone, so `watch` and the summary open the store without importing TFX
or TensorFlow."""
from __future__ import annotations

import contextlib
import fcntl
import os
import time

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from components import lineage
from components.contracts import (EVALUATOR, EXAMPLE_GEN, EXAMPLES, MODEL_EVALUATION, PUSHED_KEY, PUSHED_MODEL,
                                  RESOLVERS, SPAN_KEY, TRANSFORM_GRAPH)
from pipeline import spans
from pipeline.config import PipelineConfig


class StoreBusy(Exception):
    """Another run holds the store; the message says where and how long this one waited."""


def connection_config(config: PipelineConfig) -> metadata_store_pb2.ConnectionConfig:
    """metadata.backend's store: SQLite at metadata.sqlite_path (as TFX's sqlite_metadata_connection_config
    makes it), or MySQL/MariaDB at metadata.mysql with the password from the environment."""
    connection = metadata_store_pb2.ConnectionConfig()
    if config.metadata.backend == "mysql":
        mysql = config.metadata.mysql
        connection.mysql.host, connection.mysql.port = mysql.host, mysql.port
        connection.mysql.database, connection.mysql.user = mysql.database, mysql.user
        connection.mysql.password = os.environ[mysql.password_env]   # load_config checked it is set
        return connection
    path = config.path(config.metadata.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection.sqlite.filename_uri = str(path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return connection


@contextlib.contextmanager
def run_lock(config: PipelineConfig):
    """Held while a run (or a rollback) writes to the store, so two never interleave: another one waits up to
    metadata.lock_wait_seconds, then stops with StoreBusy. SQLite: an flock beside the file; MySQL: the
    server's GET_LOCK on a connection of its own, released by the server if this process dies."""
    wait = config.metadata.lock_wait_seconds

    def busy(store: str) -> StoreBusy:
        return StoreBusy(f"another run of pipeline '{config.pipeline.name}' holds the ML Metadata store {store}; "
                         f"waited {wait:g} s (metadata.lock_wait_seconds)")

    if config.metadata.backend == "mysql":
        import pymysql

        mysql = config.metadata.mysql
        name = f"tfx-span-pipeline/{mysql.database}/{config.pipeline.name}"
        connection = pymysql.connect(host=mysql.host, port=mysql.port, user=mysql.user,
                                     password=os.environ[mysql.password_env], database=mysql.database)
        with connection:
            with connection.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, %s)", (name, wait))
                if cursor.fetchone()[0] != 1:
                    raise busy(f"on {mysql.host}:{mysql.port}/{mysql.database}")
            yield  # closing the connection releases the lock
        return
    path = config.path(config.metadata.sqlite_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.{config.pipeline.name}.lock", "w") as lock:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise busy(str(path)) from None
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        yield


def open_store(config: PipelineConfig) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(connection_config(config))


def ingested_spans(store: metadata_store.MetadataStore, pipeline_name: str) -> set[int]:
    context = store.get_context_by_type_and_name("node", f"{pipeline_name}.{EXAMPLE_GEN}")
    if context is None:
        return set()
    return {span_of(artifact) for artifact in store.get_artifacts_by_context(context.id)
            if artifact.state == metadata_store_pb2.Artifact.LIVE and span_of(artifact) is not None}


def spans_to_backfill(config: PipelineConfig) -> list[int]:
    """Older spans of a last_k window that ExampleGen has not ingested yet (the newest is ingested by the run)."""
    if config.data.spans.policy != "last_k":
        return []
    window = spans.complete_spans(config)[-config.data.spans.k:-1]
    if not window:
        return []
    already = ingested_spans(open_store(config), config.pipeline.name)
    return [span for span in window if span not in already]


def _run_executions(store, config: PipelineConfig, run_id: str) -> list[tuple[str, metadata_store_pb2.Execution]]:
    """(node id, execution) of every execution of one pipeline run."""
    run = store.get_context_by_type_and_name("pipeline_run", run_id)
    if run is None:
        return []
    prefix = f"{config.pipeline.name}."
    executions = []
    for execution in store.get_executions_by_context(run.id):
        nodes = [c.name.removeprefix(prefix) for c in store.get_contexts_by_execution(execution.id)
                 if c.type_id == store.get_context_type("node").id and c.name.startswith(prefix)]
        if nodes:
            executions.append((nodes[0], execution))
    return executions


def _artifacts_by_type(store, execution_ids: list[int], event_type) -> dict[str, list[metadata_store_pb2.Artifact]]:
    ids = [e.artifact_id for e in store.get_events_by_execution_ids(execution_ids) if e.type == event_type]
    artifacts = store.get_artifacts_by_id(ids)
    type_names = {t.id: t.name for t in store.get_artifact_types_by_id(list({a.type_id for a in artifacts}))}
    by_type: dict[str, list] = {}
    for artifact in artifacts:
        by_type.setdefault(type_names[artifact.type_id], []).append(artifact)
    return by_type


def run_outputs(config: PipelineConfig, run_id: str) -> dict[str, dict[str, list[metadata_store_pb2.Artifact]]]:
    """What each node of one pipeline run produced: {node id: {artifact type name: [artifacts]}}.

    Resolver nodes produce nothing new (what they resolve was produced by earlier runs), so they
    are not in it.
    """
    store = open_store(config)
    outputs = {}
    for node, execution in _run_executions(store, config, run_id):
        produced = _artifacts_by_type(store, [execution.id], metadata_store_pb2.Event.OUTPUT)
        if produced and node not in RESOLVERS:
            outputs[node] = produced
    return outputs


def pipeline_context(store, pipeline_name: str) -> metadata_store_pb2.Context | None:
    """TFX's context of the pipeline, parent of its runs' contexts."""
    return store.get_context_by_type_and_name("pipeline", pipeline_name)


def pipeline_runs(config: PipelineConfig) -> list[metadata_store_pb2.Context]:
    """This pipeline's runs (TFX's pipeline_run contexts, named by run id), newest first."""
    store = open_store(config)
    pipeline = pipeline_context(store, config.pipeline.name)
    if pipeline is None:
        return []
    run_type = store.get_context_type("pipeline_run")
    runs = [c for c in store.get_children_contexts_by_context(pipeline.id) if c.type_id == run_type.id]
    return sorted(runs, key=lambda run: run.create_time_since_epoch, reverse=True)


def execution_states(config: PipelineConfig, run_id: str) -> dict[str, str]:
    """{node id: COMPLETE, CACHED, FAILED, RUNNING...} of one run: a node left RUNNING is one a crash interrupted
    (or that is running now)."""
    store = open_store(config)
    return {node: metadata_store_pb2.Execution.State.Name(execution.last_known_state)
            for node, execution in _run_executions(store, config, run_id)}


def pushed_models(store, pipeline_name: str) -> list[metadata_store_pb2.Artifact]:
    """Every model this pipeline pushed (by the Pusher or by a rollback), oldest first."""
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if context is None:
        return []
    ours = {artifact.id for artifact in store.get_artifacts_by_context(context.id)}
    return sorted((a for a in store.get_artifacts_by_type(PUSHED_MODEL) if a.id in ours and custom_int(a, PUSHED_KEY) == 1),
                  key=lambda a: a.id)


def model_lineage(config: PipelineConfig, model_id: int) -> dict:
    """What a model was made from and judged by, from ML Metadata events: the run and trainer node that made
    it, the spans and transform graph that trainer read, and its run's evaluation."""
    store = open_store(config)
    execution_id = lineage.producer(store, model_id)
    run_type = store.get_context_type("pipeline_run")
    run_id = next(c.name for c in store.get_contexts_by_execution(execution_id) if c.type_id == run_type.id)
    trainer = next(node for node, execution in _run_executions(store, config, run_id) if execution.id == execution_id)
    inputs = _artifacts_by_type(store, [execution_id], metadata_store_pb2.Event.INPUT)
    evaluations = run_outputs(config, run_id).get(EVALUATOR, {}).get(MODEL_EVALUATION, [])
    return {
        "model_id": model_id, "model": store.get_artifacts_by_id([model_id])[0].uri, "run_id": run_id,
        "trainer": trainer, "spans": sorted({span_of(a) for a in inputs.get(EXAMPLES, [])}),
        "transform_graph": next((a.uri for a in inputs.get(TRANSFORM_GRAPH, [])), None),
        "evaluation": next((a.uri for a in evaluations), None),
    }


def spans_read_by(config: PipelineConfig, run_id: str, node_ids: tuple[str, ...]) -> list[int]:
    """Spans of the Examples these nodes of this run took as input (the training window, for the trainers)."""
    store = open_store(config)
    executions = [execution.id for node, execution in _run_executions(store, config, run_id) if node in node_ids]
    examples = _artifacts_by_type(store, executions, metadata_store_pb2.Event.INPUT).get(EXAMPLES, [])
    return sorted({span_of(artifact) for artifact in examples})


def span_of(artifact: metadata_store_pb2.Artifact):
    """ExampleGen records the span as a custom property of its Examples."""
    value = artifact.custom_properties.get(SPAN_KEY)
    return value.int_value if value is not None else None


def custom_int(artifact: metadata_store_pb2.Artifact, key: str, default: int = 0) -> int:
    value = artifact.custom_properties.get(key)
    return value.int_value if value is not None else default


def custom_str(artifact: metadata_store_pb2.Artifact, key: str) -> str:
    value = artifact.custom_properties.get(key)
    return value.string_value if value is not None else ""

