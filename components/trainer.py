"""Trainer module (run_fn): a Keras model over the transformed features, exported for TF Serving.

Training reads the raw examples and applies the saved tf.Transform graph in the input pipeline,
so the exact graph that serving runs is the one training ran through. It runs under the strategy of
training.strategy (components/distribution.py). When the retraining decision says so (its training options, read
as fn_args.hyperparameters), the model trains with MinDiff (fairness.remediation, components/min_diff.py) and the
plain model is exported as on every other run.
"""
import hashlib
import json
import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from tensorflow.python.autograph.core import config as autograph_config

from components import distribution, export, min_diff
from components.contracts import CANARY_FILE, FINE_TUNE, HISTORY_FILE, VERTEX_TRAINER_KEY_PREFIX, WARM_START_FILE
from components.features import CATEGORICAL_TREATMENTS, feature_values, serving_feature_spec, transformed_name
from components.settings import Feature, ModelSection, TrainerSettings, TransformSettings

# TF 2.16's AutoGraph leaves `keras` alone but not `tf_keras`: it rewrote some 1,500 Keras internals
# on every fit, 25 s before the first step. Later TF releases carry this same rule.
if not any(rule.matches("tf_keras") for rule in autograph_config.CONVERSION_RULES):
    autograph_config.CONVERSION_RULES = (autograph_config.DoNotConvert("tf_keras"),) + autograph_config.CONVERSION_RULES

CANARY_ROWS = 20


def _label_splitter(tft_layer, label_name: str):
    def split_label(raw_features):
        transformed = tft_layer(raw_features)
        label = transformed.pop(label_name)
        return transformed, label

    return split_label


def _dataset(strategy, fn_args, file_pattern, tf_transform_output, tft_layer, settings: TrainerSettings, shuffle,
             remediation=None):
    """(transformed features, label) batches of one replica's share of training.batch_size. Each input
    pipeline (one per worker) reads the same seeded order and keeps its own shard of the batches. With
    `remediation` (fairness.remediation), each batch is packed with a batch of each MinDiff group."""
    split_label = _label_splitter(tft_layer, settings.transform.label.name)

    def dataset_fn(input_context: tf.distribute.InputContext):
        batch_size = input_context.get_per_replica_batch_size(settings.training.batch_size)
        options = tfxio.TensorFlowDatasetOptions(batch_size=batch_size, shuffle=shuffle,
                                                 shuffle_seed=settings.training.seed)
        raw = fn_args.data_accessor.tf_dataset_factory(file_pattern, options, tf_transform_output.raw_metadata.schema)
        raw = raw.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batches = raw.map(split_label, num_parallel_calls=tf.data.AUTOTUNE)
        if remediation is not None:
            batches = min_diff.pack(batches, raw, split_label, remediation, batch_size)
        return batches.prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def _check_groups(fn_args, tf_transform_output, tft_layer, settings: TrainerSettings) -> None:
    """Each MinDiff group needs a batch of training rows; a group with none would leave training waiting forever
    for its first batch."""
    options = tfxio.TensorFlowDatasetOptions(batch_size=1024, num_epochs=1, shuffle=False)
    raw = fn_args.data_accessor.tf_dataset_factory(fn_args.train_files, options, tf_transform_output.raw_metadata.schema)
    split_label = _label_splitter(tft_layer, settings.transform.label.name)
    sizes = min_diff.group_sizes(raw, split_label, settings.remediation)
    for group, size in zip(("sensitive", "nonsensitive"), sizes):
        if size < settings.training.batch_size:
            raise ValueError(f"fairness.remediation: the {group} group has {size} training rows "
                             f"({settings.remediation.examples} of {settings.remediation.slice}), fewer than one batch "
                             f"(training.batch_size {settings.training.batch_size})")


def _category_count(feature: Feature, tf_transform_output):
    if feature.treatment == "vocabulary":
        return tf_transform_output.num_buckets_for_transformed_feature(transformed_name(feature.name))
    return feature.buckets


def build_model(settings: TransformSettings, tf_transform_output, model_settings: ModelSection):
    """Categorical features one-hot, numeric ones as they are, then dense layers and a sigmoid."""
    inputs, encoded = {}, []
    for feature in settings.features:
        name = transformed_name(feature.name)
        if feature.treatment in CATEGORICAL_TREATMENTS:
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.int64)
            count = _category_count(feature, tf_transform_output)
            encoded.append(keras.layers.CategoryEncoding(count, output_mode="one_hot", name=f"{name}_onehot")(inputs[name]))
        else:
            inputs[name] = keras.Input(shape=(), name=name, dtype=tf.float32)
            encoded.append(keras.layers.Reshape((1,), name=f"{name}_column")(inputs[name]))
    hidden = keras.layers.Concatenate(name="features")(encoded)
    # Weight decay: without it the model drives the logits of separable rows (Cash trips: no tip recorded)
    # towards -infinity, scores of 1e-12 that rank as ties.
    regularizer = keras.regularizers.L2(model_settings.l2) if model_settings.l2 else None
    for index, units in enumerate(model_settings.hidden_units):
        hidden = keras.layers.Dense(units, activation="relu", kernel_regularizer=regularizer, name=f"hidden_{index}")(hidden)
        if model_settings.dropout:
            hidden = keras.layers.Dropout(model_settings.dropout, name=f"dropout_{index}")(hidden)
    probability = keras.layers.Dense(1, activation="sigmoid", kernel_regularizer=regularizer, name="probability")(hidden)
    model = keras.Model(inputs=inputs, outputs=probability)
    _compile(model, model_settings.learning_rate)
    return model


def _compile(model, learning_rate):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.AUC(name="auc"), keras.metrics.BinaryAccuracy(name="binary_accuracy")],
    )


def _files(patterns: list[str]) -> list[str]:
    return [path for pattern in patterns for path in tf.io.gfile.glob(pattern)]


def _write_canary(fn_args, run_dir, model, tf_transform_output, settings: TransformSettings, signature):
    """The trained model's own predictions on the first eval rows, to check the exported model against."""
    serialized = [record.numpy() for record in
                  tf.data.TFRecordDataset(_files(fn_args.eval_files), compression_type="GZIP").take(CANARY_ROWS)]
    if not serialized:
        return
    request_spec = serving_feature_spec(tf_transform_output.raw_feature_spec(), settings)
    transformed = model.tft_layer(tf.io.parse_example(tf.constant(serialized), request_spec))
    probabilities = model.predict({name: transformed[name] for name in model.input_names}, verbose=0)[:, 0]
    rows = []
    for example_bytes, probability in zip(serialized, probabilities):
        example = tf.train.Example.FromString(example_bytes)
        features = {name: values[0] for name, value in example.features.feature.items()
                    if (values := feature_values(value))}
        rows.append({"features": features, "probability": float(probability)})
    with tf.io.gfile.GFile(os.path.join(run_dir, CANARY_FILE), "w") as handle:
        json.dump({"signature": signature, "rows": rows}, handle, indent=1)


def _weights_fingerprint(model) -> str:
    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(weights.tobytes())
    return digest.hexdigest()


def _fit(model, train, evaluation, steps, fn_args, settings: TrainerSettings, callbacks=()):
    """`steps` as training.epochs epochs, each ending with the loss on the eval split; with early stopping,
    training stops once that loss has not fallen for `early_stopping_patience` epochs, and the weights of
    the epoch with the lowest loss are kept."""
    epochs = settings.training.epochs
    patience = settings.training.early_stopping_patience
    callbacks = list(callbacks)
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True))
    return model.fit(train, epochs=epochs, steps_per_epoch=steps // epochs, validation_data=evaluation,
                     validation_steps=fn_args.eval_steps, callbacks=callbacks, verbose=0).history


def _trained(model, settings: TrainerSettings, use_min_diff: bool):
    """What is compiled and fitted: the model, or the model inside MinDiffModel (which updates its weights)."""
    return min_diff.wrap(model, settings.remediation) if use_min_diff else model


def _fine_tune(fn_args, settings: TrainerSettings, train, evaluation, use_min_diff: bool):
    """Warm start: the blessed model's weights, frozen layers first, then optionally all layers."""
    fine_tune = settings.fine_tune
    model = keras.models.load_model(fn_args.base_model, compile=False)
    start = _weights_fingerprint(model)
    names = {layer.name for layer in model.layers}
    missing = sorted(set(fine_tune.frozen_layers) - names)
    if missing:
        raise ValueError(f"retraining.fine_tune.frozen_layers: no layer named {', '.join(missing)} "
                         f"in the blessed model (layers: {', '.join(sorted(names))})")
    phases = [(fine_tune.frozen_layers, fine_tune.train_steps)]
    if fine_tune.unfrozen_steps:
        phases.append(([], fine_tune.unfrozen_steps))
    history = {}
    fitted = _trained(model, settings, use_min_diff)
    for frozen, steps in phases:
        for layer in model.layers:
            layer.trainable = layer.name not in frozen
        _compile(fitted, fine_tune.learning_rate)
        for key, values in _fit(fitted, train, evaluation, steps, fn_args, settings).items():
            history.setdefault(key, []).extend(values)
    warm_start = {"base_model": fn_args.base_model, "base_weights_sha256": start,
                  "frozen_layers": fine_tune.frozen_layers, "phases": [steps for _, steps in phases]}
    return model, history, warm_start


def trainer_settings(custom_config: dict) -> TrainerSettings:
    """The Trainer's settings, without the keys TFX's Vertex Trainer reads from the same custom_config."""
    return TrainerSettings.model_validate(
        {key: value for key, value in custom_config.items() if not key.startswith(VERTEX_TRAINER_KEY_PREFIX)})


def run_fn(fn_args: tfx.components.FnArgs):
    """Full training (a new model on the window) or fine-tuning (settings mode FINE_TUNE).

    custom_config is PipelineConfig.trainer_settings(mode) (TrainerSettings)."""
    settings = trainer_settings(fn_args.custom_config)
    strategy = distribution.distribution_strategy(settings.training)   # first: before TensorFlow runs an op
    distribution.check_batch_size(strategy, settings.training)
    with distribution.output_dirs(strategy, fn_args.model_run_dir, fn_args.serving_model_dir) as (run_dir, export_dir):
        _train_and_export(fn_args, settings, strategy, run_dir, export_dir)


def uses_min_diff(hyperparameters, settings: TrainerSettings) -> bool:
    """The retraining decision's training options (fn_args.hyperparameters) say whether this run trains with MinDiff."""
    wanted = bool((hyperparameters or {}).get("min_diff"))
    if wanted and settings.remediation is None:
        raise ValueError("the retraining decision asks for MinDiff, but fairness.remediation is not configured")
    return wanted


def _train_and_export(fn_args, settings: TrainerSettings, strategy, run_dir: str, export_dir: str):
    transform = settings.transform
    keras.utils.set_random_seed(settings.training.seed)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    tft_layer = tf_transform_output.transform_features_layer()
    use_min_diff = uses_min_diff(fn_args.hyperparameters, settings)
    if use_min_diff:
        _check_groups(fn_args, tf_transform_output, tft_layer, settings)
    train = _dataset(strategy, fn_args, fn_args.train_files, tf_transform_output, tft_layer, settings, shuffle=True,
                     remediation=settings.remediation if use_min_diff else None)
    evaluation = _dataset(strategy, fn_args, fn_args.eval_files, tf_transform_output, tft_layer, settings,
                          shuffle=False)

    with strategy.scope():   # the model's variables are the strategy's (mirrored on each replica)
        if settings.mode == FINE_TUNE:
            model, history, warm_start = _fine_tune(fn_args, settings, train, evaluation, use_min_diff)
            with tf.io.gfile.GFile(os.path.join(run_dir, WARM_START_FILE), "w") as handle:
                json.dump(warm_start, handle, indent=1)
        else:
            model = build_model(transform, tf_transform_output, settings.model)
            fitted = _trained(model, settings, use_min_diff)
            if use_min_diff:
                _compile(fitted, settings.model.learning_rate)
            history = _fit(fitted, train, evaluation, fn_args.train_steps, fn_args, settings,
                           [keras.callbacks.TensorBoard(log_dir=run_dir, update_freq="epoch")])
    with tf.io.gfile.GFile(os.path.join(run_dir, HISTORY_FILE), "w") as handle:
        json.dump({key: [float(v) for v in values] for key, values in history.items()}, handle)

    # `model` is the plain Keras model (with MinDiff, MinDiffModel.original_model): it alone is exported
    model.tft_layer = tft_layer  # tracked, so the transform graph is saved inside the model
    signatures = export.signatures(model, tf_transform_output, transform, settings.decision_threshold)
    model.save(export_dir, save_format="tf", signatures=signatures, options=export.save_options(model))
    raw_spec = tf_transform_output.raw_feature_spec()
    warmup_examples = export.serving_examples(
        _files(fn_args.train_files), settings.warmup_rows, serving_feature_spec(raw_spec, transform))
    export.write_warmup(export_dir, warmup_examples, raw_spec, transform, settings.model_name)
    _write_canary(fn_args, run_dir, model, tf_transform_output, transform, "serving_default")
