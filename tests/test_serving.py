"""Serving: the pushed model as TF Serving meets it, serving validation, atomic push, rollback, bundle.

One small real project is shared, in order: a first run pushes a model; a run whose serving gate
cannot be met is blocked and pushes nothing; the same run with the gate as configured pushes;
`rollback` then serves the first model again.
"""
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import yaml
from tensorflow.core.protobuf import saved_model_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from tensorflow_serving.apis import prediction_log_pb2
from tensorflow_serving.config import model_server_config_pb2
from tfx.types import standard_artifacts

from components import deployment, export, serving_validator
from components.contracts import BUNDLE_PREFIX, CANARY_FILE, SETTINGS_KEY, STAGING_PREFIX, TPU_FUNCTION_ALIAS
from components.features import serving_feature_spec
from components.serving_base import push_version, versions
from pipeline import metadata_store
from pipeline.config import load_config
from pipeline.predict import PredictError, predict, raw_feature_spec, read_examples
from project_helpers import FIRST_SPAN_ROWS, REPO, run_cli, served_versions, write_config, write_span

@pytest.fixture(scope="module")
def first_summary(first_run):
    return first_run[1]


@pytest.fixture(scope="module")
def config(project, first_summary):
    return load_config(project / "pipeline.yaml")


@pytest.fixture(scope="module")
def pushed(first_summary):
    return pathlib.Path(first_summary["push"]["path"])


def test_serving_validation_ran_in_a_fresh_process_before_the_push(first_summary):
    gate = first_summary["serving_gate"]
    assert gate["passed"] and gate["reason"] == ""
    report = gate["report"]
    assert report["warmup_requests"] == 4 and report["canary_rows"] == 20
    assert report["max_difference_serving_default"] <= 1e-5 and report["max_difference_serving_raw"] <= 1e-5
    assert report["load_seconds"] > 0 and report["latency_ms_p99"] >= report["latency_ms_p50"] > 0
    names = [c["name"] for c in first_summary["components"]]
    assert names.index("Evaluator") < names.index("ServingValidator") < names.index("Pusher")


def test_raw_signature_scores_rows_like_serving_default(config, pushed, project):
    """REST row format (one tensor per raw feature, missing = fill value) against serialized tf.Examples."""
    settings = config.transform_settings()
    request_spec = serving_feature_spec(raw_feature_spec(config), settings)
    _, examples = read_examples(project / "data" / "span-01" / "data.csv", request_spec)
    examples = examples[:64]
    missing = sum(1 for example in examples for name in settings.feature_names if name not in example.features.feature)
    assert missing > 0, "the rows should include missing values, to check how serving_raw fills them"
    model = tf.saved_model.load(str(pushed))
    by_example = model.signatures["serving_default"](
        examples=tf.constant([example.SerializeToString() for example in examples]))
    raw = export.raw_inputs(examples, request_spec, settings)
    by_row = model.signatures[export.RAW_SIGNATURE](**{name: tf.constant(values) for name, values in raw.items()})
    np.testing.assert_allclose(by_row["probabilities"].numpy(), by_example["probabilities"].numpy(), atol=1e-6)
    assert sorted(model.signatures) == ["serving_default", "serving_raw", "transform_features"]
    # One named input per model feature: `{"instances": [{"fare": 12.5, ...}]}` maps onto it.
    inputs = model.signatures[export.RAW_SIGNATURE].structured_input_signature[1]
    assert sorted(inputs) == sorted(settings.feature_names)


def test_warmup_file_holds_prediction_logs_of_training_rows_that_replay(pushed, config):
    logs = export.read_warmup(str(pushed))
    assert len(logs) == 4 and all(isinstance(log, prediction_log_pb2.PredictionLog) for log in logs)
    requests = [log.predict_log.request for log in logs]
    assert [r.model_spec.signature_name for r in requests] == ["serving_default", "serving_raw"] * 2
    assert {r.model_spec.name for r in requests} == {"taxi"}
    examples = tf.make_ndarray(requests[2].inputs["examples"])
    assert len(examples) == config.serving.warmup_rows
    assert "tips" not in tf.train.Example.FromString(examples[0]).features.feature  # a request has no label
    model = tf.saved_model.load(str(pushed))
    for request in requests:
        outputs = export.serve(model, request)
        assert np.isfinite(outputs["probabilities"]).all()


def test_tpu_aliased_function_is_what_the_signatures_call_and_compiles_with_xla_on_cpu(pushed, config, project):
    saved = saved_model_pb2.SavedModel.FromString((pushed / "saved_model.pb").read_bytes())
    graph = saved.meta_graphs[0]
    aliases = dict(graph.meta_info_def.function_aliases)
    assert list(aliases.values()) == [TPU_FUNCTION_ALIAS]
    [aliased] = aliases
    callers = {function.signature.name for function in graph.graph_def.library.function
               for node in function.node_def if node.attr["f"].func.name == aliased}
    assert callers, "the signatures must call the aliased function, so the converter's TPU version is the one served"

    model = tf.saved_model.load(str(pushed))
    _, examples = read_examples(project / "data" / "span-01" / "data.csv", raw_feature_spec(config))
    transformed = model.signatures["transform_features"](
        examples=tf.constant([example.SerializeToString() for example in examples[:32]]))
    inputs = {name: value for name, value in transformed.items() if name.endswith("_xf")}
    compiled = tf.function(lambda features: model.tpu_core(features), jit_compile=True)
    hlo = compiled.experimental_get_compiler_ir(inputs)(stage="hlo")
    assert "HloModule" in hlo
    np.testing.assert_allclose(compiled(inputs).numpy(), model.tpu_core(inputs).numpy(), atol=1e-5)


def test_predict_command_scores_csv_rows_and_names_a_bad_cell(project, first_summary, tmp_path, taxi_rows):
    header, rows = taxi_rows
    rows_csv = write_span(tmp_path, 1, [h for h in header if h != "tips"], rows[:5]) / "data.csv"
    output = tmp_path / "scores.csv"
    completed = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--config", str(project / "pipeline.yaml"),
                                "--input", str(rows_csv), "--output", str(output)],
                               cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    scored = output.read_text().splitlines()
    assert len(scored) == 6 and scored[0].endswith("probability,class")
    assert all(0 <= float(line.split(",")[-2]) <= 1 for line in scored[1:])

    bad = tmp_path / "bad.csv"
    lines = rows_csv.read_text().splitlines()
    fare = lines[0].split(",").index("fare")
    cells = lines[2].split(",")
    cells[fare] = "twelve"
    bad.write_text("\n".join([lines[0], lines[1], ",".join(cells)]) + "\n")
    config = load_config(project / "pipeline.yaml")
    with pytest.raises(PredictError, match=r"bad.csv: row 3: column 'fare': expected float32, got 'twelve'"):
        predict(config, bad)


def test_serving_gate_blocks_the_push_and_the_summary_says_why(project, first_summary, taxi_rows):
    header, rows = taxi_rows
    write_span(project, 2, header, rows[FIRST_SPAN_ROWS:FIRST_SPAN_ROWS + 300])
    before = served_versions(project)
    strict = write_config(project, {"serving": {"validation": {"max_latency_ms": 0.0001}}}, name="strict.yaml")
    completed, summary = run_cli(strict)
    assert completed.returncode == 5, completed.stdout + completed.stderr
    assert summary["status"] == "serving_blocked" and summary["model_gate"]["passed"]
    assert not summary["serving_gate"]["passed"] and "p99 latency" in summary["serving_gate"]["reason"]
    assert "serving validation: BLOCKED" in completed.stdout
    assert "not pushed: serving validation failed: one-row p99 latency" in completed.stdout
    assert served_versions(project) == before

    # The same span with the gate as configured: only serving validation and the push run again.
    completed, summary = run_cli(project / "pipeline.yaml")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
    assert outcomes["ServingValidator"] == "done" and summary["push"]["pushed"]
    assert len(served_versions(project)) == 2


def test_rollback_serves_the_previous_model_and_records_it(project, config, first_summary):
    assert len(served_versions(project)) == 2, "runs after the serving gate test"
    bad_version = served_versions(project)[-1]
    completed = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", "rollback",
                                "--config", str(project / "pipeline.yaml")], cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    assert "ml_metadata" in imported and "tensorflow" not in imported   # metadata reads and a copy, no TF
    now = served_versions(project)
    assert bad_version not in now and int(now[-1]) > int(bad_version)
    model_base = config.serving_dir
    first = pathlib.Path(first_summary["push"]["path"])
    assert (model_base / now[-1] / "saved_model.pb").read_bytes() == (first / "saved_model.pb").read_bytes()
    assert (model_base / f"{BUNDLE_PREFIX}{now[-1]}" / "models.config").exists()

    store = metadata_store.open_store(config)
    [execution] = store.get_executions_by_type("Rollback")
    assert execution.custom_properties["from_version"].string_value == bad_version
    assert execution.custom_properties["to_version"].string_value == now[-1]
    models = store.get_artifacts_by_type("Model")
    assert [m.custom_properties["rolled_back"].int_value for m in models if "rolled_back" in m.custom_properties] == [1]


def _validator_artifacts(tmp_path, model_dir: pathlib.Path, canary: pathlib.Path):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "model")
    shutil.copytree(model_dir, tmp_path / "model" / "Format-Serving")
    model_run = standard_artifacts.ModelRun()
    model_run.uri = str(canary.parent)
    model_blessing = standard_artifacts.ModelBlessing()
    model_blessing.set_int_custom_property("blessed", 1)
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    return ({"model": [model], "model_run": [model_run], "model_blessing": [model_blessing]},
            {"blessing": [blessing]}, blessing)


def test_a_signature_that_produces_nan_fails_serving_validation_and_is_not_pushed(tmp_path, config, first_summary, pushed):
    good = tf.saved_model.load(str(pushed))
    module = tf.Module()
    module.good = good

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serving_default(examples):
        outputs = good.signatures["serving_default"](examples=examples)
        return {"probabilities": outputs["probabilities"] * float("nan"), "classes": outputs["classes"]}

    module.core = tf.function(lambda features: good.tpu_core(features))
    broken = tmp_path / "broken"
    tf.saved_model.save(module, str(broken), signatures={
        "serving_default": serving_default,
        export.RAW_SIGNATURE: good.signatures[export.RAW_SIGNATURE],
        export.TRANSFORM_SIGNATURE: good.signatures[export.TRANSFORM_SIGNATURE]})
    shutil.copytree(pushed / "assets.extra", broken / "assets.extra")
    runs = metadata_store.run_outputs(config, first_summary["run_id"])
    canary = pathlib.Path(runs["Trainer"]["ModelRun"][0].uri) / CANARY_FILE
    inputs, outputs, blessing = _validator_artifacts(tmp_path, broken, canary)
    serving_validator.Executor().Do(inputs, outputs, {SETTINGS_KEY: config.serving_validator_settings().model_dump_json()})

    assert blessing.get_int_custom_property("blessed") == 0
    assert "output 'probabilities' is not finite" in blessing.get_string_custom_property("reason")
    assert os.path.exists(os.path.join(blessing.uri, "INFRA_NOT_BLESSED"))
    from components.pusher import Executor as PusherExecutor
    from tfx.proto import pusher_pb2
    from tfx.utils import proto_utils

    base = tmp_path / "serving" / "taxi"
    pushed_model = standard_artifacts.PushedModel()
    pushed_model.uri = str(tmp_path / "pushed")
    PusherExecutor().Do(
        {"model": inputs["model"], "model_blessing": inputs["model_blessing"], "infra_blessing": [blessing]},
        {"pushed_model": [pushed_model]},
        {"push_destination": proto_utils.proto_to_json(pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(base)))),
         "custom_config": config.serving.model_dump_json()})
    assert pushed_model.get_int_custom_property("pushed") == 0 and versions(str(base)) == []


KILL_BEFORE_RENAME = """
import os, signal, sys
from components import serving_base
from components.contracts import STAGING_PREFIX
from components.settings import ServingSection
real_rename = os.rename
def killed(source, target):
    if os.path.basename(source).startswith(STAGING_PREFIX):
        os.kill(os.getpid(), signal.SIGKILL)
    real_rename(source, target)
os.rename = killed
serving_base.push_version(sys.argv[1], sys.argv[2], ServingSection.model_validate_json(sys.argv[3]))
"""


def test_a_push_killed_before_the_rename_leaves_no_version_and_the_next_push_recovers(tmp_path, config, pushed):
    base = tmp_path / "serving" / "taxi"
    serving = config.serving.model_copy(update={"versions_to_keep": 2})
    first, _ = push_version(str(pushed), str(base), serving)
    killed = subprocess.run([sys.executable, "-c", KILL_BEFORE_RENAME, str(pushed), str(base), serving.model_dump_json()],
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    left = sorted(p.name for p in base.iterdir())
    assert [name for name in left if name.isdigit()] == [first]  # TF Serving sees only the whole first version
    assert any(name.startswith(STAGING_PREFIX) for name in left)
    assert (base / [n for n in left if n.startswith(STAGING_PREFIX)][0] / "saved_model.pb").exists()

    second, _ = push_version(str(pushed), str(base), serving)
    third, _ = push_version(str(pushed), str(base), serving)
    names = sorted(p.name for p in base.iterdir())
    assert not any(name.startswith(STAGING_PREFIX) for name in names)
    assert [str(v) for v in versions(str(base))] == [second, third]  # versions_to_keep: 2
    assert sorted(n for n in names if n.startswith(BUNDLE_PREFIX)) == [f"{BUNDLE_PREFIX}{second}", f"{BUNDLE_PREFIX}{third}"]


def _batching_parameters_class():
    """TF Serving's BatchingParameters (session_bundle_config.proto), which no pip package ships."""
    file = descriptor_pb2.FileDescriptorProto(name="batching_parameters_test.proto", package="tensorflow.serving",
                                              dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    for number, name in enumerate(["max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                                   "num_batch_threads"], start=1):
        message.field.add(name=name, number=number, type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                          type_name=".google.protobuf.Int64Value", label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    message.field.add(name="allowed_batch_sizes", number=6, type=descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    from google.protobuf import wrappers_pb2
    pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb).SerializeToString())
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


@pytest.mark.parametrize("target", ["cpu", "gpu", "tpu"])
def test_deployment_bundle_parses_and_carries_the_serving_section(tmp_path, target):
    settings = yaml.safe_load((REPO / "pipeline.yaml").read_text())
    settings["serving"].update({"target": target, "replicas": 2, "resources": {"cpu": "3", "memory": "6Gi", "accelerators": 2},
                                "batching": {"max_batch_size": 64, "allowed_batch_sizes": [16, 64]}})
    config_file = tmp_path / "pipeline.yaml"
    config_file.write_text(yaml.safe_dump(settings))
    shutil.copytree(REPO / "data", tmp_path / "data", ignore=shutil.ignore_patterns("span-*"))
    serving = load_config(config_file).serving
    bundle = tmp_path / "bundle"
    files = deployment.write_bundle(str(bundle), serving, "/srv/models/taxi", "1700000000")

    models = text_format.Parse((bundle / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    [model] = models.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("taxi", "/models/taxi", "tensorflow")
    assert model.model_version_policy.latest.num_versions == 1
    batching = text_format.Parse((bundle / "batching_parameters.txt").read_text(), _batching_parameters_class()())
    assert batching.max_batch_size.value == 64 and list(batching.allowed_batch_sizes) == [16, 64]

    config_map, deploy, service = yaml.safe_load_all((bundle / "kubernetes.yaml").read_text())
    assert config_map["data"]["models.config"] == (bundle / "models.config").read_text()
    pod = deploy["spec"]["template"]["spec"]
    [container] = pod["containers"]
    limits = container["resources"]["limits"]
    assert deploy["spec"]["replicas"] == 2 and limits["cpu"] == "3" and limits["memory"] == "6Gi"
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501} == {p["port"] for p in service["spec"]["ports"]}
    release = deployment.serving_release()
    if target == "cpu":
        assert container["image"] == f"tensorflow/serving:{release}" and "nvidia.com/gpu" not in limits
    if target == "gpu":
        assert container["image"] == f"tensorflow/serving:{release}-gpu" and limits["nvidia.com/gpu"] == 2
        assert "--enable_batching=true" in container["args"]
    if target == "tpu":
        assert container["image"] == serving.tpu.serving_image and limits["google.com/tpu"] == 2
        assert pod["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == "1x1"
        options = (bundle / "tpu_converter_options.pbtxt").read_text()
        assert 'function_alias: "tpu_func"' in options and "allowed_batch_sizes: 128" in options
        assert "tpu_convert.sh" in files
    docker = (bundle / "docker_run.sh").read_text()
    assert f"tensorflow/serving:{release} " in docker and f"tensorflow/serving:{release}-gpu " in docker
    assert "--gpus all" in docker and "source=/srv/models/taxi,target=/models/taxi,readonly" in docker
