"""Evaluate: the model gate. TFX's Evaluator (FairnessEvaluator) with the gates of `evaluation:` on the
whole eval split and the fairness gates of `fairness:` per slice, against the blessed baseline."""
from __future__ import annotations

from components.contracts import EVALUATOR
from components.evaluation import eval_config
from components.fairness_evaluator import FairnessEvaluator
from pipeline.config import PipelineConfig
from pipeline.stages.decide import Decided
from pipeline.stages.ingest import Ingested
from pipeline.stages.train import Trained


def evaluate(config: PipelineConfig, ingested: Ingested, decided: Decided, trained: Trained) -> FairnessEvaluator:
    return FairnessEvaluator(
        examples=ingested.window,
        model=trained.model,
        baseline_model=decided.blessed.outputs["model"],
        eval_config=eval_config(config.evaluation, config.fairness, config.label.name),
    ).with_id(EVALUATOR)
