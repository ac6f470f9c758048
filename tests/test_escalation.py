"""The model gate measures what it claims on saturated scores, and a rejected candidate escalates.

One project on real taxi rows, runs in order:
  span 1  a first model trained to saturate (no weight decay, no early stopping, many steps);
  span 2  a bootstrap resample of span 1, fine-tuned at a vanishing learning rate: the candidate's
          scores equal the baseline's, and it must pass a no-regression gate of 0.001;
  span 3  another resample with its tips shuffled (labels at random): the fine-tune is rejected,
          the next run on span 3 is a full retrain, rejected too, and the next one skips with exit 0;
  span 4  the next real quarter: a new span starts afresh and is pushed.
"""
import glob
import json
import pathlib
import random

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from components.contracts import FINE_TUNE, FULL_RETRAIN, MODE_KEY, REJECTED_KEY, SKIP
from components.evaluation import OVERALL
from pipeline import metadata_store
from pipeline.config import load_config
from pipeline.summary import evaluation_metrics
from project_helpers import TAXI, read_rows, run_cli, write_config, write_span

SETTINGS = {
    "model": {"hidden_units": [32], "l2": 0.0, "learning_rate": 0.01},   # made to saturate
    "training": {"train_steps": 600, "early_stopping_patience": 0},
    "evaluation": {"gates": [{"metric": "AUC", "lower_bound": 0.7, "max_regression": 0.001}]},
    "retraining": {"fine_tune": {"learning_rate": 1.0e-9, "train_steps": 10, "frozen_layers": []}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    header, rows = read_rows(TAXI / "span-06" / "data.csv")
    later = read_rows(TAXI / "span-07" / "data.csv")[1]
    project = tmp_path_factory.mktemp("escalation")
    config = write_config(project, SETTINGS)
    chooser = random.Random(11)
    steps = {}
    write_span(project, 1, header, rows)
    steps["first"] = [run_cli(config)]
    write_span(project, 2, header, [chooser.choice(rows) for _ in rows])
    steps["resample"] = [run_cli(config)]
    resample = [chooser.choice(rows) for _ in rows]
    tips = [row["tips"] for row in resample]
    chooser.shuffle(tips)
    write_span(project, 3, header, [dict(row, tips=tip) for row, tip in zip(resample, tips)])
    steps["random_labels"] = [run_cli(config), run_cli(config), run_cli(config), run_cli(config)]
    write_span(project, 4, header, later)
    steps["new_span"] = [run_cli(config)]
    return project, steps


def eval_scores(model_dir: str, examples_uri: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels (from the model's own transform graph) and scores of the eval split, through serving_default."""
    model = tf.saved_model.load(model_dir)
    records = tf.constant([record.numpy() for path in sorted(glob.glob(f"{examples_uri}/Split-eval/*"))
                           for record in tf.data.TFRecordDataset(path, compression_type="GZIP")])
    labels = model.signatures["transform_features"](examples=records)["big_tipper"].numpy().reshape(-1)
    scores = model.signatures["serving_default"](examples=records)["probabilities"].numpy().reshape(-1)
    return labels, scores


def test_a_candidate_equal_to_its_saturated_baseline_passes_the_no_regression_gate(project):
    project, steps = project
    (first, _), (completed, summary) = steps["first"][0], steps["resample"][0]
    assert first.returncode == 0, first.stdout
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] == FINE_TUNE and summary["model_gate"]["passed"], completed.stdout
    assert summary["push"]["pushed"]

    config = load_config(project / "pipeline.yaml")
    first_outputs = metadata_store.run_outputs(config, steps["first"][0][1]["run_id"])
    outputs = metadata_store.run_outputs(config, summary["run_id"])
    examples = outputs["CsvExampleGen"]["Examples"][0].uri
    labels, baseline = eval_scores(str(pathlib.Path(first_outputs["Trainer"]["Model"][0].uri) / "Format-Serving"), examples)
    _, candidate = eval_scores(str(pathlib.Path(outputs["FineTuneTrainer"]["Model"][0].uri) / "Format-Serving"), examples)
    assert np.max(np.abs(candidate - baseline)) < 1e-3
    # Saturated: many scores share TFMA's lowest AUC bin (width 1e-4), where it ranked them as ties.
    assert np.mean(baseline < 1e-4) > 0.2, np.mean(baseline < 1e-4)

    # Every gated metric agrees with its exact value on the same rows.
    metrics = evaluation_metrics(outputs["Evaluator"]["ModelEvaluation"][0].uri)[OVERALL]
    assert metrics["auc"] == pytest.approx(roc_auc_score(labels, candidate), abs=0.002)
    predicted = candidate > config.evaluation.decision_threshold
    assert metrics["binary_accuracy"] == pytest.approx(np.mean(predicted == (labels == 1)), abs=1e-6)
    assert metrics["precision"] == pytest.approx(labels[predicted].mean(), abs=1e-6)
    assert metrics["recall"] == pytest.approx(predicted[labels == 1].mean(), abs=1e-6)
    assert metrics["calibration"] == pytest.approx(candidate.sum() / labels.sum(), rel=1e-4)
    assert abs(metrics["auc (change vs baseline)"]) < 0.001


def test_a_rejected_fine_tune_escalates_to_a_full_retrain_then_to_skipping(project):
    project, steps = project
    (tuned, tuned_summary), (full, full_summary), (skipped, skipped_summary), (again, again_summary) = \
        steps["random_labels"]
    assert tuned.returncode == 4, tuned.stdout
    assert tuned_summary["retraining"]["mode"] == FINE_TUNE and not tuned_summary["push"]["pushed"]
    assert tuned_summary["verdict"]["next_run_on_this_span"] == FULL_RETRAIN
    assert tuned_summary["verdict"]["rejections"][0]["gate"] == "model"
    assert "next run on this span: full_retrain" in tuned.stdout

    assert full.returncode == 4, full.stdout
    assert full_summary["retraining"]["mode"] == FULL_RETRAIN
    assert any("was rejected" in r and "escalating to a full retrain" in r for r in full_summary["retraining"]["reasons"])
    assert full_summary["verdict"]["next_run_on_this_span"] == SKIP

    for completed, summary in ((skipped, skipped_summary), (again, again_summary)):
        assert completed.returncode == 0, completed.stdout
        retraining = summary["retraining"]
        assert retraining["mode"] == SKIP and summary["status"] == "ok" and not summary["push"]["pushed"]
        assert retraining["serving"]["lags_span"] == 3 and retraining["serving"]["trained_on_spans"] == [2]
        rejected = retraining["rejected_candidates"]
        assert [r["mode"] for r in rejected] == [FINE_TUNE, FULL_RETRAIN]
        assert [r["run_id"] for r in rejected] == [tuned_summary["run_id"], full_summary["run_id"]]
        assert all(r["rejections"][0]["gate"] == "model" and "auc" in r["rejections"][0]["reasons"][0] for r in rejected)
        assert "serving: model" in completed.stdout and "lagging span 3" in completed.stdout
        assert f"rejected earlier: run {full_summary['run_id']} (full_retrain) by the model gate: auc" in completed.stdout
        outcomes = {c["name"]: c["outcome"] for c in summary["components"]}
        assert outcomes["Trainer"] == outcomes["FineTuneTrainer"] == outcomes["Evaluator"] == "skipped"

    # The decision, with the rejected runs, is in ML Metadata.
    config = load_config(project / "pipeline.yaml")
    decision = metadata_store.run_outputs(config, skipped_summary["run_id"])["RetrainPolicy"]["RetrainDecision"][0]
    assert metadata_store.custom_str(decision, MODE_KEY) == SKIP
    assert json.loads(metadata_store.custom_str(decision, REJECTED_KEY)) == skipped_summary["retraining"]["rejected_candidates"]


def test_a_new_span_starts_afresh(project):
    _, steps = project
    completed, summary = steps["new_span"][0]
    assert completed.returncode == 0, completed.stdout
    assert summary["retraining"]["mode"] in (FINE_TUNE, FULL_RETRAIN)
    assert summary["retraining"]["rejected_candidates"] == []
    assert not any("rejected" in reason for reason in summary["retraining"]["reasons"])
    assert summary["push"]["pushed"] and summary["trained_on_spans"] == [4]
