"""Serving check of one SavedModel, run in a fresh process as TF Serving would load it.

    python -m components.serving_check MODEL_DIR CANARY_JSON REPORT_JSON --settings SERVING_VALIDATOR_SETTINGS_JSON

Loads the model, replays its warmup file, then sends the Trainer's canary rows through
serving_default (serialized tf.Examples) and serving_raw (one tensor per raw feature) as
`tensorflow_serving.apis` PredictRequests, and times one-row requests. Writes what it measured and
every problem it found to REPORT_JSON; ServingValidator decides on it.
"""
from __future__ import annotations

import argparse
import json
import math
import pathlib
import time

import numpy as np

from components.contracts import TPU_FUNCTION_ALIAS
from components.settings import ServingValidatorSettings


def _example(features: dict):
    import tensorflow as tf

    example = tf.train.Example()
    for name, value in features.items():
        feature = example.features.feature[name]
        if isinstance(value, str):
            feature.bytes_list.value.append(value.encode())
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return example


def _output_problems(where: str, outputs: dict) -> list[str]:
    problems = []
    for name, values in outputs.items():
        values = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(values)):
            problems.append(f"{where}: output '{name}' is not finite ({int(np.sum(~np.isfinite(values)))} of {values.size} values)")
        elif name == "probabilities" and (values.min() < 0 or values.max() > 1):
            problems.append(f"{where}: 'probabilities' outside [0, 1] (min {values.min():.4g}, max {values.max():.4g})")
        elif name == "classes" and not set(np.unique(values)) <= {0.0, 1.0}:
            problems.append(f"{where}: 'classes' holds values other than 0 and 1")
    return problems


def check(model_dir: str, canary_file: str, settings: ServingValidatorSettings) -> dict:
    import tensorflow as tf

    from components import export

    started = time.monotonic()
    loaded = tf.saved_model.load(model_dir, options=tf.saved_model.LoadOptions(experimental_load_function_aliases=True))
    report = {"load_seconds": round(time.monotonic() - started, 3), "problems": []}
    problems = report["problems"]
    required = ("serving_default", export.RAW_SIGNATURE, export.TRANSFORM_SIGNATURE)
    missing = [name for name in required if name not in loaded.signatures]
    if missing:
        problems.append(f"signatures missing: {', '.join(missing)}")
        return report
    if TPU_FUNCTION_ALIAS not in loaded.function_aliases:
        problems.append(f"no function saved under the TPU alias '{TPU_FUNCTION_ALIAS}'")

    warmup = export.read_warmup(model_dir) if tf.io.gfile.exists(f"{model_dir}/{export.WARMUP_FILE}") else []
    report["warmup_requests"] = len(warmup)
    if not warmup:
        problems.append(f"no warmup requests in {export.WARMUP_FILE}")
    for index, log in enumerate(warmup):
        request = log.predict_log.request
        problems += _output_problems(f"warmup request {index + 1} ({request.model_spec.signature_name})",
                                     export.serve(loaded, request))

    raw_spec = loaded.signatures[export.RAW_SIGNATURE].structured_input_signature[1]
    canary = json.loads(pathlib.Path(canary_file).read_text())["rows"]
    transform = settings.transform
    label_only = set(transform.label.source_columns) - set(transform.feature_names)
    examples = [_example({k: v for k, v in row["features"].items() if k not in label_only}) for row in canary]
    expected = np.array([row["probability"] for row in canary])
    by_example, by_row = export.predict_requests(examples, raw_spec, transform, settings.model_name, batch_sizes=(None,))
    report["canary_rows"] = len(canary)
    for request in (by_example, by_row):
        signature = request.model_spec.signature_name
        outputs = export.serve(loaded, request)
        problems += _output_problems(f"canary rows ({signature})", outputs)
        served = np.asarray(outputs["probabilities"], dtype=np.float64).reshape(-1)
        difference = float(np.max(np.abs(served - expected))) if len(expected) else 0.0
        report[f"max_difference_{signature}"] = difference
        tolerance = settings.validation.tolerance
        if not math.isfinite(difference) or difference > tolerance:
            problems.append(f"canary rows ({signature}): scores differ from the Trainer's by up to {difference:.3g} "
                            f"(tolerance {tolerance:g})")

    latencies = []
    for example in examples:
        one_row = export.predict_requests([example], raw_spec, transform, settings.model_name, batch_sizes=(1,))[0]
        started = time.perf_counter()
        export.serve(loaded, one_row)
        latencies.append((time.perf_counter() - started) * 1000)
    if latencies:
        report["latency_ms_p50"] = round(float(np.percentile(latencies, 50)), 3)
        report["latency_ms_p99"] = round(float(np.percentile(latencies, 99)), 3)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir")
    parser.add_argument("canary_file")
    parser.add_argument("report_file")
    parser.add_argument("--settings", required=True, help="the ServingValidator's settings, as JSON")
    args = parser.parse_args()
    report = check(args.model_dir, args.canary_file, ServingValidatorSettings.model_validate_json(args.settings))
    pathlib.Path(args.report_file).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
