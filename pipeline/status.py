"""`python -m pipeline status`: the recent runs, the blessed and pushed versions and the served model's lineage,
all from ML Metadata.

Each run's facts are the run summary's (pipeline/summary.py `collect`, without the evaluation's metrics, the one
part read with TFMA), so `status` answers without TensorFlow.
"""
from __future__ import annotations

import datetime

from tabulate import tabulate

from components.contracts import MODEL_ID_KEY, PUSHED_VERSION_KEY, ROLLED_BACK_FROM_KEY
from components.serving_base import served_version
from pipeline import metadata_store, summary as summaries
from pipeline.config import PipelineConfig


def run_rows(config: PipelineConfig, limit: int) -> list[dict]:
    """The newest `limit` runs: when, the retraining decision, the outcome and what was pushed."""
    rows = []
    for run in metadata_store.pipeline_runs(config)[:limit]:
        states = metadata_store.execution_states(config, run.name)
        failed = [node for node, state in states.items() if state == "FAILED"]
        unfinished = [node for node, state in states.items() if state in ("NEW", "RUNNING")]
        result = summaries.collect(config, run.name, timings=[], log_file="",
                                   error=f"{', '.join(failed)} failed" if failed else "", with_evaluation=False)
        outcome = "running or interrupted" if unfinished and not failed else result["status"]
        rows.append({
            "run": run.name, "started": _time(run.create_time_since_epoch),
            "decision": result["retraining"]["mode"] if result["retraining"] else "-",
            "outcome": outcome,
            "pushed": result["push"]["version"] if result["push"]["pushed"] else "-",
            "why": "; ".join(result["retraining"]["reasons"]) if result["retraining"] else result["push"]["reason"],
        })
    return rows


def status(config: PipelineConfig, limit: int = 10) -> str:
    store = metadata_store.open_store(config)
    lines = [f"Pipeline '{config.pipeline.name}' (ML Metadata: {config.metadata.backend})", "", "Recent runs:"]
    rows = run_rows(config, limit)
    lines.append(tabulate(rows, headers="keys", maxcolwidths=[None] * 5 + [60]) if rows else "  none yet")

    pushed = metadata_store.pushed_models(store, config.pipeline.name)
    served = served_version(str(config.serving_dir))
    lineages = {}
    for push in pushed:
        model_id = metadata_store.custom_int(push, MODEL_ID_KEY)
        lineages.setdefault(model_id, metadata_store.model_lineage(config, model_id))
    lines += ["", "Blessed and pushed versions (blessed by the model gate and serving validation, oldest first):"]
    lines.append(tabulate([{
        "version": metadata_store.custom_str(push, PUSHED_VERSION_KEY)
                   + (" (served)" if metadata_store.custom_str(push, PUSHED_VERSION_KEY) == served else ""),
        "pushed": _time(push.create_time_since_epoch),
        "model": metadata_store.custom_int(push, MODEL_ID_KEY),
        "trained in run": lineages[metadata_store.custom_int(push, MODEL_ID_KEY)]["run_id"],
        "note": (f"rollback from version {metadata_store.custom_str(push, ROLLED_BACK_FROM_KEY)}"
                 if metadata_store.custom_str(push, ROLLED_BACK_FROM_KEY) else ""),
    } for push in pushed], headers="keys") if pushed else "  none yet")

    lines += ["", "Served model:"]
    served_push = next((p for p in reversed(pushed) if metadata_store.custom_str(p, PUSHED_VERSION_KEY) == served),
                       None)
    if served_push is None:
        lines.append(f"  none of this pipeline's pushed versions is served under {config.serving_dir}")
    else:
        lineage = lineages[metadata_store.custom_int(served_push, MODEL_ID_KEY)]
        lines += [f"  version:         {served} ({config.serving_dir / served})",
                  f"  model:           {lineage['model']} (artifact {lineage['model_id']})",
                  f"  trainer run:     {lineage['run_id']} ({lineage['trainer']})",
                  f"  data spans:      {', '.join(map(str, lineage['spans']))}",
                  f"  transform graph: {lineage['transform_graph']}",
                  f"  evaluation:      {lineage['evaluation']}"]
    return "\n".join(lines)


def _time(milliseconds: int) -> str:
    return datetime.datetime.fromtimestamp(milliseconds / 1000).isoformat(sep=" ", timespec="seconds")
