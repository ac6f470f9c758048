"""training.strategy for real, on CPU: TFX's Trainer executor in fresh processes (tests/run_trainer.py) on the
Examples and transform graph of a real run. Mirrored over two logical CPU devices, and two multi_worker
processes on loopback, train the model one device trains (the same rows make each step's global batch);
only the chief of the workers writes. tpu, multi_worker late or without a cluster, and an indivisible batch
stop with a message naming the key."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from tfx.utils import path_utils

from components.contracts import CANARY_FILE, FULL_RETRAIN, HISTORY_FILE
from pipeline import metadata_store
from pipeline.config import load_config
from project_helpers import REPO, merge

RUN_TRAINER = REPO / "tests" / "run_trainer.py"
# Few steps, every one of them run (no early stop): the runs compared must take the same steps.
TRAINING = {"train_steps": 60, "eval_steps": 10, "epochs": 3, "early_stopping_patience": 0, "batch_size": 32}
# Largest difference from one device of a served probability, and of each epoch's loss and AUC. Same rows,
# same initial weights, the same mean gradient each step: the runs differ in the order floats are summed
# in. Measured here: 3.0e-8 (probabilities), 6.0e-8 (losses), 0 (AUC); README "Distributed training".
TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def inputs(project, first_run):
    """The first run's Examples and TransformGraph URIs, and its Trainer's settings."""
    _, summary = first_run
    config = load_config(project / "pipeline.yaml")
    outputs = metadata_store.run_outputs(config, summary["run_id"])
    [examples] = outputs["CsvExampleGen"]["Examples"]
    [graph] = outputs["Transform"]["TransformGraph"]
    return examples.uri, graph.uri, config.trainer_settings(FULL_RETRAIN).model_dump(mode="json")


def start_trainer(inputs, out, training: dict, cpus: int = 1, tf_config: dict | None = None,
                  temporary=None) -> subprocess.Popen:
    """The Trainer executor in a process of its own, writing its model and model_run under `out`
    (temporary files under `temporary`, if given)."""
    examples, graph, settings = inputs
    arguments = {"cpus": cpus, "examples": examples, "transform_graph": graph,
                 "model": str(out / "model"), "model_run": str(out / "model_run"),
                 "settings": merge(settings, {"training": {**TRAINING, **training}}),
                 "train_steps": TRAINING["train_steps"], "eval_steps": TRAINING["eval_steps"]}
    env = dict(os.environ)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    if temporary:
        env["TMPDIR"] = str(temporary)
    return subprocess.Popen([sys.executable, str(RUN_TRAINER), json.dumps(arguments)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-5000:]
    return output


def eval_examples(inputs) -> list[bytes]:
    examples, _, _ = inputs
    files = tf.io.gfile.glob(f"{examples}/Split-eval/*.gz")
    return list(tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator())


def served(out, examples: list[bytes]) -> np.ndarray:
    loaded = tf.saved_model.load(path_utils.serving_model_dir(str(out / "model")))
    return loaded.signatures["serving_default"](examples=tf.constant(examples))["probabilities"].numpy()[:, 0]


def assert_same_model(out, reference, examples: list[bytes]):
    assert len(examples) > 50
    assert np.abs(served(out, examples) - served(reference, examples)).max() < TOLERANCE
    history, expected = (json.loads((path / "model_run" / HISTORY_FILE).read_text()) for path in (out, reference))
    for key in ("loss", "val_loss", "auc", "val_auc"):
        assert history[key] == pytest.approx(expected[key], abs=TOLERANCE), key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def one_device(inputs, tmp_path_factory):
    """The reference: the model trained on one device (its out folder)."""
    out = tmp_path_factory.mktemp("one_device")
    finished(start_trainer(inputs, out, {"strategy": "one_device", "devices": ["/cpu:0"]}))
    return out


def test_mirrored_on_two_cpu_devices_trains_the_model_one_device_trains(inputs, one_device, tmp_path):
    output = finished(start_trainer(inputs, tmp_path, {"strategy": "mirrored", "devices": ["/cpu:0", "/cpu:1"]},
                                    cpus=2))
    assert "Using MirroredStrategy with devices ('/job:localhost/replica:0/task:0/device:CPU:0', " \
           "'/job:localhost/replica:0/task:0/device:CPU:1')" in output
    assert_same_model(tmp_path, one_device, eval_examples(inputs))


def test_two_workers_on_loopback_train_one_model_that_only_the_chief_exports(inputs, one_device, tmp_path):
    """Both workers are given the same output URIs, as an orchestrator's replicas are. Each worker's
    temporary directories go under its own TMPDIR, which must be empty afterwards."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    workers = []
    for index in range(2):
        temporary = tmp_path / f"tmp-{index}"
        temporary.mkdir()
        workers.append(start_trainer(inputs, tmp_path / "out", {"strategy": "multi_worker"}, temporary=temporary,
                                     tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}}))
    outputs = [finished(worker) for worker in workers]
    for index, output in enumerate(outputs):
        assert f"task_id = {index}, num_workers = 2" in output
        assert not list((tmp_path / f"tmp-{index}").iterdir()), index
    model_run = tmp_path / "out" / "model_run"
    assert sorted(path.name for path in model_run.iterdir()) == [CANARY_FILE, HISTORY_FILE, "train", "validation"]
    # TensorBoard's files are named events.out.tfevents.<time>.<host>.<pid>.<n>.v2: only the chief's are there
    assert {path.name.split(".")[-3] for path in model_run.rglob("events.out.tfevents.*")} == {str(workers[0].pid)}
    export = path_utils.serving_model_dir(str(tmp_path / "out" / "model"))
    assert sorted(os.listdir(export)) == [
        "assets", "assets.extra", "fingerprint.pb", "keras_metadata.pb", "saved_model.pb", "variables"]
    assert {"serving_default", "serving_raw", "transform_features"} <= set(tf.saved_model.load(export).signatures)
    assert_same_model(tmp_path / "out", one_device, eval_examples(inputs))


# In one fresh process with two logical CPU devices: the errors the Trainer stops with, by case.
ERRORS = """
import json, os, sys
import tensorflow as tf
from components import distribution
from components.settings import TrainingSection

def error(call, tf_config=None):
    os.environ["TF_CONFIG"] = json.dumps(tf_config or {})
    try:
        call()
    except (RuntimeError, ValueError) as raised:
        return str(raised)

[cpu] = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
two_replicas = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])   # TensorFlow runs from here on
cluster = {"worker": ["127.0.0.1:" + sys.argv[1], "127.0.0.1:" + sys.argv[2]]}
errors = {
    "batch": error(lambda: distribution.check_batch_size(two_replicas, TrainingSection(batch_size=33))),
    "multi_worker_late": error(lambda: distribution.distribution_strategy(TrainingSection(strategy="multi_worker")),
                               {"cluster": cluster, "task": {"type": "worker", "index": 0}}),
    "multi_worker_alone": error(lambda: distribution.distribution_strategy(TrainingSection(strategy="multi_worker"))),
}
for name, tpu in (("tpu_local", "local"), ("tpu_grpc", "grpc://127.0.0.1:" + sys.argv[1]), ("tpu_name", "taxi-tpu")):
    errors[name] = error(lambda: distribution.distribution_strategy(TrainingSection(strategy="tpu", tpu=tpu)))
print(json.dumps(errors))
"""


@pytest.fixture(scope="module")
def errors():
    completed = subprocess.run([sys.executable, "-c", ERRORS, str(free_port()), str(free_port())], cwd=REPO,
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.splitlines()[-1])


def test_a_global_batch_that_the_replicas_cannot_share_names_training_batch_size(errors):
    assert errors["batch"] == ("training.batch_size 33 (the global batch) is not a multiple of the 2 replicas "
                               "of training.strategy auto")


def test_tpu_stops_at_once_where_there_is_none(errors):
    assert errors["tpu_local"].startswith("training.strategy tpu: no TPU at training.tpu 'local' (NotFoundError: "
                                          "TPUs not found in the cluster.")
    assert errors["tpu_grpc"].startswith("training.strategy tpu: no TPU at training.tpu 'grpc://127.0.0.1:")
    assert "ConnectionRefusedError" in errors["tpu_grpc"]
    # A TPU name is resolved through the GCE metadata server, which is not here.
    assert errors["tpu_name"].startswith("training.strategy tpu: no TPU at training.tpu 'taxi-tpu' (")


def test_multi_worker_after_tensorflow_ran_in_the_process_says_how_to_run_it(errors):
    assert errors["multi_worker_late"].startswith("training.strategy multi_worker: TensorFlow already ran in this "
                                                  "process")
    assert errors["multi_worker_alone"] == ("training.strategy multi_worker: the cluster comes from the TF_CONFIG "
                                            "environment variable, which names no chief or worker task here")
