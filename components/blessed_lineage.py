"""Resolver strategy: the latest blessed model and, from ML Metadata lineage, what it was made from.

The drift check and the retraining policy compare the newest span with the data the served
model actually learned from, so that data is found by following events in ML Metadata
(blessing → model → Trainer execution → its inputs), never from a path.
"""
from __future__ import annotations

from tfx import types
from tfx.dsl.components.common import resolver
from tfx.types import artifact_utils

from components.contracts import BLESSED_KEY, CURRENT_MODEL_ID_KEY, MODEL_ID_KEY, PUSHED_KEY, ROLLED_BACK_KEY, SPAN_KEY
from components.lineage import inputs_of, outputs_of_consumers, producer

# Input (and output) keys of the resolver node.
MODEL, BLESSING, INFRA_BLESSING, PUSHED_MODELS, TRANSFORM_GRAPH, EXAMPLES, ANALYSED_EXAMPLES, STATISTICS, VERDICTS = (
    "model", "model_blessing", "infra_blessing", "pushed_models", "transform_graph", "examples", "analysed_examples",
    "statistics", "verdicts")


def _span(artifact: types.Artifact) -> int:
    return artifact.get_int_custom_property(SPAN_KEY) if artifact.has_custom_property(SPAN_KEY) else -1


class BlessedModelLineage(resolver.ResolverStrategy):
    """Latest blessed model (blessed by the Evaluator and by serving validation, pushed, and not rolled back),
    its transform graph, training examples, the examples its graph was analysed on, and the
    statistics of the newest span it was trained on; empty lists before any model is blessed. And the
    verdicts of the candidates rejected since that model (all rejected ones before any is blessed)."""

    def resolve_artifacts(self, store, input_dict):
        def blessed(key):
            return {b.get_int_custom_property(CURRENT_MODEL_ID_KEY) for b in input_dict[key]
                    if b.get_int_custom_property(BLESSED_KEY) == 1}

        # Pushed too: a run killed between the blessings and the push left a blessed model nobody serves; the
        # next run must not take it as the baseline and skip, but train again (cache hits) and push it.
        pushed_ids = {p.get_int_custom_property(MODEL_ID_KEY) for p in input_dict[PUSHED_MODELS]
                      if p.get_int_custom_property(PUSHED_KEY) == 1}
        blessed_ids = blessed(BLESSING) & blessed(INFRA_BLESSING) & pushed_ids
        models = sorted((m for m in input_dict[MODEL] if m.id in blessed_ids
                         and not (m.has_custom_property(ROLLED_BACK_KEY) and m.get_int_custom_property(ROLLED_BACK_KEY))),
                        key=lambda m: m.id)
        result = {key: [] for key in input_dict}
        since = models[-1].id if models else 0
        result[VERDICTS] = [v for v in input_dict.get(VERDICTS, [])
                            if v.id > since and not v.get_int_custom_property(PUSHED_KEY)]
        if not models:
            return result
        model = models[-1]
        trainer_inputs = inputs_of(store, producer(store, model.id))
        graphs = [a for a in input_dict[TRANSFORM_GRAPH] if a.id in trainer_inputs]
        examples = [a for a in input_dict[EXAMPLES] if a.id in trainer_inputs]
        analysed_ids = set()
        for graph in graphs:
            analysed_ids |= inputs_of(store, producer(store, graph.id))
        newest = max(examples, key=_span, default=None)
        statistics_ids = outputs_of_consumers(store, {newest.id}) if newest else set()
        result.update({
            MODEL: [model],
            BLESSING: [b for b in input_dict[BLESSING] if b.get_int_custom_property(CURRENT_MODEL_ID_KEY) == model.id][-1:],
            INFRA_BLESSING: [b for b in input_dict[INFRA_BLESSING]
                             if b.get_int_custom_property(CURRENT_MODEL_ID_KEY) == model.id][-1:],
            TRANSFORM_GRAPH: graphs,
            EXAMPLES: examples,
            ANALYSED_EXAMPLES: [a for a in input_dict[ANALYSED_EXAMPLES] if a.id in analysed_ids],
            # StatisticsGen's output (Transform's pre/post-transform statistics have no splits).
            STATISTICS: [s for s in input_dict[STATISTICS] if s.id in statistics_ids
                         and "train" in artifact_utils.decode_split_names(s.split_names)][-1:],
        })
        return result


def spans(artifacts: list[types.Artifact]) -> list[int]:
    return sorted({_span(a) for a in artifacts})
