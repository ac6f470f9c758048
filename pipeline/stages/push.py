"""Push: the serving gate (the candidate loaded and queried as TF Serving would), the atomic push of a
model every gate blessed, and the candidate's verdict that the next runs' retraining policy reads."""
from __future__ import annotations

from tfx import v1 as tfx

from components.candidate_verdict import CandidateVerdict
from components.contracts import PUSHER
from components.pusher import AtomicPusher
from components.serving_validator import ServingValidator
from pipeline.config import PipelineConfig
from pipeline.stages.decide import Decided
from pipeline.stages.train import Trained


def push(config: PipelineConfig, decided: Decided, trained: Trained, evaluator) -> list:
    serving_check = ServingValidator(
        model=trained.model,
        model_run=trained.model_run,
        model_blessing=evaluator.outputs["blessing"],
        settings=config.serving_validator_settings(),
    )
    pusher = AtomicPusher(
        model=trained.model,
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=serving_check.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=config.serving_uri)),
        custom_config=config.serving.model_dump(mode="json"),
    ).with_id(PUSHER)
    verdict = CandidateVerdict(
        decision=decided.decision,
        model_blessing=evaluator.outputs["blessing"],
        evaluation=evaluator.outputs["evaluation"],
        infra_blessing=serving_check.outputs["blessing"],
        pushed_model=pusher.outputs["pushed_model"],
    )
    return [serving_check, pusher, verdict]
