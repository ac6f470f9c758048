"""training.strategy: the tf.distribute strategy the Trainer trains under, and where each worker writes.

training.batch_size is the global batch of one step; every replica gets batch_size / num_replicas_in_sync
rows of it. auto: MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker task, a
MirroredStrategy when there is more than one GPU, else TensorFlow's default strategy (one device).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import urllib.parse

import tensorflow as tf

from components.settings import TrainingSection

TPU_TIMEOUT_SECONDS = 10   # a TPU worker's port, or the GCE metadata server that resolves a TPU name
TPU_PORT = 8470            # a Cloud TPU worker's gRPC port, where training.tpu gives none


def worker_tasks() -> int:
    """Chief and worker tasks of the cluster in TF_CONFIG (as Vertex AI and Kubeflow's TFJob set it); 0: none."""
    cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def distribution_strategy(training: TrainingSection) -> tf.distribute.Strategy:
    """Call before TensorFlow runs any op in the process: multi_worker must configure its collectives first."""
    strategy = training.strategy
    if strategy == "auto":
        if worker_tasks() > 1:
            strategy = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            strategy = "mirrored"
        else:
            return tf.distribute.get_strategy()
    if strategy == "one_device":
        default = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
        return tf.distribute.OneDeviceStrategy(training.devices[0] if training.devices else default)
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy(training.devices or None)
    if strategy == "multi_worker":
        return _multi_worker()
    return _tpu(training.tpu)


def _multi_worker() -> tf.distribute.Strategy:
    if not worker_tasks():
        raise RuntimeError("training.strategy multi_worker: the cluster comes from the TF_CONFIG environment "
                           "variable, which names no chief or worker task here")
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        if "program startup" not in str(error):
            raise
        raise RuntimeError(
            "training.strategy multi_worker: TensorFlow already ran in this process, and collective ops can only "
            "be configured before it does. Run each worker's Trainer in a process of its own (as Vertex AI and "
            "Kubeflow do: one container per worker), not in the process of a local pipeline run") from error


def _tpu(address: str) -> tf.distribute.Strategy:
    """A grpc:// worker's port is probed first: TensorFlow waits on an absent worker without end. A TPU name
    is resolved through the GCE metadata server, which off Google Cloud fails (or times out)."""
    try:
        if address.startswith("grpc://"):
            url = urllib.parse.urlsplit(address)
            socket.create_connection((url.hostname, url.port or TPU_PORT), timeout=TPU_TIMEOUT_SECONDS).close()
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(TPU_TIMEOUT_SECONDS)   # the Cloud TPU client's metadata requests set none
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=address)
        finally:
            socket.setdefaulttimeout(previous)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (OSError, ValueError, tf.errors.OpError) as error:
        raise RuntimeError(f"training.strategy tpu: no TPU at training.tpu {address!r} "
                           f"({type(error).__name__}: {str(error).splitlines()[0]})") from error
    return tf.distribute.TPUStrategy(resolver)


def check_batch_size(strategy: tf.distribute.Strategy, training: TrainingSection) -> None:
    replicas = strategy.num_replicas_in_sync
    if training.batch_size % replicas:
        raise ValueError(f"training.batch_size {training.batch_size} (the global batch) is not a multiple of the "
                         f"{replicas} replicas of training.strategy {training.strategy}")


@contextlib.contextmanager
def output_dirs(strategy: tf.distribute.Strategy, *dirs: str):
    """The chief writes the real directories. Other workers still run every save (its collective ops), into
    temporary directories deleted afterwards, as TensorFlow's multi-worker guide does."""
    if strategy.extended.should_checkpoint:
        yield dirs
        return
    with tempfile.TemporaryDirectory(prefix="non-chief-worker-") as temporary:
        stand_ins = tuple(os.path.join(temporary, str(index)) for index in range(len(dirs)))
        for stand_in in stand_ins:   # they exist, as the output directories TFX made for the chief do
            os.mkdir(stand_in)
        yield stand_ins
