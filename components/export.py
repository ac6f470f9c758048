"""The exported SavedModel as TF Serving meets it: signatures, the TPU function alias, warmup requests.

serving_default takes serialized tf.Examples (gRPC Predict, TFMA); serving_raw takes one named tensor
per raw feature, so TF Serving's REST row format `{"instances": [{...raw row...}]}` works; both run
the saved tf.Transform graph inside. The Keras computation on transformed tensors is one
tf.function, saved under the alias the Cloud TPU Inference Converter is pointed at: on a TPU it
runs on the chip while parsing and the transform stay on the host.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from components.contracts import TPU_FUNCTION_ALIAS
from components.features import feature_values, serving_feature_spec
from components.settings import Feature, TransformSettings

RAW_SIGNATURE = "serving_raw"
TRANSFORM_SIGNATURE = "transform_features"
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
WARMUP_BATCH_SIZES = (1, None)  # one row, then every warmup row in one request


def missing_value(feature: Feature, dtype: tf.dtypes.DType):
    """What the transform puts where the feature is missing: a raw request sends this for 'no value'."""
    if feature.fill_value is not None:
        return feature.fill_value
    return "" if dtype == tf.string else 0


def raw_input_specs(raw_spec: dict, settings: TransformSettings) -> dict[str, tf.TensorSpec]:
    return {name: tf.TensorSpec([None], raw_spec[name].dtype, name=name) for name in settings.feature_names}


def _as_parsed(tensor, spec):
    """A dense [batch] tensor shaped as tf.io.parse_example would give it for `spec`."""
    if isinstance(spec, tf.io.VarLenFeature):
        rows = tf.shape(tensor, out_type=tf.int64)[0]
        indices = tf.stack([tf.range(rows), tf.zeros([rows], tf.int64)], axis=1)
        return tf.SparseTensor(indices, tensor, tf.stack([rows, tf.constant(1, tf.int64)]))
    return tf.reshape(tensor, [-1] + list(spec.shape))


def signatures(model, tf_transform_output, settings: TransformSettings, decision_threshold: float) -> dict:
    """serving_default, serving_raw and transform_features; all call model.tpu_core for the model."""
    raw_spec = tf_transform_output.raw_feature_spec()
    request_spec = serving_feature_spec(raw_spec, settings)
    input_names = list(model.input_names)

    @tf.function(input_signature=[{name: tf.TensorSpec([None], spec.dtype, name=name)
                                   for name, spec in zip(input_names, model.inputs)}])
    def tpu_core(transformed):
        return model(transformed)

    model.tpu_core = tpu_core  # tracked, so the alias below names a function of the SavedModel

    def predict(raw_features):
        transformed = model.tft_layer(raw_features)
        probabilities = model.tpu_core({name: transformed[name] for name in input_names})
        return {"probabilities": probabilities, "classes": tf.cast(probabilities > decision_threshold, tf.int64)}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serving_default(examples):
        return predict(tf.io.parse_example(examples, request_spec))

    specs = raw_input_specs(raw_spec, settings)

    @tf.function(input_signature=list(specs.values()))
    def serving_raw(*tensors):
        return predict({name: _as_parsed(tensor, raw_spec[name]) for name, tensor in zip(specs, tensors)})

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features(examples):
        return model.tft_layer(tf.io.parse_example(examples, raw_spec))

    return {
        "serving_default": serving_default.get_concrete_function(),
        RAW_SIGNATURE: serving_raw.get_concrete_function(),
        TRANSFORM_SIGNATURE: transform_features.get_concrete_function(),
    }


def save_options(model) -> tf.saved_model.SaveOptions:
    """The alias names tpu_core's one concrete function (Keras' save traces the tf.function again)."""
    return tf.saved_model.SaveOptions(function_aliases={TPU_FUNCTION_ALIAS: model.tpu_core.get_concrete_function()})


def raw_inputs(examples: list[tf.train.Example], raw_spec: dict, settings: TransformSettings) -> dict[str, np.ndarray]:
    """serving_raw's inputs for these examples: one array per feature, missing values filled."""
    inputs = {}
    for feature in settings.features:
        name, dtype = feature.name, raw_spec[feature.name].dtype
        column = []
        for example in examples:
            values = feature_values(example.features.feature.get(name))
            column.append(values[0] if values else missing_value(feature, dtype))
        inputs[name] = np.array(column, dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    return inputs


def predict_requests(examples: list[tf.train.Example], raw_spec: dict, settings: TransformSettings, model_name: str,
                     batch_sizes=WARMUP_BATCH_SIZES) -> list:
    """PredictRequests as a TF Serving client sends them, per batch size (None: all the examples):
    serialized examples for serving_default, then raw rows for serving_raw."""
    from tensorflow_serving.apis import predict_pb2

    requests = []
    for size in batch_sizes:
        batch = examples[:size]
        by_example = predict_pb2.PredictRequest()
        by_example.model_spec.name = model_name
        by_example.model_spec.signature_name = "serving_default"
        by_example.inputs["examples"].CopyFrom(
            tf.make_tensor_proto([example.SerializeToString() for example in batch], dtype=tf.string))
        by_row = predict_pb2.PredictRequest()
        by_row.model_spec.name = model_name
        by_row.model_spec.signature_name = RAW_SIGNATURE
        for name, values in raw_inputs(batch, raw_spec, settings).items():
            by_row.inputs[name].CopyFrom(tf.make_tensor_proto(values.tolist(), dtype=raw_spec[name].dtype))
        requests += [by_example, by_row]
    return requests


def write_warmup(saved_model_dir: str, examples: list[tf.train.Example], raw_spec: dict, settings: TransformSettings,
                 model_name: str) -> None:
    """TF Serving replays this file when it loads the version, so the first real request is fast."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in predict_requests(examples, raw_spec, settings, model_name):
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def read_warmup(saved_model_dir: str) -> list:
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(saved_model_dir, WARMUP_FILE)
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset([path])]


def serve(loaded, request) -> dict[str, np.ndarray]:
    """Run a PredictRequest through a loaded SavedModel's signature, as TF Serving's Predict does."""
    signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
    inputs = {name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()}
    return {name: value.numpy() for name, value in signature(**inputs).items()}


def serving_examples(files: list[str], rows: int, request_spec: dict) -> list[tf.train.Example]:
    """The first `rows` examples of ExampleGen's files, holding only what a serving request carries."""
    examples = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(rows):
        example = tf.train.Example.FromString(record.numpy())
        for name in list(example.features.feature):
            if name not in request_spec:
                del example.features.feature[name]
        examples.append(example)
    return examples

