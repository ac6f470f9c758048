"""Train: under the data gate's Cond, a full retrain (Transform analyses the window, Trainer learns a new
model) or a fine-tune (the blessed model's own graph and weights, on the new span), by the decision's mode; either
with MinDiff when the decision's training options say so (fairness.remediation)."""
from __future__ import annotations

from dataclasses import dataclass

from tfx import v1 as tfx
from tfx.types import channel

from components.contracts import FINE_TUNE, FINE_TUNE_TRAINER, FULL_RETRAIN, MODE_KEY
from pipeline.config import PipelineConfig
from pipeline.stages.decide import Decided
from pipeline.stages.ingest import Ingested

TRANSFORM_FN = "components.transform.preprocessing_fn"
TRAINER_FN = "components.trainer.run_fn"


def trainer(config: PipelineConfig, mode: str, **inputs):
    """TFX's Trainer running run_fn in this process; or, under an orchestrator with deploy.training_job, TFX's
    Vertex Trainer, which runs the same run_fn in deploy.image on Vertex AI's worker pools and waits for it. Its
    keys ride in custom_config beside the settings (run_fn ignores them)."""
    custom_config = config.trainer_settings(mode).model_dump(mode="json")
    if config.training_job is None:
        return tfx.components.Trainer(run_fn=TRAINER_FN, custom_config=custom_config, **inputs)
    vertex = tfx.extensions.google_cloud_ai_platform
    custom_config.update({
        vertex.ENABLE_VERTEX_KEY: True,
        vertex.VERTEX_REGION_KEY: config.deploy.vertex.region,
        vertex.TRAINING_ARGS_KEY: {"project": config.deploy.vertex.project, "job_spec": config.deploy.training_job_spec()},
    })
    return vertex.Trainer(run_fn=TRAINER_FN, custom_config=custom_config, **inputs)


@dataclass
class Trained:
    components: list
    model: object       # the candidate: the Trainer's or the FineTuneTrainer's Model, whichever ran
    model_run: object


def train(config: PipelineConfig, ingested: Ingested, decided: Decided) -> Trained:
    """Call inside the data gate's Cond; each trainer sits in a Cond on the decision's mode."""
    mode = decided.decision.future()[0].custom_property(MODE_KEY)
    with tfx.dsl.Cond(mode == FULL_RETRAIN):
        transform = tfx.components.Transform(
            examples=ingested.window,
            schema=ingested.schema,
            preprocessing_fn=TRANSFORM_FN,
            custom_config=config.transform_settings().model_dump(mode="json"),
            materialize=False,
            disable_statistics=True,  # StatisticsGen already has the raw data's; the trainer transforms in tf.data
            # With its cache, tf.Transform analyses each span of the window apart (to cache each one), about 4 s a
            # span; nothing reads the cache back, since a full retrain comes every n spans or on drift, when the
            # window's spans are mostly new. Without it the window is analysed once, as one data set.
            disable_analyzer_cache=True,
        )
        full_trainer = trainer(
            config, FULL_RETRAIN,
            examples=ingested.window,
            transform_graph=transform.outputs["transform_graph"],
            schema=ingested.schema,
            hyperparameters=decided.training_options,
            train_args=tfx.proto.TrainArgs(num_steps=config.training.train_steps),
            eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
        )

    with tfx.dsl.Cond(mode == FINE_TUNE):
        # The blessed model's own graph: no re-analysis, so its vocabularies and scaling hold.
        blessed = decided.blessed.outputs
        fine_tuner = trainer(
            config, FINE_TUNE,
            examples=ingested.examples,
            transform_graph=blessed["transform_graph"],
            base_model=blessed["model"],
            schema=ingested.schema,
            hyperparameters=decided.training_options,
            train_args=tfx.proto.TrainArgs(num_steps=config.retraining.fine_tune.train_steps),
            eval_args=tfx.proto.EvalArgs(num_steps=config.training.eval_steps),
        ).with_id(FINE_TUNE_TRAINER)

    return Trained(
        components=[transform, full_trainer, fine_tuner],
        model=channel.union([full_trainer.outputs["model"], fine_tuner.outputs["model"]]),
        model_run=channel.union([full_trainer.outputs["model_run"], fine_tuner.outputs["model_run"]]))
