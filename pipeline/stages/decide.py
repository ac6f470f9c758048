"""The retraining decision: the blessed model and its lineage, drift from its data, and the policy's
mode (skip, fine-tune or full retrain) that the Cond blocks of the train stage read."""
from __future__ import annotations

from dataclasses import dataclass

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components.artifacts import Verdict
from components.blessed_lineage import BlessedModelLineage
from components.contracts import BLESSED_MODEL
from components.drift_check import DriftCheck
from components.retrain_policy import RetrainPolicy
from pipeline.config import PipelineConfig
from pipeline.stages.ingest import Ingested


def blessed_model():
    """The latest blessed and pushed model and, through ML Metadata lineage, the data and graph it came from; and
    the verdicts of the candidates rejected since."""
    return tfx.dsl.Resolver(
        strategy_class=BlessedModelLineage,
        model=tfx.dsl.Channel(type=standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=standard_artifacts.ModelBlessing),
        infra_blessing=tfx.dsl.Channel(type=standard_artifacts.InfraBlessing),
        pushed_models=tfx.dsl.Channel(type=standard_artifacts.PushedModel),
        transform_graph=tfx.dsl.Channel(type=standard_artifacts.TransformGraph),
        examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
        analysed_examples=tfx.dsl.Channel(type=standard_artifacts.Examples),
        statistics=tfx.dsl.Channel(type=standard_artifacts.ExampleStatistics),
        verdicts=tfx.dsl.Channel(type=Verdict),
    ).with_id(BLESSED_MODEL)


@dataclass
class Decided:
    components: list
    blessed: object     # the resolver: its outputs are the blessed model, its graph, data and statistics
    decision: object    # RetrainDecision: MODE_KEY
    training_options: object   # HyperParameters: what the Trainers are told at run time (MinDiff or not)


def decide(config: PipelineConfig, ingested: Ingested) -> Decided:
    """The drift check and the policy run on every span, so the Cond predicates of the train stage can
    always be evaluated; the policy also says `skip` for a span the data gate blocked."""
    blessed = blessed_model()
    blessed.add_upstream_node(ingested.data_gate)
    drift = DriftCheck(statistics=ingested.statistics, schema=ingested.schema,
                       baseline_statistics=blessed.outputs["statistics"], settings=config.drift_check_settings())
    policy = RetrainPolicy(
        examples=ingested.examples,
        schema=ingested.schema,
        data_gate=ingested.data_gate.outputs["result"],
        drift_report=drift.outputs["report"],
        baseline_model=blessed.outputs["model"],
        baseline_examples=blessed.outputs["examples"],
        analysed_examples=blessed.outputs["analysed_examples"],
        baseline_transform_graph=blessed.outputs["transform_graph"],
        rejected_verdicts=blessed.outputs["verdicts"],
        settings=config.retrain_policy_settings(),
    )
    return Decided(components=[blessed, drift, policy], blessed=blessed, decision=policy.outputs["decision"],
                   training_options=policy.outputs["training_options"])
