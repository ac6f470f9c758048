"""Benchmark: what MinDiff costs on UCI Adult. The gap between the sexes and the overall AUC of the plain model and
of MinDiff models at several loss weights, each a real first run of the pipeline on examples/adult.

    .venv/bin/python benchmarks/min_diff_weights.py [--weights 0.5 1.5 4] [--max-gap 0.08] [--output DIR]

Each model is one `python -m pipeline run` on examples/adult/pipeline.yaml (all of span-01; build it with
examples/adult/make_data.py) in a project folder of its own, with one more gap gate, on the false positive rate
at 0.5 between the sexes (--max-gap), which the plain model is expected to fail. The MinDiff runs add
fairness.remediation with `when: always` on sex=Female vs sex=Male, negative examples (the rows a false positive
rate is measured on), MMD loss, at each weight. Prints a Markdown table (the README's) from each run's summary and
fairness report: the gaps as the gap gates measure them, and the overall exact AUC.
"""
import argparse
import json
import pathlib
import subprocess
import sys
import time

import yaml

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from components.evaluation import OVERALL, slice_gaps  # noqa: E402

ADULT = REPO / "examples" / "adult"
FPR, FNR = "false_positive_rate@0.5", "false_negative_rate@0.5"
REMEDIATION = {"method": "min_diff", "when": "always", "slice": "sex", "sensitive": ["Female"],
               "nonsensitive": ["Male"], "examples": "negatives", "loss": "mmd"}


def run(folder: pathlib.Path, max_gap: float, weight: float | None) -> dict:
    """One first run of the Adult example (with a MinDiff weight, or plain): its figures."""
    config = yaml.safe_load((ADULT / "pipeline.yaml").read_text())
    config["data"].update(base=str(ADULT / "data"), schema_path=str(ADULT / "schema" / "schema.pbtxt"))
    config["fairness"]["gap_gates"].append({"metric": FPR, "max_gap": max_gap, "slices": ["sex"]})
    if weight is not None:
        config["fairness"]["remediation"] = {**REMEDIATION, "loss_weight": weight}
    config["logging"] = {"directory": "outputs/logs", "report": False}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(folder / "pipeline.yaml"),
                                "--summary-json", str(folder / "summary.json")], cwd=REPO, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if completed.returncode not in (0, 4):
        raise SystemExit(f"{folder}: the run failed (exit {completed.returncode}):\n{completed.stdout[-3000:]}")
    summary = json.loads((folder / "summary.json").read_text())
    gate = summary["model_gate"]
    rows = json.loads(pathlib.Path(gate["fairness"]["json"]).read_text())["slices"]
    return {"model": "plain" if weight is None else f"MinDiff, weight {weight:g}",
            "min_diff": summary["retraining"]["min_diff"], "fpr_gap": slice_gaps(rows, FPR)["sex"],
            "fnr_gap": slice_gaps(rows, FNR)["sex"], "auc": gate["metrics"][OVERALL]["auc"],
            "auc_female": gate["metrics"]["sex=Female"]["auc"], "passed": gate["passed"],
            "failures": [f"{f['metric']} on {f['slice']}" for f in gate["failures"]], "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.5, 1.5, 4.0])
    parser.add_argument("--max-gap", type=float, default=0.08)
    parser.add_argument("--output", default=str(REPO / "outputs" / "benchmarks" / "min_diff"))
    args = parser.parse_args()
    if not (ADULT / "data" / "span-01" / "data.csv").exists():
        raise SystemExit("no Adult span: run examples/adult/make_data.py first")
    output = pathlib.Path(args.output)
    results = []
    for weight in [None, *args.weights]:
        name = "plain" if weight is None else f"weight-{weight:g}"
        results.append(run(output / name, args.max_gap, weight))
        print(json.dumps(results[-1]), flush=True)
    (output / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\n| model | FPR@0.5 gap, sex | FNR@0.5 gap, sex | overall AUC | AUC sex=Female | model gate "
          f"(FPR gap <= {args.max_gap:g}) | run s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        gate = "passed" if r["passed"] else "blocked: " + ", ".join(r["failures"])
        print(f"| {r['model']} | {r['fpr_gap']:.3f} | {r['fnr_gap']:.3f} | {r['auc']:.4f} | {r['auc_female']:.4f} | "
              f"{gate} | {r['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
