"""The pipeline's own artifact types (their names are in contracts, for readers without TFX)."""
from tfx import types
from tfx.types import artifact_utils

from components import contracts


class DataGateResult(types.Artifact):
    """Whether a span may go on to Transform and Trainer (BLESSED_KEY), and why not (PROBLEMS_FILE)."""

    TYPE_NAME = contracts.DATA_GATE_RESULT


class DriftReport(types.Artifact):
    """Per-feature distances of the newest span from the blessed model's training data (DRIFT_REPORT_FILE)."""

    TYPE_NAME = contracts.DRIFT_REPORT


class RetrainDecision(types.Artifact):
    """How this run retrains (MODE_KEY) and why (REASONS_KEY)."""

    TYPE_NAME = contracts.RETRAIN_DECISION


class Verdict(types.Artifact):
    """A candidate's fate: its span and mode, whether it was pushed, which gates rejected it and why."""

    TYPE_NAME = contracts.VERDICT


def single(artifacts: dict, *keys: str) -> list[types.Artifact]:
    """The one artifact under each key of an executor's input or output dict, in the order of `keys`."""
    return [artifact_utils.get_single_instance(artifacts[key]) for key in keys]
