"""Bad input never reaches training or serving: each kind of damaged span, after a first run that pushed a
model, stops the run with exit code 3 at the right gate, names the file and line or the feature and the
problem, trains and pushes nothing, and leaves the served model as it was.

Rows ExampleGen cannot parse (spans.refused_files) are refused before ExampleGen; rows it can parse but
the schema does not allow are the data gate's (TFDV's anomalies against the curated schema)."""
import shutil

import pytest

from project_helpers import FIRST_SPAN_ROWS, run_cli, served_versions, write_span

NEW_ROWS = 300
COMPONENTS_AFTER_THE_GATE = ("Transform", "Trainer", "FineTuneTrainer", "Evaluator", "ServingValidator", "Pusher")


def damaged_span(project, taxi_rows, damage):
    """Span 2: real rows after span 1's, damaged as `damage` says. Returns its folder and CSV path."""
    header, rows = taxi_rows
    first = damage == "duplicate_of_span_1"   # span 1's rows again, written the same way
    rows = [dict(row) for row in (rows[:FIRST_SPAN_ROWS] if first else rows[FIRST_SPAN_ROWS:FIRST_SPAN_ROWS + NEW_ROWS])]
    if damage == "text_in_numeric":
        rows[7]["trip_miles"] = "twelve"
    elif damage == "extra_column":
        header = header + ["driver_rating"]
        for row in rows:
            row["driver_rating"] = "5"
    elif damage == "all_missing_feature":
        for row in rows:
            row["trip_seconds"] = ""
    elif damage == "missing_labels":
        for row in rows[::4]:
            row["tips"] = ""
    elif damage == "header_only":
        rows = []
    folder = write_span(project, 2, header, rows)
    csv_file = folder / "data.csv"
    lines = csv_file.read_bytes().split(b"\n")
    if damage == "wrong_field_count":
        lines[12] += b",1,2"
    elif damage == "unbalanced_quote":
        lines[12] = b'"' + lines[12]
    elif damage == "not_utf8":
        lines[12] = lines[12].replace(b",", b",\xe9t\xe9", 1)   # Latin-1 bytes
    csv_file.write_bytes(b"\n".join(lines))
    return folder, csv_file


def run_on_damaged_span(project, taxi_rows, damage):
    before = served_versions(project)
    folder, csv_file = damaged_span(project, taxi_rows, damage)
    try:
        completed, summary = run_cli(project / "pipeline.yaml")
    finally:
        shutil.rmtree(folder)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert summary["status"] == "data_blocked" and not summary["push"]["pushed"]
    assert summary["trained_on_spans"] == [] and summary["model_gate"] is None
    ran = {c["name"]: c["outcome"] for c in summary["components"]}
    assert all(ran.get(name, "skipped") == "skipped" for name in COMPONENTS_AFTER_THE_GATE), ran
    assert served_versions(project) == before
    return completed, summary, csv_file


@pytest.mark.parametrize("damage, problem, details", [
    ("wrong_field_count", "wrong field count", "line 13: 20 fields, the header has 18"),
    ("unbalanced_quote", "malformed CSV", "line 13: unexpected end of data"),
    ("not_utf8", "not UTF-8", "line 13: byte 0xe9"),
])
def test_rows_examplegen_cannot_parse_are_refused_before_it_by_file_and_line(
        project, first_run, taxi_rows, damage, problem, details):
    completed, summary, csv_file = run_on_damaged_span(project, taxi_rows, damage)
    [found] = summary["data_gate"]["problems"]
    assert (found["feature"], found["problem"]) == (str(csv_file), problem)
    assert found["details"].startswith(details)
    assert f"- {csv_file} [file]: {problem}: {details}" in completed.stdout
    assert "nothing was ingested" in completed.stdout
    assert summary["components"] == []   # not even ExampleGen ran


@pytest.mark.parametrize("damage, problem, details", [
    ("header_only", "no rows", "1 file(s), headers only"),
    ("duplicate_of_span_1", "duplicated span", "its files hold the same bytes as span 1's"),
])
def test_an_empty_or_repeated_span_is_refused(project, first_run, taxi_rows, damage, problem, details):
    completed, summary, csv_file = run_on_damaged_span(project, taxi_rows, damage)
    [found] = summary["data_gate"]["problems"]
    assert (found["feature"], found["problem"]) == (str(csv_file.parent), problem)
    assert found["details"].startswith(details)


@pytest.mark.parametrize("damage, feature, words", [
    ("text_in_numeric", "trip_miles", "twelve"),
    ("extra_column", "driver_rating", "New column"),
    ("all_missing_feature", "trip_seconds", "Column dropped"),
    ("missing_labels", "tips", "not always present"),
])
def test_rows_the_schema_does_not_allow_stop_at_the_data_gate(project, first_run, taxi_rows, damage, feature, words):
    completed, summary, _ = run_on_damaged_span(project, taxi_rows, damage)
    problems = [p for p in summary["data_gate"]["problems"] if p["feature"] == feature]
    assert problems, summary["data_gate"]["problems"]
    assert any(words.lower() in (p["problem"] + " " + p["details"]).lower() for p in problems), problems
    assert f"- {feature} [" in completed.stdout
    assert summary["retraining"]["mode"] == "skip"


def test_a_span_that_repeats_training_rows_is_run_with_a_warning(project, first_run, taxi_rows):
    """Leakage is warned of, not blocked: span 2 holds 100 new rows and 200 rows of span 1, on which the served
    model was trained. Last in this module: the run may push."""
    header, rows = taxi_rows
    folder = write_span(project, 2, header, rows[:200] + rows[FIRST_SPAN_ROWS:FIRST_SPAN_ROWS + 100])
    try:
        completed, summary = run_cli(project / "pipeline.yaml")
    finally:
        shutil.rmtree(folder)
    assert completed.returncode in (0, 4), completed.stdout + completed.stderr   # pushed, or the model gate's call
    assert ("warning: 200 rows of span 2 are copies of rows of the spans the served model was trained on (spans 1)"
            in completed.stdout)
    assert summary["trained_on_spans"], completed.stdout
