"""The trainer module's process-wide setting: AutoGraph leaves tf_keras alone (TF 2.16 did not)."""
import tf_keras as keras
from tensorflow.python.autograph.impl import conversion


def test_autograph_does_not_rewrite_tf_keras_internals():
    import components.trainer  # noqa: F401  (importing the module is what sets the rule)

    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(keras.Model.train_step)


def test_settings_leave_the_vertex_trainer_keys_alone():
    """Under deploy.training_job, TFX's Vertex Trainer passes its own keys to run_fn in custom_config."""
    from pipeline.config import load_config
    from components.trainer import trainer_settings
    from project_helpers import REPO

    settings = load_config(REPO / "pipeline.yaml").trainer_settings("full_retrain")
    custom_config = {**settings.model_dump(mode="json"), "ai_platform_enable_vertex": True,
                     "ai_platform_training_args": {"project": "p", "job_spec": {"worker_pool_specs": []}}}
    assert trainer_settings(custom_config) == settings
