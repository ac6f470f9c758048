"""Builds the TFX pipeline from the config, stage by stage in the data's own order (pipeline/stages):
ingest and validate (data gate) → decide (blessed model, drift, retraining policy) → train (full
retrain or fine-tune) → evaluate (model gate) → push (serving gate, push, the candidate's verdict,
read by the next runs' retraining policy).
"""
from __future__ import annotations

from tfx import v1 as tfx

from components.contracts import BLESSED_KEY, MODE_KEY, SKIP
from pipeline import metadata_store
from pipeline.config import PipelineConfig
from pipeline.stages.decide import decide
from pipeline.stages.evaluate import evaluate
from pipeline.stages.ingest import example_gen, ingest
from pipeline.stages.push import push
from pipeline.stages.train import train


def create_pipeline(config: PipelineConfig, span: int | None, metadata_connection) -> tfx.dsl.Pipeline:
    """The pipeline for one run on `span`, the newest complete span. Under an orchestrator (pipeline/deploy.py)
    span is None (ExampleGen takes the newest span when the run starts), and metadata_connection None means
    the orchestrator's own store (Kubeflow, Vertex)."""
    ingested = ingest(config, span)
    decided = decide(config, ingested)
    components = ingested.components + decided.components + ingested.window_resolver
    with tfx.dsl.Cond(ingested.data_gate.outputs["result"].future()[0].custom_property(BLESSED_KEY) == 1):
        trained = train(config, ingested, decided)
        components += trained.components
        with tfx.dsl.Cond(decided.decision.future()[0].custom_property(MODE_KEY) != SKIP):
            evaluator = evaluate(config, ingested, decided, trained)
            components += [evaluator, *push(config, decided, trained, evaluator)]
    return _pipeline(config, components, metadata_connection)


def ingest_pipeline(config: PipelineConfig, span: int) -> tfx.dsl.Pipeline:
    """ExampleGen alone for one older span, so a last_k window has its spans on a fresh store."""
    return _pipeline(config, [example_gen(config, span)], metadata_store.connection_config(config))


def _pipeline(config: PipelineConfig, components: list, metadata_connection) -> tfx.dsl.Pipeline:
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline.name,
        pipeline_root=config.pipeline_root_uri,
        components=components,
        enable_cache=config.pipeline.enable_cache,
        metadata_connection_config=metadata_connection,
        beam_pipeline_args=config.beam.args(),
    )
