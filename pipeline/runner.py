"""Runs the pipeline with TFX's LocalDagRunner: one line per component on stdout, logs to a file."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from tfx import v1 as tfx
from tfx.dsl.compiler import compiler, constants
from tfx.orchestration.portable import runtime_parameter_utils

from components.contracts import MODEL_ID_KEY
from pipeline import assembly, metadata_store, spans
from pipeline.config import PipelineConfig


@dataclass
class ComponentTiming:
    name: str
    seconds: float = 0.0
    outcome: str = "running"   # running | done | cached | skipped | failed


class Progress(logging.Handler):
    """Reads the runner's own log records to print one line when a component starts and ends."""

    def __init__(self, echo):
        super().__init__(level=logging.INFO)
        self.echo = echo
        self.timings: list[ComponentTiming] = []
        self._started = 0.0

    def emit(self, record):
        message, args = record.msg, record.args
        if not isinstance(message, str):   # Beam logs exceptions themselves as messages
            return
        if message == "Component %s is running.":
            self.timings.append(ComponentTiming(args[0]))
            self._started = time.monotonic()
            self.echo(f"  {args[0]:<22} started")
        elif not self.timings:
            return
        elif message == "A cached execution %d is used.":
            self.timings[-1].outcome = "cached"
        elif message == "Skipping execution for %s":
            self.timings[-1].outcome = "skipped"
        elif message.startswith("[%s] Input resolution error"):  # TFX records it and goes on: we do not
            self.timings[-1].outcome = "failed"
        elif message == "Component %s is finished.":
            current = self.timings[-1]
            current.seconds = time.monotonic() - self._started
            current.outcome = "done" if current.outcome == "running" else current.outcome
            self.echo(f"  {current.name:<22} {current.outcome:<8} {current.seconds:6.1f} s")

    def mark_failure(self):
        if self.timings and self.timings[-1].outcome == "running":  # the component that raised
            current = self.timings[-1]
            current.seconds = time.monotonic() - self._started
            current.outcome = "failed"
            self.echo(f"  {current.name:<22} FAILED   {current.seconds:6.1f} s")


def _run_with_id(tfx_pipeline, run_id: str) -> None:
    """LocalDagRunner with our own run id, so the run's context in ML Metadata can be found again."""
    ir = compiler.Compiler().compile(tfx_pipeline)
    runtime_parameter_utils.substitute_runtime_parameter(ir, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
    tfx.orchestration.LocalDagRunner().run_with_ir(ir)


def _warn_of_copied_rows(config: PipelineConfig, span: int, echo) -> None:
    """A warning, not a gate: a span may repeat some trips by chance, but a model compared on rows the served
    model learned from is compared unfairly."""
    store = metadata_store.open_store(config)
    pushes = metadata_store.pushed_models(store, config.pipeline.name)
    if not pushes:
        return
    trained_on = metadata_store.model_lineage(config, metadata_store.custom_int(pushes[-1], MODEL_ID_KEY))["spans"]
    copied = spans.copied_rows(config, span, trained_on)
    if copied:
        echo(f"  warning: {copied} rows of span {span} are copies of rows of the spans the served model was trained on "
             f"(spans {', '.join(map(str, trained_on))}): its evaluation and drift checks see them again")


def run_pipeline(config: PipelineConfig, run_id: str, echo) -> list[ComponentTiming]:
    """Backfills the spans of the training window that the store lacks, then runs the pipeline.

    Raises RefusedSpan before ExampleGen reads a span it would fail on; otherwise whatever a component
    raised, after printing which one failed.
    """
    progress = Progress(echo)
    logging.getLogger().addHandler(progress)
    try:
        for span in metadata_store.spans_to_backfill(config):
            echo(f"  backfilling span {span} of the training window")
            spans.check_span(config, span)
            _run_with_id(assembly.ingest_pipeline(config, span), f"{run_id}-backfill-{span}")
        newest = spans.newest_complete_span(config)
        spans.check_span(config, newest)
        _warn_of_copied_rows(config, newest, echo)
        _run_with_id(assembly.create_pipeline(config, newest, metadata_store.connection_config(config)), run_id)
    except BaseException:
        progress.mark_failure()
        raise
    finally:
        logging.getLogger().removeHandler(progress)
    return progress.timings
