"""The trainer module's process-wide setting: AutoGraph leaves tf_keras alone (TF 2.16 did not)."""
import tf_keras as keras
from tensorflow.python.autograph.impl import conversion


def test_autograph_does_not_rewrite_tf_keras_internals():
    import components.trainer  # noqa: F401  (importing the module is what sets the rule)

    assert conversion.is_allowlisted(keras.layers.Dense.call)
    assert conversion.is_allowlisted(keras.Model.train_step)
