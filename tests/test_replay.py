"""`python -m pipeline replay` on two small real spans: each policy's runs, next-span AUC, table and plot."""
import json
import subprocess
import sys

from project_helpers import REPO, write_config, write_span


def test_replay_scores_the_served_model_on_the_next_span(tmp_path, taxi_rows):
    header, rows = taxi_rows
    write_span(tmp_path, 1, header, rows[:400])
    write_span(tmp_path, 2, header, rows[400:700])
    config = write_config(tmp_path, {"training": {"train_steps": 100}})
    output = tmp_path / "replay"
    completed = subprocess.run(
        [sys.executable, "-m", "pipeline", "replay", "--config", str(config), "--output", str(output),
         "--policies", "never"],
        cwd=REPO, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stdout + completed.stderr

    results = json.loads((output / "replay.json").read_text())
    assert [(r["policy"], r["span"], r["decision"], r["outcome"], r["next_span"]) for r in results] == [
        ("never", 1, "full_retrain", "pushed", 2), ("never", 2, "skip", "no candidate", None)]
    assert 0.5 < results[0]["next_span_auc"] <= 1.0 and results[0]["pushed"]
    assert results[1]["next_span_auc"] is None and not results[1]["pushed"]
    totals = json.loads((output / "totals.json").read_text())
    assert totals["never"]["mean_next_span_auc"] == results[0]["next_span_auc"]
    assert totals["never"]["decisions"] == {"full_retrain": 1, "skip": 1}
    assert totals["never"]["outcomes"] == {"pushed": 1, "no candidate": 1}
    assert (output / "replay.png").stat().st_size > 10_000
    # Each policy has its own store and serving folder; the user's outputs are untouched.
    assert (output / "never" / "outputs" / "metadata.sqlite").is_file()
    assert not (tmp_path / "outputs").exists()
    assert "never decision" in completed.stdout and "never outcome" in completed.stdout
    assert "mean_next_span_auc" in completed.stdout
