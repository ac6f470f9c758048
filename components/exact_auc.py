"""ExactAUC: a TFMA metric giving the exact (rank-based) ROC AUC, as sklearn's roc_auc_score does.

TFMA's own AUC bins predictions into 10,000 evenly spaced thresholds on [0, 1]. A model whose
scores saturate (many below 1e-4, as a confident model's are on the Cash trips of taxi) has them
all in its lowest bin, ranked as ties: the same rows gave 0.918 for a fine-tuned model and 0.946 for
its baseline where the exact AUCs were 0.9522 and 0.9527, and the no-regression gate blocked a
model as good as the one serving. This metric counts the label weight at each distinct score
instead (memory grows with the number of distinct scores, at most the number of eval examples)
and computes the Mann-Whitney statistic, ties counted as half.
"""
from __future__ import annotations

from typing import Dict, Iterable, Optional

import apache_beam as beam
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

from components.evaluation import EXACT_AUC


class ExactAUC(metric_types.Metric):
    """Exact ROC AUC of a binary classifier's score (label weight per distinct score)."""

    def __init__(self, name: str = EXACT_AUC):
        super().__init__(metric_util.merge_per_key_computations(_exact_auc), name=name)


metric_types.register_metric(ExactAUC)


def _exact_auc(name: str = EXACT_AUC, eval_config: Optional[config_pb2.EvalConfig] = None, model_name: str = "",
               output_name: str = "", sub_key: Optional[metric_types.SubKey] = None,
               aggregation_type: Optional[metric_types.AggregationType] = None,
               class_weights: Optional[Dict[int, float]] = None,
               example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
                                 example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_ExactAUCCombiner(key, eval_config, aggregation_type, class_weights, example_weighted))]


def auc_from_weights(weights: dict[float, list[float]]) -> float:
    """Mann-Whitney AUC from {score: [positive weight, negative weight]}; NaN without both classes."""
    positives = sum(pair[0] for pair in weights.values())
    negatives = sum(pair[1] for pair in weights.values())
    if positives <= 0 or negatives <= 0:
        return float("nan")
    below, concordant = 0.0, 0.0
    for score in sorted(weights):
        positive, negative = weights[score]
        concordant += positive * (below + 0.5 * negative)
        below += negative
    return concordant / (positives * negatives)


class _ExactAUCCombiner(beam.CombineFn):

    def __init__(self, key, eval_config, aggregation_type, class_weights, example_weighted):
        self._key = key
        self._eval_config = eval_config
        self._aggregation_type = aggregation_type
        self._class_weights = class_weights
        self._example_weighted = example_weighted

    def create_accumulator(self) -> dict:
        return {}   # score -> [positive weight, negative weight]; a plain dict, as Beam pickles accumulators

    def add_input(self, accumulator: dict, element: metric_types.StandardMetricInputs) -> dict:
        for label, prediction, weight in metric_util.to_label_prediction_example_weight(
                element, eval_config=self._eval_config, model_name=self._key.model_name,
                output_name=self._key.output_name, aggregation_type=self._aggregation_type,
                class_weights=self._class_weights, example_weighted=self._example_weighted):
            label, weight = float(label), float(weight)
            pair = accumulator.setdefault(float(prediction), [0.0, 0.0])
            pair[0] += weight * label
            pair[1] += weight * (1.0 - label)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[dict]) -> dict:
        accumulators = iter(accumulators)
        result = next(accumulators)
        for accumulator in accumulators:
            for score, (positive, negative) in accumulator.items():
                pair = result.setdefault(score, [0.0, 0.0])
                pair[0] += positive
                pair[1] += negative
        return result

    def extract_output(self, accumulator: dict) -> Dict[metric_types.MetricKey, float]:
        return {self._key: auc_from_weights(accumulator)}
