"""pipeline.yaml cannot make the pipeline run code, write outside its roots or hold a secret: each such file
stops `run` with exit code 2, naming the key, before anything is read or written."""
import subprocess
import sys

import pytest
import yaml

from project_helpers import default_config, merge


def run(tmp_path, text: str):
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    return subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(path)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_python_tag_is_never_constructed(tmp_path):
    marker = tmp_path / "executed"
    completed = run(tmp_path, f"pipeline: !!python/object/apply:os.system ['touch {marker}']\n")
    assert completed.returncode == 2 and "not valid YAML" in completed.stderr
    assert not marker.exists()


@pytest.mark.parametrize("overrides, message", [
    ({"serving": {"model_name": ".."}}, "serving.model_name: got '..'"),
    ({"pipeline": {"name": "../elsewhere"}}, "pipeline.name: got '../elsewhere'"),
    ({"data": {"span_pattern": "../../etc/span-{SPAN}/*.csv"}}, "span_pattern is relative to data.base and stays inside it"),
    ({"data": {"span_pattern": "/etc/span-{SPAN}/*.csv"}}, "span_pattern is relative to data.base and stays inside it"),
    ({"data": {"complete_marker": "../_SUCCESS"}}, "complete_marker is a file name in the span's folder"),
    ({"metadata": {"backend": "mysql", "mysql": {"database": "m", "user": "u", "password": "hunter2"}}},
     "metadata.mysql.password: unknown key"),
    ({"beam": {"extra_args": ["--sdk_location=container", "--api_token=hunter2"]}},
     "extra_args[1]: --api_token is given a value in the file; secrets come from the workers' environment"),
])
def test_escapes_and_secrets_stop_with_exit_2_naming_the_key(tmp_path, overrides, message):
    completed = run(tmp_path, yaml.safe_dump(merge(default_config(), overrides)))
    assert completed.returncode == 2, completed.stdout + completed.stderr
    assert message in completed.stderr
    assert "hunter2" not in completed.stdout + completed.stderr   # a refused secret is not echoed either
    assert not (tmp_path / "outputs").exists()
