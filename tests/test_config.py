"""Bad configs stop before any component starts, naming the key, the value and what is allowed."""
import subprocess
import sys

import pytest
import yaml

from pipeline.config import ConfigError, load_config
from project_helpers import REPO, default_config, merge


def write(tmp_path, text: str):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return path


def load_with(tmp_path, overrides: dict):
    return load_config(write(tmp_path, yaml.safe_dump(merge(default_config(), overrides))))


def test_repository_config_is_valid():
    config = load_config(REPO / "pipeline.yaml")
    assert config.pipeline.name == "taxi"
    assert config.serving_dir == (REPO / "outputs" / "serving" / "taxi").resolve()
    assert [gate.metric for gate in config.evaluation.gates] == ["AUC"]


@pytest.mark.parametrize("overrides, expected", [
    ({"training": {"batch_sise": 10}}, ["training.batch_sise", "unknown key", "10"]),
    ({"training": {"batch_size": "forty"}}, ["training.batch_size", "'forty'", "valid integer"]),
    ({"training": {"batch_size": 0}}, ["training.batch_size", "got 0", "greater than 0"]),
    ({"training": {"strategy": "horovod"}}, ["training.strategy", "'horovod'", "'one_device'", "'tpu'"]),
    ({"training": {"strategy": "mirrored", "devices": ["/cpu:0", "/cpu:1", "/cpu:2"]}},
     ["training", "batch_size 40 (the global batch) is not a multiple of the 3 replicas"]),
    ({"training": {"strategy": "tpu"}}, ["training", "strategy tpu needs tpu"]),
    ({"training": {"devices": ["/gpu:0"]}}, ["training", "devices only applies to strategy one_device or mirrored"]),
    ({"model": {"learning_rate": 2.0}}, ["model.learning_rate", "got 2.0", "less than 1"]),
    ({"beam": {"direct_running_mode": "threads"}}, ["beam.direct_running_mode", "'threads'", "'multi_processing'"]),
    ({"data": {"spans": {"policy": "newest"}}}, ["data.spans.policy", "'newest'", "'latest' or 'last_k'"]),
    ({"data": {"span_pattern": "*/data.csv"}}, ["data", "{SPAN}", "*/data.csv"]),
    ({"features": [{"name": "fare", "treatment": "bucketize"}]}, ["features.0", "needs 'buckets'"]),
    ({"features": [{"name": "fare", "treatment": "scale"}]}, ["features.0.treatment", "'scale'", "'zscore'"]),
    ({"features": [{"name": "tips", "treatment": "zscore"}]}, ["label.source", "'tips'", "leak"]),
    ({"label": {"rule": "ratio_above", "denominator": None}}, ["label", "needs denominator"]),
    ({"evaluation": {"gates": [{"metric": "AUC"}]}}, ["evaluation.gates.0", "needs lower_bound"]),
    ({"evaluation": {"gates": [{"metric": "F1", "lower_bound": 0.5}]}}, ["evaluation.gates.0.metric", "'F1'", "'AUC'"]),
    ({"serving": {"model_name": "my model"}}, ["serving.model_name", "'my model'", "pattern"]),
    ({"retraining": {"drift": {"features": {"fares": {"psi": 0.1}}}}}, ["retraining.drift.features", "fares"]),
    ({"retraining": {"drift": {"features": {"payment_type": {"psi": 0.1}}}}},
     ["retraining.drift.features.payment_type", "psi does not apply to a string feature", "l_infinity"]),
    ({"retraining": {"drift": {"features": {"trip_start_hour": {"location": 0.1}}}}},
     ["retraining.drift.features.trip_start_hour", "location does not apply to a category feature"]),
    ({"retraining": {"drift": {"thresholds": {"psi": -1}}}}, ["retraining.drift.thresholds.psi", "greater than 0"]),
    ({"training": {"epochs": 7}}, ["training.train_steps (1000) is not a multiple of training.epochs (7)"]),
])
def test_bad_value_names_key_value_and_what_is_allowed(tmp_path, overrides, expected):
    with pytest.raises(ConfigError) as error:
        load_with(tmp_path, overrides)
    message = str(error.value)
    assert str(tmp_path / "pipeline.yaml") in message
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_drift_settings_take_per_feature_overrides_and_null(tmp_path):
    config = load_with(tmp_path, {"retraining": {"drift": {
        "thresholds": {"psi": 0.3, "l_infinity": 0.2},
        "features": {"fare": {"location": None}, "payment_type": {"l_infinity": 0.1}}}}})
    settings = config.drift_check_settings().model_dump()["features"]
    assert settings["fare"] == {"kind": "numeric", "thresholds": {"psi": 0.3, "location": None, "scale": 0.3}}
    assert settings["payment_type"] == {"kind": "string", "thresholds": {"l_infinity": 0.1}}
    assert settings["company"]["thresholds"] == {"l_infinity": 0.2}
    assert settings["trip_start_hour"] == {"kind": "category", "thresholds": {"psi": 0.3}}


def test_missing_section(tmp_path):
    config = default_config()
    del config["serving"]
    with pytest.raises(ConfigError, match=r"serving: required key is missing"):
        load_config(write(tmp_path, yaml.safe_dump(config)))


def test_paths_that_do_not_exist(tmp_path):
    with pytest.raises(ConfigError, match=r"data.base: no data folder at .*nowhere"):
        load_with(tmp_path, {"data": {"base": "nowhere"}})
    with pytest.raises(ConfigError, match=r"data.schema_path: no schema file at .*missing.pbtxt"):
        load_with(tmp_path, {"data": {"schema_path": "missing.pbtxt"}})


def test_not_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "pipeline: [unclosed"))
    with pytest.raises(ConfigError, match="expected a mapping of sections"):
        load_config(write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path / "absent.yaml")


def test_yaml_tags_are_not_executed(tmp_path):
    """safe_load: a python object tag is an error, never a constructor call."""
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "pipeline: !!python/object/apply:os.system ['true']\n"))


def test_cli_exits_2_before_any_component(tmp_path):
    path = write(tmp_path, yaml.safe_dump(merge(default_config(), {"training": {"train_steps": -5}})))
    completed = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(path)],
                               cwd=REPO, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "training.train_steps: got -5; Input should be greater than 0" in completed.stderr
    assert "started" not in completed.stdout
    assert not (tmp_path / "outputs").exists()
