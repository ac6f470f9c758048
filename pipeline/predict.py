"""`python -m pipeline predict`: raw CSV rows through a pushed model's serving_default signature.

Rows become tf.Examples the way ExampleGen makes them (an empty cell is a missing value) and go
through the signature TF Serving exposes, so the scores are the ones a client would get.
"""
from __future__ import annotations

import csv
import pathlib

from components.serving_base import versions
from pipeline.config import PipelineConfig


class PredictError(Exception):
    """The rows or the model cannot be used; the message names the file, row and column."""


def raw_feature_spec(config: PipelineConfig) -> dict:
    """tf.Example parsing spec of the raw CSV columns, from the curated schema."""
    import tensorflow_data_validation as tfdv
    from tensorflow_transform.tf_metadata import schema_utils

    return schema_utils.schema_as_feature_spec(tfdv.load_schema_text(str(config.path(config.data.schema_path)))).feature_spec


def served_version_dir(model_base: pathlib.Path) -> pathlib.Path | None:
    """The version TF Serving's default (latest) policy serves."""
    found = versions(str(model_base))
    return model_base / str(found[-1]) if found else None


def read_examples(input_csv: pathlib.Path, request_spec: dict) -> tuple[list[dict], list]:
    """The CSV's rows and their tf.Examples; a bad cell or a missing required column is a PredictError."""
    import tensorflow as tf

    from components.features import example_from_csv_row

    with input_csv.open(newline="") as handle:
        reader = csv.DictReader(handle)
        required = sorted(name for name, spec in request_spec.items() if isinstance(spec, tf.io.FixedLenFeature))
        missing = [name for name in required if name not in (reader.fieldnames or [])]
        if missing:
            raise PredictError(f"{input_csv}: required column(s) missing from the header: {', '.join(missing)}")
        rows, examples = [], []
        for line, row in enumerate(reader, start=2):
            if None in row or None in row.values():
                raise PredictError(f"{input_csv}: row {line}: expected {len(reader.fieldnames)} fields as in the header")
            empty = [name for name in required if not row[name]]
            if empty:
                raise PredictError(f"{input_csv}: row {line}: required column(s) empty: {', '.join(empty)}")
            try:
                examples.append(example_from_csv_row(row, request_spec))
            except ValueError as error:
                raise PredictError(f"{input_csv}: row {line}: {error}") from None
            rows.append(row)
    if not rows:
        raise PredictError(f"{input_csv}: no rows after the header")
    return rows, examples


def predict(config: PipelineConfig, input_csv: pathlib.Path, model_dir: pathlib.Path | None = None) -> list[dict]:
    """Each row with `probability` and `class` from the model's serving_default signature."""
    import tensorflow as tf

    from components.features import serving_feature_spec

    model_dir = model_dir or served_version_dir(config.serving_dir)
    if model_dir is None or not (model_dir / "saved_model.pb").exists():
        raise PredictError(f"no pushed model at {model_dir or config.serving_dir} (run the pipeline first, or pass --model-dir)")
    request_spec = serving_feature_spec(raw_feature_spec(config), config.transform_settings())
    rows, examples = read_examples(input_csv, request_spec)
    serve = tf.saved_model.load(str(model_dir)).signatures["serving_default"]
    outputs = serve(examples=tf.constant([example.SerializeToString() for example in examples]))
    probabilities = outputs["probabilities"].numpy().reshape(-1)
    classes = outputs["classes"].numpy().reshape(-1)
    return [{**row, "probability": round(float(p), 6), "class": int(c)} for row, p, c in zip(rows, probabilities, classes)]


def write_scores(scored: list[dict], output: pathlib.Path) -> None:
    """The rows with their `probability` and `class`, as CSV."""
    with output.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(scored[0]))
        writer.writeheader()
        writer.writerows(scored)
