"""`python -m pipeline report`: what one run saw and decided, as one self-contained HTML page.

The facts are the run summary's (pipeline/summary.py `collect`) and ML Metadata's; the plots are matplotlib
SVGs inlined as data URIs, and the span's statistics a table drawn from TFDV's DatasetFeatureStatisticsList
proto (TFDV's own Facets view loads its code from the network): the page needs nothing but a browser.
Written to <pipeline root>/reports/<run id>.html at the end of every run. Reading the evaluation's metrics
loads TFMA (as the summary does); everything else is read without TensorFlow.
"""
from __future__ import annotations

import base64
import datetime
import io
import json
import math
import pathlib

import jinja2
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.contracts import MODEL_ID_KEY, PUSHED_VERSION_KEY, ROLLED_BACK_FROM_KEY, STATISTICS_FILE
from components.evaluation import EXACT_AUC, GATE_VALUE_NAMES, OVERALL, slice_gaps
from components.serving_base import served_version
from components.validation_result import CHANGE, describe_failure
from pipeline import metadata_store, summary as summaries
from pipeline.config import PipelineConfig

REPORTS = "reports"     # folder of the pages, under the pipeline root
SPLIT = "train"         # the split whose statistics are shown: the one DriftCheck compares
# Section ids and headings, in page order; the test checks the page has each.
SECTIONS = {
    "statistics": "Data statistics", "anomalies": "Anomalies", "drift": "Drift against the baseline",
    "decision": "Retraining decision", "training": "Training curves", "evaluation": "Evaluation and gates",
    "fairness": "Fairness gaps", "history": "Model history", "serving": "Serving validation and push",
}
# Metrics of the evaluation tables (Fairness Indicators' rates at each threshold are in fairness.csv).
TABLE_METRICS = ("example_count", EXACT_AUC, "binary_accuracy", "precision", "recall", "calibration", "mean_label",
                 "mean_prediction")


def report_path(config: PipelineConfig, run_id: str) -> pathlib.Path:
    return config.pipeline_root / REPORTS / f"{run_id}.html"


def write_report(config: PipelineConfig, run_id: str | None = None, summary: dict | None = None) -> pathlib.Path:
    """The page of a run (default: the newest one) from its summary (collected here unless given)."""
    runs = [run.name for run in metadata_store.pipeline_runs(config)]
    if not runs:
        raise LookupError(f"pipeline '{config.pipeline.name}' has no run in ML Metadata yet")
    if run_id is None:
        run_id = runs[0]
    elif run_id not in runs:
        raise LookupError(f"pipeline '{config.pipeline.name}' has no run {run_id} in ML Metadata")
    if summary is None:
        summary = summaries.collect(config, run_id, timings=[], log_file="")
    path = report_path(config, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config, summary))
    return path


def render(config: PipelineConfig, summary: dict) -> str:
    gate = summary["model_gate"] or {}
    fairness = json.loads(pathlib.Path(gate["fairness"]["json"]).read_text()) if gate.get("fairness") else None
    history = model_history(config)
    return PAGE.render(
        s=summary, sections=SECTIONS, split=SPLIT, generated=datetime.datetime.now().isoformat(timespec="seconds"),
        statistics=statistics_view(summary["statistics"]),
        drift_chart=drift_chart(summary["drift"]["measurements"]) if summary["drift"] else None,
        training_chart=training_chart(summary["training"]["history"]) if summary["training"] else None,
        overall=_table_metrics(gate.get("metrics", {}).get(OVERALL, {})),
        changes={name.removesuffix(CHANGE): value for name, value in gate.get("metrics", {}).get(OVERALL, {}).items()
                 if name.endswith(CHANGE)},
        per_slice={name: _table_metrics(values) for name, values in gate.get("metrics", {}).items() if name != OVERALL},
        table_metrics=TABLE_METRICS,
        failures=[describe_failure(failure) for failure in gate.get("failures", [])],
        gates_chart=gates_chart(config, gate.get("metrics", {}).get(OVERALL, {})) if gate.get("metrics") else None,
        slices_chart=_png(pathlib.Path(gate["fairness"]["chart"])) if gate.get("fairness") else None,
        fairness=fairness, gaps=fairness_gaps(fairness) if fairness else [],
        history=history, history_chart=history_chart(config, history) if history else None,
        served=served_version(str(config.serving_dir)), json=json.dumps,
    )


# --- data ----------------------------------------------------------------------------------------------------

def statistics_view(uri: str | None) -> dict | None:
    """The span's statistics (train split): a row per feature, and a histogram or top-values chart of each."""
    if uri is None:
        return None
    path = pathlib.Path(uri) / f"Split-{SPLIT}" / STATISTICS_FILE
    if not path.exists():
        return None
    dataset = statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes()).datasets[0]
    rows = []
    for feature in dataset.features:
        kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
        row = dict.fromkeys(("mean", "std_dev", "min", "median", "max", "zeros", "unique", "top"))
        row.update(feature=".".join(feature.path.step) or feature.name, type=kind)
        if feature.WhichOneof("stats") == "num_stats":
            numbers = feature.num_stats
            present = numbers.common_stats.num_non_missing
            row.update(mean=numbers.mean, std_dev=numbers.std_dev, min=numbers.min, median=numbers.median,
                       max=numbers.max, zeros=numbers.num_zeros / max(present, 1))
        else:
            strings = feature.string_stats
            present = strings.common_stats.num_non_missing
            row.update(unique=strings.unique,
                       top=", ".join(f"{v.value} ({v.frequency:g})" for v in strings.top_values[:3]))
        row.update(present=present, missing=1 - present / max(dataset.num_examples, 1))
        rows.append(row)
    return {"examples": dataset.num_examples, "rows": rows, "chart": feature_charts(dataset.features)}


def feature_charts(features) -> str:
    """A small panel per feature: numeric ones their standard histogram, strings their most frequent values."""
    columns = 4
    figure = _figure(12, 2.1 * math.ceil(len(features) / columns))
    for index, feature in enumerate(features):
        axis = figure.add_subplot(math.ceil(len(features) / columns), columns, index + 1)
        axis.set_title(".".join(feature.path.step) or feature.name, fontsize=8)
        axis.tick_params(labelsize=6)
        if feature.WhichOneof("stats") == "num_stats":
            standard = next((h for h in feature.num_stats.histograms
                             if h.type == statistics_pb2.Histogram.STANDARD), None)
            if standard:
                axis.bar([b.low_value for b in standard.buckets], [b.sample_count for b in standard.buckets],
                         width=[b.high_value - b.low_value for b in standard.buckets], align="edge",
                         color="tab:blue")
        else:
            top = list(feature.string_stats.top_values[:6])[::-1]
            axis.barh([v.value[:18] for v in top], [v.frequency for v in top], color="tab:green")
    figure.tight_layout()
    return _svg(figure)


def drift_chart(measurements: list[dict]) -> str | None:
    """Each check's |value| against its threshold (red tick) and sampling-noise limit (gray tick)."""
    rows = [m for m in measurements if m["value"] is not None]
    if not rows:
        return None
    figure = _figure(8, 0.6 + 0.24 * len(rows))
    axis = figure.add_subplot()
    positions = range(len(rows))
    axis.barh(positions, [abs(m["value"]) for m in rows],
              color=["tab:red" if m["over_threshold"] else "tab:blue" for m in rows])
    for position, m in zip(positions, rows):
        if m["threshold"] is not None:
            axis.plot([m["threshold"]] * 2, [position - 0.4, position + 0.4], color="darkred", linewidth=2)
        if m.get("noise_limit") is not None:
            axis.plot([m["noise_limit"]] * 2, [position - 0.4, position + 0.4], color="gray", linestyle=":")
    axis.set_yticks(list(positions), [f"{m['feature']} · {m['measure']} ({m['check']})" for m in rows], fontsize=7)
    axis.invert_yaxis()
    axis.set_xlabel("|measure| (red tick: threshold, dotted: noise limit; red bar: over both)", fontsize=8)
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    return _svg(figure)


# --- model ---------------------------------------------------------------------------------------------------

def training_chart(history: dict[str, list[float]]) -> str | None:
    """A panel per metric Keras logged (loss, AUC, ...), training and eval-split values per epoch."""
    names = [name for name in history if not name.startswith("val_")]
    if not names:
        return None
    figure = _figure(4 * len(names), 3)
    for index, name in enumerate(names):
        axis = figure.add_subplot(1, len(names), index + 1)
        for key, label in ((name, "train"), (f"val_{name}", "eval split")):
            if key in history:
                axis.plot(range(1, len(history[key]) + 1), history[key], marker="o", markersize=3, label=label)
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("epoch", fontsize=8)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    return _svg(figure)


def gates_chart(config: PipelineConfig, overall: dict[str, float]) -> str | None:
    """Each gated metric on the whole eval split, with its bounds and the floor its max_regression sets."""
    gates = [gate for gate in config.evaluation.gates if GATE_VALUE_NAMES[gate.metric] in overall]
    if not gates:
        return None
    figure = _figure(1.6 + 1.6 * len(gates), 3)
    axis = figure.add_subplot()
    for position, gate in enumerate(gates):
        value = overall[GATE_VALUE_NAMES[gate.metric]]
        axis.bar(position, value, color="tab:blue", width=0.5)
        axis.annotate(f"{value:.4f}", (position, value), ha="center", va="bottom", fontsize=8)
        change = overall.get(GATE_VALUE_NAMES[gate.metric] + CHANGE)
        lines = [(gate.lower_bound, "lower bound", "tab:red"), (gate.upper_bound, "upper bound", "tab:red")]
        if gate.max_regression is not None and change is not None:
            lines.append((value - change - gate.max_regression, "baseline − max_regression", "tab:orange"))
        for bound, label, color in lines:
            if bound is not None:
                axis.plot([position - 0.4, position + 0.4], [bound] * 2, color=color, linestyle="--")
                axis.annotate(f"{label} {bound:.4f}", (position + 0.4, bound), fontsize=7, color=color, va="center")
    axis.set_xticks(range(len(gates)), [gate.metric for gate in gates])
    axis.set_xlim(-0.6, len(gates) + 0.4)
    axis.set_ylim(0, 1.05)
    axis.set_title("Overall (eval split) against evaluation.gates", fontsize=9)
    figure.tight_layout()
    return _svg(figure)


def fairness_gaps(fairness: dict) -> list[dict]:
    """Per gated or gap-gated metric (AUC when none is) and slicing: the gap measured between the gated slices."""
    metrics = list(dict.fromkeys([*fairness["gap_gates"], *fairness["slice_gates"]])) or [EXACT_AUC]
    return [{"metric": metric, "slicing": slicing, "gap": gap, "allowed": fairness["gap_gates"].get(metric)}
            for metric in metrics for slicing, gap in slice_gaps(fairness["slices"], metric).items()]


def model_history(config: PipelineConfig) -> list[dict]:
    """Every pushed version (by the Pusher or a rollback), oldest first, with its model's gated metrics."""
    store = metadata_store.open_store(config)
    history, metrics_of = [], {}
    for pushed in metadata_store.pushed_models(store, config.pipeline.name):
        model_id = metadata_store.custom_int(pushed, MODEL_ID_KEY)
        if model_id not in metrics_of:
            lineage = metadata_store.model_lineage(config, model_id)
            overall = summaries.evaluation_metrics(lineage["evaluation"]).get(OVERALL, {}) if lineage["evaluation"] else {}
            metrics_of[model_id] = (lineage, {gate.metric: overall.get(GATE_VALUE_NAMES[gate.metric])
                                              for gate in config.evaluation.gates})
        lineage, metrics = metrics_of[model_id]
        history.append({
            "version": metadata_store.custom_str(pushed, PUSHED_VERSION_KEY),
            "pushed_at": datetime.datetime.fromtimestamp(pushed.create_time_since_epoch / 1000),
            "model_id": model_id, "run_id": lineage["run_id"], "spans": lineage["spans"], "metrics": metrics,
            "rolled_back_from": metadata_store.custom_str(pushed, ROLLED_BACK_FROM_KEY),
        })
    return history


def history_chart(config: PipelineConfig, history: list[dict]) -> str | None:
    """Each gated metric of the pushed versions, in push order, with the gate's lower bound."""
    figure = _figure(max(5.0, 1.0 + 0.9 * len(history)), 3)
    axis = figure.add_subplot()
    for gate in config.evaluation.gates:
        points = [(index, h["metrics"][gate.metric]) for index, h in enumerate(history)
                  if h["metrics"].get(gate.metric) is not None]
        if not points:
            continue
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=gate.metric)
        for index, value in points:
            axis.annotate(f"{value:.3f}", (index, value), textcoords="offset points", xytext=(0, 6), fontsize=7,
                          ha="center")
        if gate.lower_bound is not None:
            axis.axhline(gate.lower_bound, color="tab:red", linestyle="--", label=f"{gate.metric} lower bound")
    if not axis.lines:
        return None
    axis.set_xticks(range(len(history)), [f"{h['version']}\n{h['pushed_at']:%m-%d %H:%M}" for h in history],
                    fontsize=7)
    axis.set_xlim(-0.5, len(history) - 0.5)
    axis.set_xlabel("pushed version, when", fontsize=8)
    axis.set_ylabel("eval split, overall", fontsize=8)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    return _svg(figure)


# --- helpers -------------------------------------------------------------------------------------------------

def _table_metrics(values: dict[str, float]) -> dict[str, float]:
    return {name: values[name] for name in TABLE_METRICS if name in values}


def _figure(width: float, height: float):
    """A matplotlib Figure outside pyplot: no global state, no display backend."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _svg(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg")
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _png(path: pathlib.Path) -> str | None:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode() if path.exists() else None


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


TEMPLATES = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
TEMPLATES.filters["num"] = _number
PAGE = TEMPLATES.from_string('''\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,">
<title>Run {{ s.run_id }} of {{ s.pipeline }}: {{ s.status }}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: 12px; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; } td:first-child, th:first-child { text-align: left; }
.ok { color: #17702a; font-weight: bold; } .bad { color: #b00020; font-weight: bold; } .note { color: #666; }
img { max-width: 100%; } nav a { margin-right: .8em; }
</style></head>
<body>
<h1>Run {{ s.run_id }} of pipeline '{{ s.pipeline }}':
  <span class="{{ 'ok' if s.status == 'ok' else 'bad' }}">{{ s.status | upper }}</span></h1>
<p>{% if s.push.pushed %}Pushed version {{ s.push.version }} to {{ s.push.path }}.{% else %}Not pushed: {{ s.push.reason or 'no model was trained' }}.{% endif %}
{% if s.trained_on_spans %} Trained on spans {{ s.trained_on_spans | join(', ') }}.{% endif %}
<span class="note">Generated {{ generated }}.</span></p>
<nav>{% for id, title in sections.items() %}<a href="#{{ id }}">{{ title }}</a>{% endfor %}</nav>

<section id="statistics"><h2>{{ sections.statistics }}</h2>
{% if statistics %}
<p>{{ statistics.examples }} examples in the {{ split }} split of the span (StatisticsGen).</p>
<table><tr><th>feature</th><th>type</th><th>present</th><th>missing</th><th>mean</th><th>std dev</th><th>zeros</th>
<th>min</th><th>median</th><th>max</th><th>unique</th><th>top values</th></tr>
{% for r in statistics.rows %}<tr><td>{{ r.feature }}</td><td>{{ r.type }}</td><td>{{ r.present }}</td>
<td>{{ '%.1f%%' % (100 * r.missing) }}</td><td>{{ r.mean | num }}</td><td>{{ r.std_dev | num }}</td>
<td>{{ '%.1f%%' % (100 * r.zeros) if r.zeros is not none else '' }}</td><td>{{ r.min | num }}</td><td>{{ r.median | num }}</td>
<td>{{ r.max | num }}</td><td>{{ r.unique | num }}</td><td>{{ r.top or '' }}</td></tr>
{% endfor %}</table>
<img alt="per-feature distributions" src="{{ statistics.chart }}">
{% else %}<p class="note">No statistics in this run (it stopped before StatisticsGen).</p>{% endif %}
</section>

<section id="anomalies"><h2>{{ sections.anomalies }}</h2>
{% if s.data_gate is none %}<p class="note">The data gate did not run.</p>
{% elif s.data_gate.problems %}<p class="bad">The data gate blocked the span:</p>
<table><tr><th>feature</th><th>split</th><th>problem</th><th>details</th></tr>
{% for p in s.data_gate.problems %}<tr><td>{{ p.feature }}</td><td>{{ p.split }}</td><td>{{ p.problem }}</td><td>{{ p.details }}</td></tr>{% endfor %}
</table>
{% else %}<p class="ok">None: the span matches the curated schema; the data gate passed.</p>{% endif %}
</section>

<section id="drift"><h2>{{ sections.drift }}</h2>
{% if s.drift is none %}<p class="note">The drift check did not run.</p>
{% elif not s.drift.measurements %}<p class="note">Nothing to compare with: no blessed model's data yet.</p>
{% else %}
<p>{{ 'Against the data of the blessed model' if s.drift.compared_with_blessed_model_data else 'No blessed model data' }};
drifted: {{ s.drift.drifted_features | join(', ') or 'none' }}; skewed: {{ s.drift.skewed_features | join(', ') or 'none' }}.</p>
{% if drift_chart %}<img alt="drift per feature" src="{{ drift_chart }}">{% endif %}
<table><tr><th>feature</th><th>check</th><th>measure</th><th>value</th><th>threshold</th><th>noise limit</th><th>over</th></tr>
{% for m in s.drift.measurements %}<tr><td>{{ m.feature }}</td><td>{{ m.check }}</td><td>{{ m.measure }}</td>
<td>{{ m.value | num }}</td><td>{{ m.threshold | num }}</td><td>{{ m.noise_limit | num }}</td>
<td class="{{ 'bad' if m.over_threshold else '' }}">{{ 'yes' if m.over_threshold else 'no' }}</td></tr>{% endfor %}
</table>{% endif %}
</section>

<section id="decision"><h2>{{ sections.decision }}</h2>
{% if s.retraining is none %}<p class="note">No decision: the run stopped before the retraining policy.</p>
{% else %}
<p>Decision: <b>{{ s.retraining.mode }}{% if s.retraining.min_diff %} with MinDiff{% endif %}</b></p>
<ul>{% for reason in s.retraining.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
{% if s.retraining.serving and s.retraining.serving.model_id %}<p>Serving: model {{ s.retraining.serving.model_id }}
(trained on spans {{ s.retraining.serving.trained_on_spans | join(', ') }}){% if s.retraining.serving.lags_span is not none %},
lagging span {{ s.retraining.serving.lags_span }}{% endif %}.</p>{% endif %}
{% for c in s.retraining.rejected_candidates %}{% for r in c.rejections %}
<p class="note">Rejected earlier: run {{ c.run_id }} ({{ c.mode }}{% if c.min_diff %} with MinDiff{% endif %}) by the {{ r.gate }} gate: {{ r.reasons | join('; ') }}</p>
{% endfor %}{% endfor %}
{% if s.verdict and s.verdict.next_run_on_this_span %}<p>Next run on this span: {{ s.verdict.next_run_on_this_span }}{% if s.verdict.next_run_min_diff %} with MinDiff{% endif %}.</p>{% endif %}
{% endif %}
</section>

<section id="training"><h2>{{ sections.training }}</h2>
{% if s.training is none %}<p class="note">No model was trained in this run.</p>
{% else %}<p>{{ s.training.trainer }}, per epoch (training batches and the eval split).</p>
{% if training_chart %}<img alt="training curves" src="{{ training_chart }}">{% else %}<p class="note">No per-epoch history was written.</p>{% endif %}
{% endif %}
</section>

<section id="evaluation"><h2>{{ sections.evaluation }}</h2>
{% if s.model_gate is none %}<p class="note">No evaluation in this run.</p>
{% else %}
<p>Model gate: <span class="{{ 'ok' if s.model_gate.passed else 'bad' }}">{{ 'passed' if s.model_gate.passed else 'BLOCKED' }}</span>
({{ 'absolute thresholds and the blessed baseline' if s.model_gate.compared_with_baseline else 'absolute thresholds; no blessed baseline yet' }}).</p>
{% if failures %}<ul class="bad">{% for f in failures %}<li>{{ f }}</li>{% endfor %}</ul>{% endif %}
{% if gates_chart %}<img alt="gated metrics" src="{{ gates_chart }}">{% endif %}
<table><tr><th>slice</th>{% for m in table_metrics %}<th>{{ m }}</th>{% endfor %}</tr>
<tr><td><b>Overall</b></td>{% for m in table_metrics %}<td>{{ overall.get(m) | num }}</td>{% endfor %}</tr>
{% if changes %}<tr><td class="note">change vs baseline</td>{% for m in table_metrics %}<td class="note">{{ changes.get(m) | num }}</td>{% endfor %}</tr>{% endif %}
{% for name, values in per_slice.items() %}<tr><td>{{ name }}</td>{% for m in table_metrics %}<td>{{ values.get(m) | num }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if slices_chart %}<img alt="per-slice metrics with the slice gates" src="{{ slices_chart }}">{% endif %}
{% endif %}
</section>

<section id="fairness"><h2>{{ sections.fairness }}</h2>
{% if fairness is none %}<p class="note">No fairness report in this run.</p>
{% else %}
<p>{{ fairness.slices | length }} slices; gated when at least {{ fairness.min_slice_size }} examples.
Slice gates: {{ json(fairness.slice_gates) }}; gap gates: {{ json(fairness.gap_gates) }}.</p>
{% if gaps %}<table><tr><th>metric</th><th>slicing</th><th>largest gap between gated slices</th><th>allowed</th></tr>
{% for g in gaps %}<tr><td>{{ g.metric }}</td><td>{{ g.slicing }}</td><td>{{ g.gap | num }}</td>
<td>{{ g.allowed | num if g.allowed is not none else 'not gated' }}</td></tr>{% endfor %}</table>
{% else %}<p class="note">No slicing has two gated slices with a value: no gap to measure.</p>{% endif %}
<table><tr><th>slice</th><th>examples</th><th>gated</th></tr>
{% for r in fairness.slices %}<tr><td>{{ r.slice }}</td><td>{{ r.examples }}</td><td>{{ 'yes' if r.gated else 'no' }}</td></tr>{% endfor %}
</table><p class="note">Their metrics are in the evaluation's table above and in {{ s.model_gate.fairness.table }}.</p>
{% endif %}
</section>

<section id="history"><h2>{{ sections.history }}</h2>
{% if not history %}<p class="note">No model of this pipeline has been pushed yet.</p>
{% else %}
{% if history_chart %}<img alt="gated metrics of the pushed versions" src="{{ history_chart }}">{% endif %}
<table><tr><th>version</th><th>pushed at</th><th>model</th><th>trained in run</th><th>spans</th>
{% for name in history[0].metrics %}<th>{{ name }}</th>{% endfor %}<th>note</th></tr>
{% for h in history %}<tr><td>{{ h.version }}{% if h.version == served %} (served){% endif %}</td>
<td>{{ h.pushed_at.isoformat(timespec="seconds") }}</td><td>{{ h.model_id }}</td><td>{{ h.run_id }}</td>
<td>{{ h.spans | join(', ') }}</td>{% for value in h.metrics.values() %}<td>{{ value | num }}</td>{% endfor %}
<td>{{ 'rollback from version ' ~ h.rolled_back_from if h.rolled_back_from else '' }}</td></tr>{% endfor %}
</table>{% endif %}
</section>

<section id="serving"><h2>{{ sections.serving }}</h2>
{% if s.serving_gate is none %}<p class="note">No serving validation in this run.</p>
{% else %}
<p>Serving validation: <span class="{{ 'ok' if s.serving_gate.passed else 'bad' }}">{{ 'passed' if s.serving_gate.passed else 'BLOCKED' }}</span>
{% if s.serving_gate.reason %}({{ s.serving_gate.reason }}){% endif %}</p>
<table>{% for key, value in s.serving_gate.report.items() if key != 'problems' %}<tr><td>{{ key }}</td><td>{{ value | num }}</td></tr>{% endfor %}</table>
{% if s.serving_gate.report.problems %}<ul class="bad">{% for p in s.serving_gate.report.problems %}<li>{{ p }}</li>{% endfor %}</ul>{% endif %}
{% endif %}
<p>{% if s.push.pushed %}Pushed: version <b>{{ s.push.version }}</b> at {{ s.push.path }}.{% else %}Not pushed: {{ s.push.reason or 'no model was trained' }}.{% endif %}
Served now: {{ 'version ' ~ served if served else 'nothing' }}.</p>
</section>
</body></html>
''')
