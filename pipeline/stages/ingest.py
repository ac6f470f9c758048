"""Ingest and validate: ExampleGen on one span, its statistics, the curated schema, anomalies and the
data gate; and the training window (the spans Transform and Trainer read)."""
from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass

import tensorflow_data_validation as tfdv
from tfx import v1 as tfx

from components.contracts import TRAINING_WINDOW
from components.data_gate import DataGate
from components.drift_check import STATISTICS_QUANTILES
from pipeline.config import URI, PipelineConfig


def example_gen(config: PipelineConfig, span: int | None):
    """CsvExampleGen pinned to one span (the newest complete one, or an older one to backfill), or with span
    None the newest span matching data.span_pattern when the run starts (under an orchestrator)."""
    input_config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name="single_split", pattern=config.data.span_pattern)])
    output_config = tfx.proto.Output(split_config=tfx.proto.SplitConfig(splits=[
        tfx.proto.SplitConfig.Split(name="train", hash_buckets=config.data.train_buckets),
        tfx.proto.SplitConfig.Split(name="eval", hash_buckets=config.data.eval_buckets),
    ]))
    return tfx.components.CsvExampleGen(
        input_base=config.uri(config.data.base),
        input_config=input_config,
        output_config=output_config,
        range_config=None if span is None else tfx.proto.RangeConfig(
            static_range=tfx.proto.StaticRange(start_span_number=span, end_span_number=span)),
    )


def curated_schema_file(config: PipelineConfig) -> str:
    """A copy of the curated schema named by its content.

    ImportSchemaGen records only the file's path, so an edit in place would be hidden by the cache;
    a content-named copy makes an edited schema a new input and an unchanged one a cache hit. A schema at a
    URI (deploy.schema_path) is the workers' own and used as it is.
    """
    if URI.match(config.data.schema_path):
        return config.data.schema_path
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


@dataclass
class Ingested:
    components: list
    examples: object       # this run's span
    statistics: object
    schema: object
    data_gate: DataGate    # its result's BLESSED_KEY: the Cond that keeps blocked data out of training
    window_resolver: list  # the training window's resolver (none for `latest`)
    window: object         # the training window's Examples


def ingest(config: PipelineConfig, span: int | None) -> Ingested:
    ingest = example_gen(config, span)
    statistics = tfx.components.StatisticsGen(examples=ingest.outputs["examples"], stats_options=statistics_options())
    schema = tfx.components.ImportSchemaGen(schema_file=curated_schema_file(config))
    validator = tfx.components.ExampleValidator(
        statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"])
    data_gate = DataGate(anomalies=validator.outputs["anomalies"])
    window_resolver, window = training_window(config, ingest)
    return Ingested(
        components=[ingest, statistics, schema, validator, data_gate], examples=ingest.outputs["examples"],
        statistics=statistics.outputs["statistics"], schema=schema.outputs["schema"],
        data_gate=data_gate, window_resolver=window_resolver, window=window)


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
    ).with_id(TRAINING_WINDOW)
    resolver.add_upstream_node(ingest)
    return [resolver], resolver.outputs["examples"]
