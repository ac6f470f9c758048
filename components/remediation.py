"""fairness.remediation at run time: whether a run's candidate trains with MinDiff, and which of the span's
rejected candidates the escalation (fine-tune -> full retrain -> skip) still counts.

Light (no TFX, no TensorFlow): the retraining policy and the run summary both decide with it.
"""
from __future__ import annotations

from components.contracts import FINE_TUNE, FULL_RETRAIN, SKIP

ALWAYS, ON_GAP_FAILURE = "always", "on_gap_failure"


def gap_failures(candidate: dict) -> list[str]:
    """A rejected candidate's failed gap gates, in words (CandidateVerdict's `gaps`)."""
    return [gap for rejection in candidate["rejections"] for gap in rejection.get("gaps", [])]


def with_min_diff(when: str | None, rejected: list[dict]) -> tuple[bool, list[str]]:
    """MinDiff for this run, and why: `always`, or `on_gap_failure` once a candidate of the span failed a gap gate.
    `rejected`: the span's rejected candidates under the same settings (retrain_policy.rejected_on), oldest first."""
    if when == ALWAYS:
        return True, ["fairness.remediation.when is 'always': training with MinDiff"]
    failed = [candidate for candidate in rejected if gap_failures(candidate)]
    if when == ON_GAP_FAILURE and failed:
        last = failed[-1]
        return True, [f"run {last['run_id']} ({last['mode']}) failed a gap gate ({'; '.join(gap_failures(last))}): "
                      f"retraining with MinDiff (fairness.remediation)"]
    return False, []


def counted_for_escalation(rejected: list[dict], min_diff: bool) -> list[dict]:
    """MinDiff switched on by a gap failure is a new attempt in the same mode: a candidate trained without it is not
    counted when its gap failure is what MinDiff now answers. Every other rejection counts, so remediation never
    adds a run beyond one MinDiff attempt per mode."""
    return [candidate for candidate in rejected
            if candidate.get("min_diff", False) == min_diff or not gap_failures(candidate)]


def next_run(rejected: list[dict], when: str | None) -> tuple[str, bool]:
    """The mode and MinDiff of the next run on a span whose candidates `rejected` (the last one this run's) were all
    rejected: what RetrainPolicy will decide, as the summary tells it. Modes are contracts' FINE_TUNE etc."""
    min_diff, _ = with_min_diff(when, rejected)
    modes = {candidate["mode"] for candidate in counted_for_escalation(rejected, min_diff)}
    if FULL_RETRAIN in modes:
        return SKIP, False
    if FINE_TUNE in modes:
        return FULL_RETRAIN, min_diff
    return rejected[-1]["mode"], min_diff
