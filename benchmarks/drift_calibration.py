"""Benchmark: are DriftCheck's default thresholds stable and sensitive on the real taxi spans?

    .venv/bin/python benchmarks/drift_calibration.py [--config pipeline.yaml] [--repeats 20]

The statistics are TFDV's, with StatisticsGen's options (pipeline.stages.ingest.statistics_options), and the
measures are DriftCheck's own (components.drift_check.drift_rows) with the thresholds of the config:
  1. no change: a random half of each span against the other half, and a random 1,000-row sample of
     all 15,002 rows against all of them (`repeats` draws each); target: no feature ever drifts;
  2. one numeric feature x1.5, nothing else changed: each span with one feature scaled, against the
     span itself; target: that feature, and only it, always drifts;
  3. the real quarter-to-quarter steps (span n-1 -> n, n = 2..16): how many drift, and in what.
Prints the largest measure seen without change and the smallest seen with a x1.5 shift, per measure,
against its threshold.
"""
import argparse
import collections
import pathlib
import sys

import numpy as np
import pandas as pd
import tensorflow_data_validation as tfdv

from components.drift_check import drift_rows
from pipeline.config import load_config
from pipeline.spans import complete_spans, span_folders
from pipeline.stages.ingest import statistics_options

REPO = pathlib.Path(__file__).resolve().parents[1]


def statistics(frame: pd.DataFrame):
    return tfdv.generate_statistics_from_dataframe(frame, stats_options=statistics_options())


def drifted(rows: list[dict]) -> set[str]:
    return {row["feature"] for row in rows if row["over_threshold"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "pipeline.yaml"))
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    config = load_config(args.config)
    settings = config.drift_check_settings()
    schema = tfdv.load_schema_text(str(config.path(config.data.schema_path)))
    folders = span_folders(config)
    spans = {span: pd.concat(pd.read_csv(path) for path in sorted(folders[span].glob("*.csv")))
             for span in complete_spans(config)}
    everything = pd.concat(spans.values(), ignore_index=True)
    numeric = [name for name, spec in settings.features.items() if spec.kind == "numeric"]
    random = np.random.default_rng(0)
    quiet_max = collections.defaultdict(float)       # measure -> largest |value| without change
    shifted_min = collections.defaultdict(lambda: float("inf"))
    false_alarms, misses, trials = [], [], 0

    def measure(current, baseline):
        return drift_rows(statistics(current), statistics(baseline), schema, settings)

    held_back = collections.Counter()                 # measure -> over threshold, under the noise limit
    for repeat in range(args.repeats):
        sample = everything.sample(n=1000, random_state=int(random.integers(1 << 31)))
        pairs = [("all rows vs a 1,000-row sample", sample, everything)]
        for span, frame in spans.items():
            first = frame.sample(frac=0.5, random_state=int(random.integers(1 << 31)))
            pairs.append((f"span {span} half vs half", frame.drop(first.index), first))
        for name, current, baseline in pairs:
            rows = measure(current, baseline)
            trials += 1
            for row in rows:
                if row["value"] is not None:
                    quiet_max[row["measure"]] = max(quiet_max[row["measure"]], abs(row["value"]))
                    if row["threshold"] is not None and abs(row["value"]) > row["threshold"] and not row["over_threshold"]:
                        held_back[row["measure"]] += 1
            if drifted(rows):
                false_alarms.append((name, sorted(drifted(rows))))

    shifted_trials = 0
    for span, frame in spans.items():   # x1.5, nothing else changed: the span against itself
        baseline = statistics(frame)
        for feature in numeric:
            scaled = frame.copy()
            scaled[feature] = scaled[feature] * 1.5
            rows = drift_rows(statistics(scaled), baseline, schema, settings)
            shifted_trials += 1
            mine = [row for row in rows if row["feature"] == feature and row["value"] is not None]
            for row in mine:
                shifted_min[row["measure"]] = min(shifted_min[row["measure"]], abs(row["value"]))
            if feature not in drifted(rows):
                misses.append((f"span {span} ({len(frame)} rows)", feature,
                               {row["measure"]: (row["value"], row["noise_limit"]) for row in mine}))
            elif drifted(rows) != {feature}:
                false_alarms.append((f"span {span} with {feature} x1.5", sorted(drifted(rows) - {feature})))

    thresholds = config.retraining.drift.thresholds
    print(f"No change: {trials} comparisons, {len(false_alarms)} with a feature over its threshold")
    for name, features in false_alarms[:10]:
        print(f"    {name}: {', '.join(features)}")
    print(f"One numeric feature x1.5: {shifted_trials} comparisons, {len(misses)} where it did not drift")
    for name, feature, values in misses[:10]:
        print(f"    {name}, {feature}: (value, noise limit) {values}")
    print(f"{'measure':<11} {'threshold':>9} {'max, no change':>15} {'held back by noise':>19} {'min, x1.5':>10}")
    for key in ("psi", "location", "scale", "l_infinity"):
        print(f"{key:<11} {getattr(thresholds, key)!s:>9} {quiet_max.get(key, float('nan')):>15.4f} "
              f"{held_back[key]:>19} {shifted_min.get(key, float('nan')):>10.4f}")

    print("Quarter to quarter (span n-1 -> n):")
    ordered = sorted(spans)
    steps_with_drift = 0
    for previous, span in zip(ordered, ordered[1:]):
        rows = measure(spans[span], spans[previous])
        over = [f"{row['feature']} {row['measure']} {row['value']:.3f}" for row in rows if row["over_threshold"]]
        steps_with_drift += bool(over)
        print(f"  {previous:>2} -> {span:>2}: {'; '.join(over) if over else 'no drift'}")
    print(f"{steps_with_drift} of {len(ordered) - 1} quarter-to-quarter steps drift")
    return 0 if not false_alarms and not misses else 1


if __name__ == "__main__":
    sys.exit(main())
