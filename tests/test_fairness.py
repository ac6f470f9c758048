"""Fairness slices and gates, for real on UCI Adult: a fair-enough model is pushed; a model that fails
one group is blocked by the Evaluator's per-slice and cross-slice thresholds, and the summary says who."""
import collections
import csv
import importlib
import random

import pytest
import tensorflow_model_analysis as tfma
import yaml

from components import evaluation
from components.contracts import FAIRNESS_REPORT_CSV, FAIRNESS_REPORT_JSON, FAIRNESS_REPORT_PNG
from components.evaluation import gated_metric_name
from components.exact_auc import ExactAUC
from components.fairness_evaluator import narrow_gates
from pipeline.config import ConfigError, load_config
from project_helpers import REPO, run_cli, write_config, write_span

ADULT = REPO / "examples" / "adult"
ROWS = 4000
FAST = {
    "training": {"train_steps": 400, "eval_steps": 20, "batch_size": 64},
    "model": {"hidden_units": [32]},
    "beam": {"direct_running_mode": "in_memory"},
}


def adult_rows(count: int) -> tuple[list[str], list[dict]]:
    with (ADULT / "data" / "span-01" / "data.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    return reader.fieldnames, random.Random(7).sample(rows, count)


def adult_project(tmp_path, rows_changer=None):
    header, rows = adult_rows(ROWS)
    if rows_changer:
        rows = rows_changer(rows)
    write_span(tmp_path, 1, header, rows)
    return write_config(tmp_path, FAST, example=ADULT)


def evaluation_folder(config_path):
    return next((config_path.parent / "outputs" / "adult" / "Evaluator" / "evaluation").iterdir())


def test_example_config_loads_and_its_gates_become_tfma_thresholds():
    config = load_config(ADULT / "pipeline.yaml")
    eval_config = evaluation.eval_config(config.evaluation, config.fairness, config.label.name)
    metrics = {gated_metric_name(metric): metric for metric in eval_config.metrics_specs[0].metrics}
    assert [list(s.feature_keys) for s in metrics["auc"].per_slice_thresholds[1].slicing_specs] == [
        ["sex"], ["race"], ["sex", "race"]]   # [0] is evaluation.gates' overall AUC floor
    assert getattr(importlib.import_module(metrics["auc"].module), metrics["auc"].class_name) is ExactAUC
    assert metrics["false_positive_rate@0.5"].class_name == "FPR"
    assert len(metrics["false_positive_rate@0.5"].cross_slice_thresholds) == 1
    assert "FairnessIndicators" in {metric.class_name for metric in metrics.values()}
    assert [list(s.feature_keys) for s in eval_config.slicing_specs] == [[], ["sex"], ["race"], ["sex", "race"]]
    assert eval_config.options.min_slice_size.value == 100


def test_the_calibration_plot_is_computed_only_when_asked_for():
    config = load_config(ADULT / "pipeline.yaml")
    for asked in (False, True):
        section = config.evaluation.model_copy(update={"calibration_plot": asked})
        metrics = evaluation.eval_config(section, config.fairness, config.label.name).metrics_specs[0].metrics
        assert ("CalibrationPlot" in {metric.class_name for metric in metrics}) is asked


@pytest.mark.parametrize("gate, message", [
    ({"metric": "false_positive_rate@0.4", "max_gap": 0.1}, "threshold 0.4 is not in fairness.thresholds"),
    ({"metric": "fpr@0.5", "max_gap": 0.1}, "is not one of auc, example_count or <rate>@<threshold>"),
    ({"metric": "negative_rate@0.5", "max_gap": 0.1}, "with a rate among false_positive_rate"),
    ({"metric": "auc", "max_gap": 0.1, "slices": ["age"]}, "slices ['age'] is not an entry of fairness.slices"),
])
def test_a_gate_on_an_unknown_metric_or_slicing_is_a_config_error(tmp_path, gate, message):
    settings = yaml.safe_load((ADULT / "pipeline.yaml").read_text())
    settings["fairness"]["gap_gates"] = [gate]
    settings["data"].update(base=str(ADULT / "data"), schema_path=str(ADULT / "schema" / "schema.pbtxt"))
    broken = tmp_path / "pipeline.yaml"
    broken.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError) as caught:
        load_config(broken)
    assert "fairness" in str(caught.value) and message in str(caught.value)


def test_gates_are_narrowed_to_large_slices_and_small_ones_are_left_ungated():
    config = load_config(ADULT / "pipeline.yaml")
    eval_config = evaluation.eval_config(config.evaluation, config.fairness, config.label.name)
    large = {("sex",): [("Female",), ("Male",)], ("race",): [("Black",), ("White",)],
             ("sex", "race"): [("Male", "White")]}
    narrow_gates(eval_config, large)
    metrics = {gated_metric_name(metric): metric for metric in eval_config.metrics_specs[0].metrics}
    overall, per_slice = metrics["auc"].per_slice_thresholds
    assert [dict(s.feature_values) for s in overall.slicing_specs] == [{}]   # the overall gate is left as it was
    assert [dict(s.feature_values) for s in per_slice.slicing_specs] == [
        {"sex": "Female"}, {"sex": "Male"}, {"race": "Black"}, {"race": "White"}, {"sex": "Male", "race": "White"}]
    fpr = metrics["false_positive_rate@0.5"].cross_slice_thresholds[0]
    pairs = [(dict(c.baseline_spec.feature_values), [dict(s.feature_values) for s in c.slicing_specs])
             for c in fpr.cross_slicing_specs]
    # a cross with one large slice has no pair to compare; race=Other etc. never appear
    assert pairs == [({"sex": "Female"}, [{"sex": "Male"}]), ({"race": "Black"}, [{"race": "White"}])]
    assert fpr.threshold.value_threshold.upper_bound.value == pytest.approx(0.25)
    assert all(not s.baseline_spec.feature_keys for s in eval_config.cross_slicing_specs)
    assert len(eval_config.cross_slicing_specs) == 2   # the FNR gate's pairs are the FPR gate's: computed once


@pytest.fixture(scope="module")
def fair_run(tmp_path_factory):
    config = adult_project(tmp_path_factory.mktemp("adult"))
    completed, summary = run_cli(config)
    return config, completed, summary


def test_a_normally_trained_adult_model_passes_the_fairness_gates_and_is_pushed(fair_run):
    config, completed, summary = fair_run
    assert completed.returncode == 0, completed.stdout + completed.stderr[-3000:]
    assert summary["model_gate"]["passed"] and summary["push"]["pushed"]
    folder = evaluation_folder(config)
    assert tfma.load_validation_result(str(folder)).validation_ok
    for name in (FAIRNESS_REPORT_CSV, FAIRNESS_REPORT_JSON, FAIRNESS_REPORT_PNG):
        assert (folder / name).stat().st_size > 0
    assert summary["model_gate"]["fairness"]["table"] == str(folder / FAIRNESS_REPORT_CSV)


def test_small_slices_are_reported_with_their_metrics_but_not_gated(fair_run):
    config, _, summary = fair_run
    with (evaluation_folder(config) / FAIRNESS_REPORT_CSV).open(newline="") as handle:
        rows = {row["slice"]: row for row in csv.DictReader(handle)}
    small = rows["race=Other"]
    assert int(small["examples"]) < 100 and small["gated"] == "False"
    assert small["auc"] != "" and small["false_positive_rate@0.5"] != ""   # reported all the same
    assert rows["sex=Male"]["gated"] == "True" and int(rows["sex=Male"]["examples"]) >= 100
    assert any(entry.startswith("race=Other (") for entry in summary["model_gate"]["fairness"]["not_gated"])
    thresholds = tfma.load_validation_result(str(evaluation_folder(config)))
    checked = {tuple(sorted(d.slicing_spec.feature_values.items())) for d in thresholds.validation_details.slicing_details}
    assert (("race", "Other"),) not in checked and (("sex", "Male"),) in checked


def randomize_female_labels(rows):
    """Corrupts the label of one group only: a Female row's income is a coin flip."""
    coin = random.Random(11)
    return [dict(row, income=coin.choice([">50K", "<=50K"])) if row["sex"] == "Female" else row for row in rows]


def test_a_model_that_fails_one_group_is_blocked_and_the_summary_names_the_group(tmp_path):
    config = adult_project(tmp_path, randomize_female_labels)
    completed, summary = run_cli(config)
    assert completed.returncode == 4, completed.stdout + completed.stderr[-3000:]
    assert summary["status"] == "model_blocked" and not summary["push"]["pushed"]
    assert not (tmp_path / "outputs" / "serving" / "adult").exists()
    failures = summary["model_gate"]["failures"]
    assert any(f["slice"] == "sex=Female" and f["metric"] == "auc" and f["value"] < 0.8 for f in failures), failures
    assert "auc on sex=Female" in completed.stdout

    # a gap gate reached TFMA's own ValidationResult as a cross-slice failure between the two sexes
    result = tfma.load_validation_result(str(evaluation_folder(config)))
    gaps = collections.defaultdict(list)
    for validation in result.metric_validations_per_slice:
        if validation.HasField("cross_slice_key"):
            columns = {s.column for s in validation.cross_slice_key.baseline_slice_key.single_slice_keys}
            for failure in validation.failures:
                gaps[tuple(sorted(columns))].append((failure.metric_key.name, failure.metric_value.double_value.value,
                                                     failure.metric_threshold.value_threshold.upper_bound.value))
    assert gaps[("sex",)] and all(abs(value) > bound for _, value, bound in gaps[("sex",)]), gaps
    assert {name for name, _, _ in gaps[("sex",)]} <= {"false_positive_rate@0.5", "false_negative_rate@0.5"}


def test_a_gated_slice_with_no_eval_examples_is_named_as_the_gate_asked_for_it(tmp_path):
    """TFMA lists such a slice as the SlicingSpec of the gate (ValidationResult.missing_slices), not a SliceKey."""
    import tensorflow as tf
    from tensorflow_model_analysis.proto import validation_result_pb2

    from components.validation_result import gate_failures

    result = validation_result_pb2.ValidationResult(validation_ok=False)
    result.missing_slices.add(feature_values={"sex": "Female", "race": "Other"})
    result.missing_slices.add(feature_keys=["native_country"])
    with tf.io.TFRecordWriter(str(tmp_path / "validations.tfrecord")) as writer:
        writer.write(result.SerializeToString())
    assert [(f["slice"], f["threshold"]) for f in gate_failures(str(tmp_path))] == [
        ("race=Other, sex=Female", "the slice has no examples in the eval split"),
        ("native_country=*", "the slice has no examples in the eval split")]
