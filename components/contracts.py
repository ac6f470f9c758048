"""Names the retraining loop's components, the summary and the tests share: artifact types, custom
property keys and values. A leaf module (imports no TensorFlow), as TFX's standard_component_specs is.
"""
from tfx import types

# RetrainPolicy's decision, read by the Cond blocks of the pipeline, CandidateVerdict and the summary.
MODE_KEY = "mode"                 # one of SKIP, FINE_TUNE, FULL_RETRAIN
SKIP, FINE_TUNE, FULL_RETRAIN = "skip", "fine_tune", "full_retrain"
REASONS_KEY = "reasons"           # JSON list of sentences
SPAN_KEY = "span"                 # the newest span of the run
SERVING_KEY = "serving"           # JSON: the model that serves (id, spans) and the spans it lags, when known
REJECTED_KEY = "rejected"         # JSON list of this span's rejected candidates ({"run_id", "mode", "rejections"})
SETTINGS_DIGEST_KEY = "settings_digest"   # of the settings a candidate and its gates depend on (also on verdicts)

# ServingValidator's InfraBlessing: why a model was refused.
SERVING_REASON_KEY = "reason"

# CandidateVerdict: what became of a run's candidate.
PUSHED_KEY = "pushed"             # as TFX's Pusher sets it on the PushedModel
REJECTIONS_KEY = "rejections"     # JSON list of {"gate": MODEL_GATE | SERVING_GATE, "reasons": [...]}
RUN_KEY = "run_id"
MODEL_GATE, SERVING_GATE = "model", "serving"


class RetrainDecision(types.Artifact):
    """How this run retrains (MODE_KEY) and why (REASONS_KEY)."""

    TYPE_NAME = "RetrainDecision"


class Verdict(types.Artifact):
    """A candidate's fate: its span and mode, whether it was pushed, which gates rejected it and why."""

    TYPE_NAME = "CandidateVerdict"
