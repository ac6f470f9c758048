"""MinDiff (tensorflow-model-remediation) for the trainer: the two groups of fairness.remediation as datasets, and
the Keras model wrapped so that training adds a penalty on the difference of their score distributions.

MinDiffModel subclasses tf.keras.Model, so tf.keras must be Keras 2 (tf_keras, the trainer's Keras): TF 2.16
resolves tf.keras once, from TF_USE_LEGACY_KERAS, when it is first used. `python -m pipeline` sets it before TFX is
imported (pipeline/__init__.py), the Dockerfile for the orchestrators' image; this module sets it too for a process
that has not used tf.keras yet, and stops with a clear error in one that resolved it to Keras 3. Only training
changes: the trainer exports the original model, with the signatures and transform graph of every other run.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
from tensorflow_model_remediation import min_diff  # noqa: E402

from components.features import as_dense  # noqa: E402
from components.settings import Remediation  # noqa: E402

if not tf.keras.Model.__module__.startswith("tf_keras"):
    raise ImportError(f"MinDiff needs tf.keras to be Keras 2 (tf_keras), but it is {tf.keras.Model.__module__}: set "
                      "TF_USE_LEGACY_KERAS=1 before TensorFlow is first used (python -m pipeline does)")
LOSSES = {"mmd": min_diff.losses.MMDLoss, "absolute_correlation": min_diff.losses.AbsoluteCorrelationLoss}
LABELS = {"negatives": 0.0, "positives": 1.0, "all": None}


def _rows_of_group(batches, split_label, remediation: Remediation, sensitive: bool):
    """Single rows (transformed features, label) of one group, from batches of raw features: the rows whose raw
    `slice` value is among the group's values (the nonsensitive group of a null list: every other value), with the
    label remediation.examples asks for."""
    values = tf.constant(remediation.sensitive if sensitive or remediation.nonsensitive is None
                         else remediation.nonsensitive)
    member = sensitive or remediation.nonsensitive is not None   # the rest: rows NOT among the sensitive values
    label_kept = LABELS[remediation.examples]

    def with_value(raw):
        features, label = split_label(raw)
        value = as_dense(raw[remediation.slice])
        return features, label, value if value.dtype == tf.string else tf.strings.as_string(value)

    def keep(features, label, value):
        chosen = tf.equal(tf.reduce_any(tf.equal(value, values)), member)
        if label_kept is None:
            return chosen
        return tf.logical_and(chosen, tf.reduce_all(tf.equal(tf.cast(label, tf.float32), label_kept)))

    return batches.map(with_value).unbatch().filter(keep)


def group_sizes(batches, split_label, remediation: Remediation) -> tuple[int, int]:
    """Rows of the sensitive and the nonsensitive group in one pass over finite `batches` of raw features."""
    return tuple(int(_rows_of_group(batches, split_label, remediation, sensitive).reduce(0, lambda count, _: count + 1))
                 for sensitive in (True, False))


def pack(original, raw_batches, split_label, remediation: Remediation, batch_size: int):
    """The training batches with a batch of each group beside every batch, as MinDiffModel.fit reads them."""
    groups = [_rows_of_group(raw_batches, split_label, remediation, sensitive)
              .batch(batch_size, drop_remainder=True).map(lambda features, label, _: (features, label))
              for sensitive in (True, False)]
    return min_diff.keras.utils.pack_min_diff_data(original, *groups)


def wrap(model, remediation: Remediation):
    """The model as MinDiffModel trains it; its `original_model` is `model` itself, whose weights it updates."""
    return min_diff.keras.MinDiffModel(model, loss=LOSSES[remediation.loss](), loss_weight=remediation.loss_weight)
