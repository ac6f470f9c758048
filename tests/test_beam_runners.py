"""Beam runners from beam:. The portable path for real: the same small project run on the DirectRunner and on
Beam's PortableRunner against a local job server this module starts (LOOPBACK environment: the path Flink's
and Spark's job servers take), with equal statistics, transformed examples and evaluation counts."""
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft

from pipeline import metadata_store
from pipeline.config import load_config
from project_helpers import run_cli, write_config, write_span

ROWS = 300


@pytest.fixture(scope="module")
def job_server(tmp_path_factory):
    """Beam's own job server (the Python one), on a free loopback port: host:port and its log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("job_server") / "job_server.log"
    server = subprocess.Popen([sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
                               f"--port={port}"], stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    deadline = time.monotonic() + 120
    while "Listening for beam jobs" not in log.read_text():
        assert server.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    yield f"localhost:{port}", log
    server.terminate()
    server.wait(timeout=60)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, taxi_rows, job_server):
    """The same span and settings on the DirectRunner and on the PortableRunner: {runner: (config, summary)}."""
    header, rows = taxi_rows
    endpoint, _ = job_server
    results = {}
    for runner, beam in (("direct", {}),
                         ("portable", {"runner": "portable",
                                       "portable": {"job_endpoint": endpoint, "environment_type": "LOOPBACK"}})):
        project = tmp_path_factory.mktemp(runner)
        write_span(project, 1, header, rows[:ROWS])
        config = write_config(project, {"beam": beam})
        completed, summary = run_cli(config)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        results[runner] = (load_config(config), summary)
    return results


def output_uri(config, summary, node: str, type_name: str) -> str:
    [artifact] = metadata_store.run_outputs(config, summary["run_id"])[node][type_name]
    return artifact.uri


def test_the_beam_components_ran_as_jobs_on_the_job_server(runs, job_server):
    _, log = job_server
    jobs = log.read_text().count("with state DONE")
    assert jobs >= 4, log.read_text()[-2000:]   # ExampleGen, StatisticsGen, Transform, Evaluator at least
    for runner, (config, summary) in runs.items():
        assert summary["status"] == "ok" and summary["push"]["pushed"], runner


def test_statistics_are_the_same_on_both_runners(runs):
    statistics = {}
    for runner, (config, summary) in runs.items():
        uri = output_uri(config, summary, "StatisticsGen", "ExampleStatistics")
        statistics[runner] = tfdv.load_stats_binary(f"{uri}/Split-train/FeatureStats.pb")
    direct, portable = (statistics[r].datasets[0] for r in ("direct", "portable"))
    assert direct.num_examples == portable.num_examples > 0
    means = {r: {f.path.step[0]: f.num_stats.mean for f in statistics[r].datasets[0].features if f.HasField("num_stats")}
             for r in statistics}
    assert means["direct"].keys() == means["portable"].keys() and means["direct"]
    for feature, mean in means["direct"].items():
        assert means["portable"][feature] == pytest.approx(mean, rel=1e-9), feature


def raw_examples(uri: str) -> list[bytes]:
    records = []
    for path in sorted(tf.io.gfile.glob(f"{uri}/Split-train/*.gz")):
        records += list(tf.data.TFRecordDataset(path, compression_type="GZIP").as_numpy_iterator())
    return records


def transformed(graph_uri: str, serialized: list[bytes]) -> dict:
    graph = tft.TFTransformOutput(graph_uri)
    features = graph.transform_raw_features(tf.io.parse_example(serialized, graph.raw_feature_spec()))
    return {name: (tf.sparse.to_dense(value) if isinstance(value, tf.SparseTensor) else value).numpy()
            for name, value in features.items()}


def test_transform_analyses_the_same_on_both_runners(runs):
    """Both transform graphs (their analyzers' means, variances, quantiles and vocabularies, computed by
    Beam) turn the same raw rows into the same model inputs."""
    config, summary = runs["direct"]
    rows = raw_examples(output_uri(config, summary, "CsvExampleGen", "Examples"))
    direct, portable = (transformed(output_uri(config, summary, "Transform", "TransformGraph"), rows)
                        for config, summary in (runs["direct"], runs["portable"]))
    assert len(rows) > 200 and direct.keys() == portable.keys() and len(direct) > 10
    for name, values in direct.items():
        assert np.allclose(values, portable[name], rtol=1e-6, atol=1e-6) if values.dtype.kind == "f" \
            else (values == portable[name]).all(), name


def test_the_evaluator_counts_the_same_examples_and_labels_on_both_runners(runs):
    overall = {runner: summary["model_gate"]["metrics"]["Overall"] for runner, (config, summary) in runs.items()}
    for metric in ("example_count", "mean_label"):
        assert overall["portable"][metric] == pytest.approx(overall["direct"][metric], rel=1e-9), metric


def test_a_portable_runner_needs_its_section_and_beam_options_are_checked(tmp_path):
    (tmp_path / "data").mkdir()
    for beam, message in (({"runner": "portable"}, "beam: runner portable needs a portable: section (job_endpoint"),
                          ({"extra_args": ["--job_endpont=localhost:1"]},
                           "beam: extra_args: --job_endpont=localhost:1: not an option of the installed Beam's"),
                          ({"runner": "dataflow", "dataflow": {"project": "p", "region": "r", "temp_location": "/tmp"}},
                           "beam.dataflow.temp_location: got '/tmp'")):
        completed, _ = run_cli(write_config(tmp_path, {"beam": beam}))
        assert completed.returncode == 2 and message in completed.stderr, completed.stderr
