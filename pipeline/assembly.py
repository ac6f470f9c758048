"""Builds the TFX pipeline from the config, in the data's own order:
ingest → validate (data gate) → drift check → retraining policy → transform + train, or
fine-tune → evaluate (model gate) → serving validation (serving gate) → push → the candidate's
verdict (read by the next runs' retraining policy).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from fairness_indicators import fairness_indicators_metrics
from tfx import v1 as tfx
from tfx.types import channel, standard_artifacts

from components import exact_auc
from components.blessed_lineage import BlessedModelLineage
from components.candidate_verdict import CandidateVerdict
from components.contracts import FINE_TUNE, FULL_RETRAIN, MODE_KEY, SKIP, Verdict
from components.data_gate import BLESSED_KEY, DataGate
from components.drift_check import STATISTICS_QUANTILES, DriftCheck
from components.fairness_evaluator import FairnessEvaluator
from components.pusher import AtomicPusher
from components.retrain_policy import RetrainPolicy
from components.serving_validator import ServingValidator
from pipeline import metadata_store
from pipeline.config import PipelineConfig

TRANSFORM_FN = "components.transform.preprocessing_fn"
TRAINER_FN = "components.trainer.run_fn"


def beam_args(config: PipelineConfig) -> list[str]:
    """In memory, Beam's defaults are left unsaid: with no Beam args, TFX skips building an sdist of
    itself for remote workers (seconds per component) that a DirectRunner in this process never uses."""
    if config.beam.direct_running_mode == "in_memory":
        return list(config.beam.extra_args)
    workers = config.beam.direct_num_workers or os.cpu_count() or 1
    return [
        "--runner=DirectRunner",
        f"--direct_running_mode={config.beam.direct_running_mode}",
        f"--direct_num_workers={workers}",
        *config.beam.extra_args,
    ]


# --- ingest -------------------------------------------------------------------------------------

def example_gen(config: PipelineConfig, span: int):
    """CsvExampleGen pinned to one span: the newest complete one, or an older one (backfill)."""
    input_config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=config.data.span_pattern)])
    output_config = tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name="train", hash_buckets=config.data.train_buckets),
        tfx.proto.SplitConfig.Split(name="eval", hash_buckets=config.data.eval_buckets),
    ]))
    return tfx.components.CsvExampleGen(
        input_base=str(config.path(config.data.base)),
        input_config=input_config,
        output_config=output_config,
        range_config=tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span)),
    )


def training_window(config: PipelineConfig, ingest):
    """The spans Transform analyses and Trainer learns from: the newest span, or the newest k.

    Returns the resolver to add to the pipeline (none for `latest`) and the window's channel. The
    resolver reads every span ExampleGen ever ingested (a producer-bound channel would see only
    this run's span), and runs after this run's ExampleGen.
    """
    if config.data.spans.policy == "latest":
        return [], ingest.outputs["examples"]
    resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.SpanRangeStrategy,
        config={"range_config": tfx.proto.RangeConfig(
            rolling_range=tfx.proto.RollingRange(num_spans=config.data.spans.k))},
        examples=tfx.dsl.Channel(
            type=tfx.types.standard_artifacts.Examples, producer_component_id=ingest.id, output_key="examples"),
    ).with_id("training_window")
    resolver.add_upstream_node(ingest)
    return [resolver], resolver.outputs["examples"]


# --- validate ---------------------------------------------------------------------------------

def curated_schema_file(config: PipelineConfig) -> str:
    """A copy of the curated schema named by its content.

    ImportSchemaGen records only the file's path, so an edit in place would be hidden by the cache;
    a content-named copy makes an edited schema a new input and an unchanged one a cache hit.
    """
    source = config.path(config.data.schema_path)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = config.pipeline_root / "curated_schema" / digest / source.name
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return str(target)


def statistics_options() -> tfdv.StatsOptions:
    """StatisticsGen's options: quantile histograms fine enough for DriftCheck's quantile buckets."""
    return tfdv.StatsOptions(num_quantiles_histogram_buckets=STATISTICS_QUANTILES)


# --- evaluate -----------------------------------------------------------------------------------

RATE_METRICS = {  # a gated rate of pipeline.yaml's fairness section -> TFMA's metric class for it
    "false_positive_rate": "FPR", "false_negative_rate": "FNR", "true_positive_rate": "TPR",
    "true_negative_rate": "TNR", "positive_rate": "PredictedPositiveRate",
    "false_discovery_rate": "FalseDiscoveryRate", "false_omission_rate": "FalseOmissionRate",
}


def eval_config(config: PipelineConfig) -> tfma.EvalConfig:
    """Model gates on the whole eval split; fairness gates per slice (narrowed to large slices at run time)."""
    threshold = config.evaluation.decision_threshold
    metric_args = {
        "BinaryAccuracy": {"threshold": threshold},
        "Precision": {"thresholds": threshold},
        "Recall": {"thresholds": threshold},
    }
    gates = {gate.metric: gate for gate in config.evaluation.gates}
    metrics = []
    for name in ("ExampleCount", "AUC", "BinaryAccuracy", "Precision", "Recall", "Calibration",
                 "CalibrationPlot", "MeanLabel", "MeanPrediction"):
        if name == "AUC":  # exact: TFMA's own AUC ties every saturated score in its lowest bin (components/exact_auc.py)
            metric = tfma.MetricConfig(class_name=exact_auc.ExactAUC.__name__, module=exact_auc.__name__)
        else:
            metric = tfma.MetricConfig(class_name=name, config=_json(metric_args.get(name)))
        if name in gates:
            metric.per_slice_thresholds.add(slicing_specs=[tfma.SlicingSpec()], threshold=_threshold(gates[name]))
        metrics.append(metric)
    fairness = config.fairness
    metrics.append(tfma.MetricConfig(class_name="FairnessIndicators", module=fairness_indicators_metrics.__name__,
                                     config=_json({"thresholds": fairness.thresholds})))
    # TFMA thresholds hold on the keys of the MetricConfig they sit in, and Fairness Indicators' keys are
    # its sub-metrics: so a gated rate is also computed alone, by TFMA's metric of that rate at that threshold.
    by_class = {metric.class_name: metric for metric in metrics}
    gated = {exact_auc.NAME: by_class[exact_auc.ExactAUC.__name__], "example_count": by_class["ExampleCount"]}
    for gate in [*fairness.slice_gates, *fairness.gap_gates]:
        if gate.metric not in gated:
            rate, threshold = gate.metric.split("@", 1)
            gated[gate.metric] = tfma.MetricConfig(class_name=RATE_METRICS[rate],
                                                   config=_json({"thresholds": float(threshold), "name": gate.metric}))
            metrics.append(gated[gate.metric])
    slicings = [tfma.SlicingSpec(feature_keys=keys) for keys in fairness.slices]
    for gate in fairness.slice_gates:
        bounds = tfma.MetricThreshold()
        if gate.lower_bound is not None:
            bounds.value_threshold.lower_bound.value = gate.lower_bound
        if gate.upper_bound is not None:
            bounds.value_threshold.upper_bound.value = gate.upper_bound
        gated[gate.metric].per_slice_thresholds.add(slicing_specs=slicings, threshold=bounds)
    cross_slicings = []
    for gate in fairness.gap_gates:
        gap = tfma.MetricThreshold()
        gap.value_threshold.lower_bound.value = -gate.max_gap
        gap.value_threshold.upper_bound.value = gate.max_gap
        specs = [tfma.CrossSlicingSpec(baseline_spec=tfma.SlicingSpec(feature_keys=keys))
                 for keys in ([gate.slices] if gate.slices else fairness.slices)]
        gated[gate.metric].cross_slice_thresholds.add(cross_slicing_specs=specs, threshold=gap)
        cross_slicings += [spec for spec in specs if spec not in cross_slicings]
    evaluation = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name="serving_default",
            label_key=config.label.name,
            prediction_key="probabilities",
            preprocessing_function_names=["transform_features"],
        )],
        slicing_specs=[tfma.SlicingSpec()] + slicings,
        cross_slicing_specs=cross_slicings,
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)],
    )
    evaluation.options.min_slice_size.value = fairness.min_slice_size  # read by FairnessEvaluator's executor
    # The metrics above replace the ones compiled into the Keras model; computing those too made TFMA
    # load every model a second time as Keras and run it per batch (about half of the Evaluator's time).
    evaluation.options.include_default_metrics.value = False
    return evaluation


def _json(arguments) -> str:
    return json.dumps(arguments) if arguments else ""


def _threshold(gate) -> tfma.MetricThreshold:
    threshold = tfma.MetricThreshold()
    if gate.lower_bound is not None:
        threshold.value_threshold.lower_bound.value = gate.lower_bound
    if gate.upper_bound is not None:
        threshold.value_threshold.upper_bound.value = gate.upper_bound
    if gate.max_regression is not None:
        threshold.change_threshold.direction = tfma.MetricDirection.HIGHER_IS_BETTER
        threshold.change_threshold.absolute.value = -gate.max_regression
    return threshold


# --- the whole pipeline -------------------------------------------------------------------------

def blessed_model(config: PipelineConfig):
    """The latest blessed model and, through ML Metadata lineage, the data and graph it came from; and
    the verdicts of the candidates rejected since."""
    return tfx.dsl.Resolver(
        strategy_class=BlessedModelLineage,
        model=tfx.dsl.Channel(type=standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing),
        infra_blessing=tfx.dsl.Channel(type=standard_artifacts.InfraBlessing),
        transform_graph=tfx.dsl.Channel(type=standard_artifacts.TransformGraph),
        examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
        analysed_examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
        statistics=tfx.dsl.Channel(type=standard_artifacts.ExampleStatistics),
        verdicts=tfx.dsl.Channel(type=Verdict),
    ).with_id("blessed_model")


def trainer_config(config: PipelineConfig, mode: str) -> dict:
    return {
        "mode": mode,
        "transform": config.transform_settings(),
        "model": config.model.model_dump(),
        "fine_tune": config.retraining.fine_tune.model_dump(),
        "batch_size": config.training.batch_size,
        "seed": config.training.seed,
        "epochs": config.training.epochs,
        "early_stopping_patience": config.training.early_stopping_patience,
        "decision_threshold": config.evaluation.decision_threshold,
        "serving": {"model_name": config.serving.model_name, "warmup_rows": config.serving.warmup_rows},
    }


def create_pipeline(config: PipelineConfig, span: int) -> tfx.dsl.Pipeline:
    """The pipeline for one run on `span`, the newest complete span."""
    # ingest and validate: every run
    ingest = example_gen(config, span)
    statistics = tfx.components.StatisticsGen(examples=ingest.outputs["examples"], stats_options=statistics_options())
    schema = tfx.components.ImportSchemaGen(schema_file=curated_schema_file(config))
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"])
    data_gate = DataGate(anomalies=validator.outputs["anomalies"])
    blessed = blessed_model(config)
    blessed.add_upstream_node(data_gate)
    components = [ingest, statistics, schema, validator, data_gate, blessed]
    retraining = config.retraining

    # The drift check and the policy run on every span, so the Cond predicates below can always be
    # evaluated; the policy also says `skip` for a span the data gate blocked.
    drift = DriftCheck(
        statistics=statistics.outputs["statistics"],
        schema=schema.outputs["schema"],
        baseline_statistics=blessed.outputs["statistics"],
        settings=config.drift_settings(),
    )
    policy = RetrainPolicy(
        examples=ingest.outputs["examples"],
        schema=schema.outputs["schema"],
        data_gate=data_gate.outputs["result"],
        drift_report=drift.outputs["report"],
        baseline_model=blessed.outputs["model"],
        baseline_examples=blessed.outputs["examples"],
        analysed_examples=blessed.outputs["analysed_examples"],
        baseline_transform_graph=blessed.outputs["transform_graph"],
        rejected_verdicts=blessed.outputs["verdicts"],
        policy=retraining.policy,
        full_retrain_every_n_spans=retraining.full_retrain_every_n_spans,
        settings_digest=config.candidate_settings_digest(),
    )
    window, window_examples = training_window(config, ingest)
    components += [drift, policy] + window
    mode = policy.outputs["decision"].future()[0].custom_property(MODE_KEY)

    with tfx.dsl.Cond(data_gate.outputs["result"].future()[0].custom_property(BLESSED_KEY) == 1):
        with tfx.dsl.Cond(mode == FULL_RETRAIN):
            transform = tfx.components.Transform(
                examples=window_examples,
                schema=schema.outputs["schema"],
                preprocessing_fn=TRANSFORM_FN,
                custom_config=config.transform_settings(),
                materialize=False,
                disable_statistics=True,  # StatisticsGen already has the raw data's; the trainer transforms in tf.data
            )
            trainer = tfx.components.Trainer(
                run_fn=TRAINER_FN,
                examples=window_examples,
                transform_graph=transform.outputs["transform_graph"],
                schema=schema.outputs["schema"],
                train_args=tfx.proto.TrainArgs(num_steps=config.training.train_steps),
                eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
                custom_config=trainer_config(config, FULL_RETRAIN),
            )
            components += [transform, trainer]

        with tfx.dsl.Cond(mode == FINE_TUNE):
            # The blessed model's own graph: no re-analysis, so its vocabularies and scaling hold.
            fine_tuner = tfx.components.Trainer(
                run_fn=TRAINER_FN,
                examples=ingest.outputs["examples"],
                transform_graph=blessed.outputs["transform_graph"],
                base_model=blessed.outputs["model"],
                schema=schema.outputs["schema"],
                train_args=tfx.proto.TrainArgs(num_steps=retraining.fine_tune.train_steps),
                eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
                custom_config=trainer_config(config, FINE_TUNE),
            ).with_id("FineTuneTrainer")
            components.append(fine_tuner)

        with tfx.dsl.Cond(mode != SKIP):
            candidate = channel.union([trainer.outputs["model"], fine_tuner.outputs["model"]])
            evaluator = FairnessEvaluator(
                examples=window_examples,
                model=candidate,
                baseline_model=blessed.outputs["model"],
                eval_config=eval_config(config),
            ).with_id("Evaluator")
            serving_check = ServingValidator(
                model=candidate,
                model_run=channel.union([trainer.outputs["model_run"], fine_tuner.outputs["model_run"]]),
                model_blessing=evaluator.outputs["blessing"],
                settings={**config.transform_settings(), **config.serving.validation.model_dump()},
                model_name=config.serving.model_name,
            )
            pusher = AtomicPusher(
                model=candidate,
                model_blessing=evaluator.outputs["blessing"],
                infra_blessing=serving_check.outputs["blessing"],
                push_destination=tfx.proto.PushDestination(
                    filesystem=tfx.proto.PushDestination.Filesystem(base_directory=str(config.serving_dir))),
                custom_config={"serving": config.serving.model_dump()},
            ).with_id("Pusher")
            verdict = CandidateVerdict(
                decision=policy.outputs["decision"],
                model_blessing=evaluator.outputs["blessing"],
                evaluation=evaluator.outputs["evaluation"],
                infra_blessing=serving_check.outputs["blessing"],
                pushed_model=pusher.outputs["pushed_model"],
            )
            components += [evaluator, serving_check, pusher, verdict]

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=str(config.pipeline_root),
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_store.connection_config(config),
        beam_pipeline_args=beam_args(config),
    )


def ingest_pipeline(config: PipelineConfig, span: int) -> tfx.dsl.Pipeline:
    """ExampleGen alone for one older span, so a last_k window has its spans on a fresh store."""
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=str(config.pipeline_root),
        components=[example_gen(config, span)],
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_store.connection_config(config),
        beam_pipeline_args=beam_args(config),
    )
