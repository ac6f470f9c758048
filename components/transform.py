"""The tf.Transform preprocessing_fn: one graph, analysed once, applied at training and at serving."""
import tensorflow as tf
import tensorflow_transform as tft

from components.features import as_dense, transformed_name
from components.settings import Feature, Label, TransformSettings


def _transform_feature(feature: Feature, value):
    treatment = feature.treatment
    if treatment == "zscore":
        return tft.scale_to_z_score(tf.cast(value, tf.float32))
    if treatment == "bucketize":
        return tft.bucketize(tf.cast(value, tf.float32), num_buckets=feature.buckets)
    if treatment == "identity":
        return tf.clip_by_value(tf.cast(value, tf.int64), 0, feature.buckets - 1)
    if treatment == "vocabulary":
        return tft.compute_and_apply_vocabulary(
            value,
            top_k=feature.top_k,
            num_oov_buckets=feature.oov_buckets,
            vocab_filename=feature.name,
        )
    raise ValueError(f"unknown treatment {treatment!r} for feature {feature.name!r}")


def _make_label(label: Label, inputs):
    source = as_dense(inputs[label.source])
    if label.rule == "equals":
        return tf.cast(tf.equal(source, label.value), tf.int64)
    source = tf.cast(source, tf.float32)
    if label.rule == "above":
        return tf.cast(source > label.threshold, tf.int64)
    denominator = tf.cast(as_dense(inputs[label.denominator]), tf.float32)
    ratio = tf.math.divide_no_nan(source, denominator)
    return tf.cast(tf.logical_and(denominator > 0, ratio > label.threshold), tf.int64)


def preprocessing_fn(inputs, custom_config):
    """Transformed features are `<name>_xf`; the label gets its configured name.

    custom_config is PipelineConfig.transform_settings() (TransformSettings)."""
    settings = TransformSettings.model_validate(custom_config)
    outputs = {}
    for feature in settings.features:
        value = as_dense(inputs[feature.name], feature.fill_value)
        outputs[transformed_name(feature.name)] = _transform_feature(feature, value)
    outputs[settings.label.name] = _make_label(settings.label, inputs)
    return outputs
