"""fairness.remediation: a candidate blocked by a gap gate is retrained with MinDiff, and that candidate meets the
same gates. The decision rules on their own, then for real on UCI Adult (tests/test_fairness.py's rows):
  - a gap gate the plain model fails: the next run on the span trains with MinDiff, and the gap shrinks;
  - a group whose labels are noise: MinDiff cannot make its AUC good, and the candidate is still blocked.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest
import tensorflow as tf
import yaml

from components import remediation
from components.candidate_verdict import rejections
from components.contracts import FINE_TUNE, FULL_RETRAIN, MIN_DIFF_KEY, MODE_KEY, SKIP, TRAINING_OPTIONS_FILE
from components.evaluation import slice_gaps
from components.retrain_policy import decide
from pipeline import metadata_store
from pipeline.config import ConfigError, load_config
from project_helpers import REPO, merge, run_cli, write_config
from test_fairness import ADULT, FAST, adult_project, randomize_female_labels

FPR = "false_positive_rate@0.5"
REMEDIATION = {"slice": "sex", "sensitive": ["Female"], "nonsensitive": ["Male"], "examples": "negatives",
               "loss": "mmd", "loss_weight": 1.5}
GAP = "false_positive_rate@0.5 (difference between the slices) on sex=Female vs sex=Male = 0.14, threshold {}"


def candidate(run_id, mode, min_diff=False, gaps=(), reasons=("auc on sex=Female = 0.5",)):
    return {"run_id": run_id, "mode": mode, "min_diff": min_diff,
            "rejections": [{"gate": "model", "reasons": list(reasons) + list(gaps), "gaps": list(gaps)}]}


@pytest.mark.parametrize("when, rejected, expected", [
    # a gap failure without MinDiff: the same mode again, with it
    ("on_gap_failure", [candidate("r1", FINE_TUNE, gaps=[GAP], reasons=[])], (FINE_TUNE, True)),
    ("on_gap_failure", [candidate("r1", FULL_RETRAIN, gaps=[GAP], reasons=[])], (FULL_RETRAIN, True)),
    # then the escalation as before, MinDiff kept
    ("on_gap_failure", [candidate("r1", FINE_TUNE, gaps=[GAP]), candidate("r2", FINE_TUNE, True, gaps=[GAP])],
     (FULL_RETRAIN, True)),
    ("on_gap_failure", [candidate("r1", FULL_RETRAIN, gaps=[GAP]), candidate("r2", FULL_RETRAIN, True)], (SKIP, False)),
    # a failure that is not a gap is never remediated
    ("on_gap_failure", [candidate("r1", FINE_TUNE)], (FULL_RETRAIN, False)),
    ("on_gap_failure", [candidate("r1", FULL_RETRAIN)], (SKIP, False)),
    # a plain fine-tune rejected for its AUC, then a plain full retrain for a gap: the full retrain again, with MinDiff
    ("on_gap_failure", [candidate("r1", FINE_TUNE), candidate("r2", FULL_RETRAIN, gaps=[GAP], reasons=[])],
     (FULL_RETRAIN, True)),
    # always: every candidate trains with MinDiff, and the escalation is unchanged
    ("always", [candidate("r1", FINE_TUNE, True, gaps=[GAP])], (FULL_RETRAIN, True)),
    # no remediation: unchanged
    (None, [candidate("r1", FINE_TUNE, gaps=[GAP])], (FULL_RETRAIN, False)),
    (None, [candidate("r1", FULL_RETRAIN, gaps=[GAP])], (SKIP, False)),
])
def test_the_next_run_after_a_rejection(when, rejected, expected):
    """What the summary announces is what the policy then decides, on a span newer than the blessed model's where
    the first candidate's mode was chosen for a reason that still holds (drift for a full retrain)."""
    assert remediation.next_run(rejected, when) == expected
    min_diff, reasons = remediation.with_min_diff(when, rejected)
    drifted = ["age"] if rejected[0]["mode"] == FULL_RETRAIN else []
    mode, _ = decide("drift_aware", 0, 4, [3], [3], False, drifted,
                     rejected=remediation.counted_for_escalation(rejected, min_diff))
    assert (mode, min_diff and mode != SKIP) == expected
    assert bool(reasons) == min_diff


def test_only_the_model_gates_gap_failures_are_gaps():
    failures = [{"slice": "sex=Female vs sex=Male", "metric": f"{FPR} (difference between the slices)", "value": 0.14,
                 "threshold": {}},
                {"slice": "sex=Female", "metric": "auc", "value": 0.5, "threshold": {}}]
    [model] = rejections(False, failures, True, "")
    assert len(model["reasons"]) == 2 and len(model["gaps"]) == 1 and model["gaps"][0].startswith(FPR)
    assert rejections(True, [], False, "too slow") == [{"gate": "serving", "reasons": ["too slow"]}]


def adult_settings(tmp_path, fairness: dict):
    settings = yaml.safe_load((ADULT / "pipeline.yaml").read_text())
    settings["fairness"].update(fairness)
    settings["data"].update(base=str(ADULT / "data"), schema_path=str(ADULT / "schema" / "schema.pbtxt"))
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("remedy, message", [
    ({"slice": "age"}, "remediation.slice: 'age' is not a one-feature entry of fairness.slices"),
    ({"nonsensitive": ["Female"]}, "Female is in both sensitive and nonsensitive"),
    ({"loss": "kl"}, "fairness.remediation.loss: got 'kl'"),
    ({"loss_weight": 0}, "fairness.remediation.loss_weight: got 0"),
    ({"sensitive": []}, "fairness.remediation.sensitive: got []"),
    ({"method": "reweighting"}, "fairness.remediation.method: got 'reweighting'"),
])
def test_a_remediation_that_cannot_be_used_is_a_config_error(tmp_path, remedy, message):
    with pytest.raises(ConfigError) as caught:
        load_config(adult_settings(tmp_path, {"remediation": {**REMEDIATION, **remedy}}))
    assert message in str(caught.value), str(caught.value)


def test_on_gap_failure_needs_a_gap_gate_on_its_slicing(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(adult_settings(tmp_path, {"remediation": REMEDIATION,
                                              "gap_gates": [{"metric": FPR, "max_gap": 0.2, "slices": ["race"]}]}))
    assert "no gap gate holds on slicing [sex]" in str(caught.value)
    config = load_config(adult_settings(tmp_path, {"remediation": {**REMEDIATION, "when": "always"}}))
    assert config.trainer_settings(FULL_RETRAIN).remediation.loss_weight == 1.5
    assert config.retrain_policy_settings().remediation_when == "always"
    assert load_config(ADULT / "pipeline.yaml").fairness.remediation is None   # off unless written


def sex_gap(summary: dict, metric: str = FPR) -> float:
    """The gap between the sexes as the run's gap gate measured it (its fairness report)."""
    report = json.loads(pathlib.Path(summary["model_gate"]["fairness"]["json"]).read_text())
    return slice_gaps(report["slices"], metric)["sex"]


@pytest.fixture(scope="module")
def gap_runs(tmp_path_factory):
    """Adult with a false positive rate gate between the sexes that the plain model fails (it measures about 0.14),
    run twice on the same span: the plain candidate, then the MinDiff one."""
    project = tmp_path_factory.mktemp("remediation")
    adult_project(project)
    overrides = {"fairness": {"gap_gates": [{"metric": FPR, "max_gap": 0.08, "slices": ["sex"]}],
                              "remediation": {**REMEDIATION, "when": "on_gap_failure"}},
                 "logging": {"report": False}}
    config = write_config(project, merge(FAST, overrides), example=ADULT)
    plain, remedied = run_cli(config), run_cli(config)
    return config, plain, sex_gap(plain[1]), remedied, sex_gap(remedied[1])


def test_a_gap_failure_is_retrained_with_min_diff_and_the_gap_shrinks(gap_runs):
    config_path, (plain, plain_summary), plain_gap, (remedied, summary), gap = gap_runs
    assert plain.returncode == 4, plain.stdout + plain.stderr[-3000:]
    assert plain_summary["retraining"]["min_diff"] is False and plain_gap > 0.08
    assert plain_summary["verdict"]["next_run_on_this_span"] == FULL_RETRAIN
    assert plain_summary["verdict"]["next_run_min_diff"] is True
    assert "next run on this span: full_retrain with MinDiff (a gap gate failed" in plain.stdout
    assert plain_summary["verdict"]["rejections"][0]["gaps"], plain_summary["verdict"]

    assert remedied.returncode in (0, 4), remedied.stdout + remedied.stderr[-3000:]
    retraining = summary["retraining"]
    assert retraining["mode"] == FULL_RETRAIN and retraining["min_diff"] is True
    assert any(f"run {plain_summary['run_id']} (full_retrain) failed a gap gate ({FPR}" in r
               for r in retraining["reasons"]), retraining["reasons"]
    assert "retraining: full_retrain with MinDiff" in remedied.stdout
    assert summary["training"]["history"]["min_diff_loss"]
    print(f"false positive rate gap between the sexes: plain {plain_gap:.4f}, MinDiff {gap:.4f}")
    assert gap < plain_gap - 0.03
    # the same gates: passed, or blocked with the gap measured
    fpr_failures = [f for f in summary["model_gate"]["failures"] if f["metric"].startswith(FPR)]
    assert summary["model_gate"]["passed"] == (gap <= 0.08 and not summary["model_gate"]["failures"])
    assert bool(fpr_failures) == (gap > 0.08)

    # ML Metadata: the decision and the training options the Trainer read
    config = load_config(config_path)
    outputs = metadata_store.run_outputs(config, summary["run_id"])
    [decision] = outputs["RetrainPolicy"]["RetrainDecision"]
    assert metadata_store.custom_int(decision, MIN_DIFF_KEY) == 1 and metadata_store.custom_str(decision, MODE_KEY) == FULL_RETRAIN
    [options] = outputs["RetrainPolicy"]["HyperParameters"]
    assert json.loads((pathlib.Path(options.uri) / TRAINING_OPTIONS_FILE).read_text()) == {"min_diff": True}


def test_the_min_diff_model_is_exported_as_the_plain_one(gap_runs):
    config_path, (_, plain_summary), _, (_, summary), _ = gap_runs
    config = load_config(config_path)
    models = [pathlib.Path(metadata_store.run_outputs(config, s["run_id"])["Trainer"]["Model"][0].uri) / "Format-Serving"
              for s in (plain_summary, summary)]
    plain, remedied = (tf.saved_model.load(str(model)) for model in models)
    assert set(remedied.signatures) == set(plain.signatures) == {"serving_default", "serving_raw", "transform_features"}
    for name in plain.signatures:
        assert (remedied.signatures[name].structured_input_signature
                == plain.signatures[name].structured_input_signature)
        assert remedied.signatures[name].structured_outputs.keys() == plain.signatures[name].structured_outputs.keys()
    assert summary["serving_gate"] is None or summary["serving_gate"]["passed"]


def test_remediation_never_lowers_a_gate(tmp_path):
    """Women's labels are noise: MinDiff brings the groups' scores together, but their AUC stays near 0.5."""
    config = adult_project(tmp_path, randomize_female_labels)
    config = write_config(tmp_path, merge(FAST, {"fairness": {"remediation": {**REMEDIATION, "when": "always"}},
                                                 "logging": {"report": False}}), example=ADULT)
    completed, summary = run_cli(config)
    assert completed.returncode == 4, completed.stdout + completed.stderr[-3000:]
    assert summary["retraining"]["min_diff"] is True and not summary["push"]["pushed"]
    failures = summary["model_gate"]["failures"]
    assert any(f["slice"] == "sex=Female" and f["metric"] == "auc" and f["value"] < 0.8 for f in failures), failures
    # a MinDiff full retrain was the span's one attempt at it: the next run skips
    assert summary["verdict"]["next_run_on_this_span"] == SKIP


@pytest.mark.parametrize("example", [ADULT, REPO])
def test_the_commented_remediation_sections_load_once_uncommented(tmp_path, example):
    lines = (example / "pipeline.yaml").read_text().splitlines()
    start = lines.index("  #   remediation:")
    block = range(start, start + 9)
    assert all(lines[i].startswith("  #     ") for i in block[1:]) and not lines[block[-1] + 1].startswith("  #     ")
    settings = yaml.safe_load("\n".join(line.replace("  #   ", "  ", 1) if i in block else line
                                        for i, line in enumerate(lines) if line != "  remediation: null"))
    remedy = settings["fairness"]["remediation"]
    settings["fairness"]["gap_gates"] = settings["fairness"]["gap_gates"] or [   # taxi has none: one on the slicing
        {"metric": FPR, "max_gap": 0.1, "slices": [remedy["slice"]]}]
    for key in ("base", "schema_path"):
        settings["data"][key] = str((example / settings["data"][key]).resolve())
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(settings))
    assert load_config(path).fairness.remediation.model_dump() == {
        "method": "min_diff", "when": "on_gap_failure", "loss": "mmd", "examples": "negatives", **remedy}


def test_a_pipeline_process_has_keras_2_as_tf_keras():
    """MinDiffModel subclasses tf.keras.Model. `python -m pipeline` makes tf.keras Keras 2 before importing TFX uses
    it; a process that resolved it to Keras 3 first is told so. (Tests' own processes get the variable from
    tf.Transform's import, and their pipeline runs inherit it: so the check runs without it.)"""
    env = {key: value for key, value in os.environ.items() if key != "TF_USE_LEGACY_KERAS"}

    def python(code: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True)

    ours = python("import pipeline.assembly, tensorflow as tf; print(tf.keras.Model.__module__)")
    assert ours.returncode == 0 and ours.stdout.split()[-1].startswith("tf_keras."), ours.stdout + ours.stderr[-2000:]
    late = python("import tfx.v1, components.min_diff")
    assert late.returncode != 0 and "MinDiff needs tf.keras to be Keras 2" in late.stderr, late.stderr[-2000:]
