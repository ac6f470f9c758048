"""Benchmark: the replay of every default span under the three retraining policies, with targets.

    .venv/bin/python benchmarks/replay_policies.py [--config pipeline.yaml] [--output outputs/benchmarks/replay]

Runs `python -m pipeline replay` (never / always_full / drift_aware on the same spans, in one
invocation) and prints the per-span table (decision; pushed, or blocked by which gate; the served
model's exact AUC on the next span; seconds), the totals, and the targets as pass/fail:
  - drift-aware mean next-span AUC within 0.005 of full-retrain-every-span, or better;
  - drift-aware mean next-span AUC above never-retrain's.
The wall time of drift-aware against full retraining is printed as a figure, not a target.
"""
import argparse
import json
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "pipeline.yaml"))
    parser.add_argument("--output", default=str(REPO / "outputs" / "benchmarks" / "replay"))
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "pipeline", "replay", "--config", args.config, "--output", args.output],
                   cwd=REPO, check=True)
    totals = json.loads((pathlib.Path(args.output) / "totals.json").read_text())
    full, aware, never = totals["always_full"], totals["drift_aware"], totals["never"]
    checks = [
        ("drift-aware AUC within 0.005 of full retrain (or better)",
         aware["mean_next_span_auc"] >= full["mean_next_span_auc"] - 0.005,
         f"{aware['mean_next_span_auc']:.4f} vs {full['mean_next_span_auc']:.4f}"),
        ("drift-aware AUC above never-retrain",
         aware["mean_next_span_auc"] > never["mean_next_span_auc"],
         f"{aware['mean_next_span_auc']:.4f} vs {never['mean_next_span_auc']:.4f}"),
    ]
    for name, passed, figures in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {figures}")
    print(f"wall time: drift-aware {aware['total_seconds']:.0f} s, full retrain {full['total_seconds']:.0f} s "
          f"({aware['total_seconds'] / full['total_seconds']:.2f}x), never {never['total_seconds']:.0f} s")
    return 0 if all(passed for _, passed, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
