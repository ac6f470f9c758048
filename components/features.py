"""Raw features as the transform, the trainer and serving see them: names, request specs, tf.Example values."""
import tensorflow as tf

from components.settings import TransformSettings

CATEGORICAL_TREATMENTS = ("bucketize", "identity", "vocabulary")


def transformed_name(feature_name: str) -> str:
    return f"{feature_name}_xf"


def serving_feature_spec(raw_feature_spec: dict, settings: TransformSettings) -> dict:
    """The raw feature spec of a serving request: the label's source column is never sent."""
    dropped = set(settings.label.source_columns) - set(settings.feature_names)
    return {name: spec for name, spec in raw_feature_spec.items() if name not in dropped}


def feature_values(feature) -> list:
    """The values of one tf.train.Feature (None or empty: no values), strings decoded."""
    kind = feature.WhichOneof("kind") if feature is not None else None
    if kind is None:
        return []
    values = list(getattr(feature, kind).value)
    return [value.decode("utf-8", "replace") for value in values] if kind == "bytes_list" else values


def as_dense(tensor, fill_value=None):
    """A rank-1 tensor with one value per example; missing values (sparse entries) take fill_value."""
    if fill_value is None:
        fill_value = "" if tensor.dtype == tf.string else 0
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]),
            default_value=tf.constant(fill_value, dtype=tensor.dtype),
        )
    return tf.reshape(tensor, [-1])


def example_from_csv_row(row: dict, feature_spec: dict) -> tf.train.Example:
    """A tf.Example as ExampleGen makes it from one CSV row: empty cells are missing values."""
    example = tf.train.Example()
    for name, spec in feature_spec.items():
        text = row.get(name) or ""
        if text == "":
            continue
        feature = example.features.feature[name]
        try:
            if spec.dtype == tf.int64:
                feature.int64_list.value.append(int(text))
            elif spec.dtype == tf.float32:
                feature.float_list.value.append(float(text))
            else:
                feature.bytes_list.value.append(text.encode())
        except ValueError:
            raise ValueError(f"column '{name}': expected {spec.dtype.name}, got {text!r}") from None
    return example
