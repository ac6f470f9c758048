"""TFX's Evaluator, with fairness gates that hold only on slices large enough to judge.

TFMA gates every slice a threshold's slicing matches, however few examples it has; and its own
`options.min_slice_size` hides a small slice's metrics rather than reporting them. This executor
reads that option as the gating floor instead: it counts the eval split's examples per slice, narrows
every per-slice and cross-slice threshold written for a slicing (feature keys) to the slices, named by
value, with at least that many examples, and clears the option. The standard executor then runs
TFMA, so the blessing and the ValidationResult carry exactly the gates that applied (less one TFMA
0.47 bug, undone below: every cross-slice threshold is reported missing). Afterwards the per-slice
report (components/fairness_report.py) is written into the evaluation.
"""
from __future__ import annotations

import collections
import itertools
import json
import os

import tensorflow as tf
import tensorflow_model_analysis as tfma
from tfx import v1 as tfx
from tensorflow_model_analysis.slicer import slicer_lib as slicer
from tfx.components.evaluator import constants as evaluator_constants
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.fairness_report import report_rows, write_report
from components.features import feature_values


def count_slices(examples, splits: list[str], slicings: list[tuple[str, ...]]) -> dict[tuple, collections.Counter]:
    """Examples per slice value, as TFMA slices them: one slice per value (per value combination in a cross)."""
    counts = {keys: collections.Counter() for keys in slicings}
    files = [path for artifact in examples for split in splits
             for path in tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([artifact], split), "*"))]
    for path in files:
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            features = tf.train.Example.FromString(record.numpy()).features.feature
            for keys in slicings:
                for values in itertools.product(*(feature_values(features.get(key)) for key in keys)):
                    counts[keys][values] += 1
    return counts


def _value_spec(keys, values) -> tfma.SlicingSpec:
    return tfma.SlicingSpec(feature_values={key: str(value) for key, value in zip(keys, values)})


def _is_slicing_template(spec: tfma.SlicingSpec) -> bool:
    return bool(spec.feature_keys) and not spec.feature_values


def narrow_gates(eval_config: tfma.EvalConfig, large: dict[tuple, list]) -> None:
    """Rewrites every threshold on a slicing into thresholds on its large slices, named by value."""
    cross_specs = []
    for metric in (metric for spec in eval_config.metrics_specs for metric in spec.metrics):
        kept = []
        for threshold in metric.per_slice_thresholds:
            specs = []
            for spec in threshold.slicing_specs:
                keys = tuple(spec.feature_keys)
                specs += [_value_spec(keys, values) for values in large[keys]] if _is_slicing_template(spec) else [spec]
            if specs:
                kept.append(tfma.PerSliceMetricThreshold(slicing_specs=specs, threshold=threshold.threshold))
        del metric.per_slice_thresholds[:]
        metric.per_slice_thresholds.extend(kept)
        kept = []
        for threshold in metric.cross_slice_thresholds:
            specs = []
            for cross in threshold.cross_slicing_specs:
                if not _is_slicing_template(cross.baseline_spec):
                    specs.append(cross)
                    continue
                keys = tuple(cross.baseline_spec.feature_keys)
                slices = large[keys]
                specs += [tfma.CrossSlicingSpec(baseline_spec=_value_spec(keys, first),
                                                slicing_specs=[_value_spec(keys, other) for other in slices[index + 1:]])
                          for index, first in enumerate(slices[:-1])]
            if specs:
                kept.append(tfma.CrossSliceMetricThreshold(cross_slicing_specs=specs, threshold=threshold.threshold))
                cross_specs += [spec for spec in specs if spec not in cross_specs]
        del metric.cross_slice_thresholds[:]
        metric.cross_slice_thresholds.extend(kept)
    templates = [spec for spec in eval_config.cross_slicing_specs if _is_slicing_template(spec.baseline_spec)]
    for spec in templates:
        eval_config.cross_slicing_specs.remove(spec)
    eval_config.cross_slicing_specs.extend(cross_specs)


def gated_slicings(eval_config: tfma.EvalConfig) -> list[tuple[str, ...]]:
    return list(dict.fromkeys(tuple(spec.feature_keys) for spec in eval_config.slicing_specs if spec.feature_keys))


class Executor(evaluator_executor.Executor):
    """Counts slices, narrows the gates to large slices, runs TFX's Evaluator, writes the fairness report."""

    def Do(self, input_dict, output_dict, exec_properties):
        eval_config = tfma.EvalConfig()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.EVAL_CONFIG_KEY], eval_config)
        min_size = eval_config.options.min_slice_size.value
        splits = json.loads(exec_properties.get(standard_component_specs.EXAMPLE_SPLITS_KEY) or "null") or ["eval"]
        slicings = gated_slicings(eval_config)
        counts = count_slices(input_dict[standard_component_specs.EXAMPLES_KEY], splits, slicings)
        absent = [keys for keys in slicings if not counts[keys]]
        if absent:
            raise ValueError(f"fairness.slices: no example of the {', '.join(splits)} split has "
                             f"{' and '.join(' x '.join(keys) for keys in absent)}; expected raw feature names")
        large = {keys: sorted((values for values, n in counts[keys].items() if n >= min_size), key=str) for keys in slicings}
        narrow_gates(eval_config, large)
        eval_config.options.ClearField("min_slice_size")
        properties = dict(exec_properties)
        properties[standard_component_specs.EVAL_CONFIG_KEY] = proto_utils.proto_to_json(eval_config)
        super().Do(input_dict, output_dict, properties)

        evaluation_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY])
        corrected = found_cross_slices_are_not_missing(evaluation_uri)
        if corrected is not None:
            bless(artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY]),
                  corrected.validation_ok)
        rows = report_rows(evaluation_uri, counts, min_size)
        write_report(evaluation_uri, rows, eval_config, min_size)


def found_cross_slices_are_not_missing(evaluation_uri: str):
    """Undoes TFMA 0.47's report of every cross-slice threshold as missing; the corrected result, or None.

    TFMA looks the slicings it validated up by their single-slice spec only, so a cross slicing is never
    found and every gap gate would block every model. A cross slicing is missing only if no cross slice
    TFMA computed matches it; the ValidationResult is rewritten with the ones that really are.
    """
    result = tfma.load_validation_result(evaluation_uri)
    if not result.missing_cross_slices:
        return None
    computed = [slicer.deserialize_cross_slice_key(metrics.cross_slice_key)
                for metrics in tfma.load_metrics(evaluation_uri) if metrics.HasField("cross_slice_key")]
    missing = [spec for spec in result.missing_cross_slices
               if not any(slicer.is_cross_slice_applicable(key, spec) for key in computed)]
    if len(missing) == len(result.missing_cross_slices):
        return None
    del result.missing_cross_slices[:]
    result.missing_cross_slices.extend(missing)
    result.validation_ok = not (result.metric_validations_per_slice or result.missing_slices
                                or result.missing_cross_slices or result.missing_thresholds)
    with tf.io.TFRecordWriter(os.path.join(evaluation_uri, evaluator_constants.VALIDATIONS_TFRECORDS_FILE_NAME)) as writer:
        writer.write(result.SerializeToString())
    return result


def bless(blessing, blessed: bool) -> None:
    """The blessing as TFX's Evaluator writes it: a BLESSED or NOT_BLESSED file and the `blessed` property."""
    for name in (evaluator_constants.BLESSED_FILE_NAME, evaluator_constants.NOT_BLESSED_FILE_NAME):
        if tf.io.gfile.exists(os.path.join(blessing.uri, name)):
            tf.io.gfile.remove(os.path.join(blessing.uri, name))
    name = evaluator_constants.BLESSED_FILE_NAME if blessed else evaluator_constants.NOT_BLESSED_FILE_NAME
    with tf.io.gfile.GFile(os.path.join(blessing.uri, name), "w"):
        pass
    blessing.set_int_custom_property(
        evaluator_constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        evaluator_constants.BLESSED_VALUE if blessed else evaluator_constants.NOT_BLESSED_VALUE)


class FairnessEvaluator(tfx.components.Evaluator):
    """tfx.components.Evaluator, with its gates narrowed to slices of at least options.min_slice_size."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)

