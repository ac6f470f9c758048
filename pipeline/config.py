"""pipeline.yaml: the one place users change behaviour. Validated before any component starts."""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import re
import warnings
from typing import Annotated, Literal, Optional

import croniter
import pydantic
import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from components.contracts import FINE_TUNE, FULL_RETRAIN
from components.evaluation import GATED_RATES, SLICE_METRICS
from components.settings import (DriftCheckSettings, Feature, FeatureDrift, FineTuneSettings, Label, ModelSection,
                                 PositiveInt, Remediation, RetrainPolicySettings, Section, ServingSection,
                                 ServingValidatorSettings, TrainerSettings, TrainingSection, TransformSettings)

URI = re.compile(r"^[a-z][a-z0-9+.-]*://")   # gs://, s3://, hdfs://: read by TFX's file systems, not resolved
SPAN_TOKEN = re.compile(r"\{SPAN(?::\d+)?\}")  # ExampleGen's span spec, optionally zero-padded to a width
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(Exception):
    """pipeline.yaml cannot be used; the message names the file, the key, the value and what is allowed."""


class PipelineSection(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
    root: str = "outputs"
    enable_cache: bool = True
    skip_unchanged: bool = True


class SpanPolicy(Section):
    policy: Literal["latest", "last_k"] = "latest"
    k: PositiveInt = 1


class DataSection(Section):
    base: str
    span_pattern: str = "span-{SPAN:2}/*.csv"
    complete_marker: Optional[str] = "_SUCCESS"   # None: every span folder counts as complete
    spans: SpanPolicy = SpanPolicy()
    train_buckets: PositiveInt = 4
    eval_buckets: PositiveInt = 1
    schema_path: str

    @model_validator(mode="after")
    def _pattern_has_span_and_stays_in_base(self):
        if len(SPAN_TOKEN.findall(self.span_pattern)) != 1:
            raise ValueError(f"span_pattern must contain {{SPAN}} or {{SPAN:width}} once (got {self.span_pattern!r})")
        if self.span_pattern.startswith("/") or ".." in self.span_pattern.split("/"):
            raise ValueError(f"span_pattern is relative to data.base and stays inside it: no leading / and no .. "
                             f"(got {self.span_pattern!r})")
        if self.complete_marker is not None and ("/" in self.complete_marker or self.complete_marker in ("", ".", "..")):
            raise ValueError(f"complete_marker is a file name in the span's folder (got {self.complete_marker!r})")
        return self


class Gate(Section):
    """A TFMA threshold: an absolute bound, and/or no regression against the blessed baseline."""

    metric: Literal["AUC", "BinaryAccuracy", "Precision", "Recall", "Calibration"]
    lower_bound: Optional[float] = None
    upper_bound: Optional[float] = None
    max_regression: Optional[Annotated[float, Field(ge=0.0)]] = None

    @model_validator(mode="after")
    def _has_a_bound(self):
        if self.lower_bound is None and self.upper_bound is None and self.max_regression is None:
            raise ValueError(f"gate on {self.metric} needs lower_bound, upper_bound or max_regression")
        return self


class EvaluationSection(Section):
    gates: Annotated[list[Gate], Field(min_length=1)]
    decision_threshold: Fraction = 0.5
    calibration_plot: bool = False


class SliceGate(Section):
    """A floor and/or ceiling that every large-enough slice must meet."""

    metric: str          # auc, or a rate at a threshold: false_positive_rate@0.5
    lower_bound: Optional[float] = None
    upper_bound: Optional[float] = None

    @model_validator(mode="after")
    def _has_a_bound(self):
        if self.lower_bound is None and self.upper_bound is None:
            raise ValueError(f"slice gate on {self.metric} needs lower_bound or upper_bound")
        return self


class GapGate(Section):
    """The largest difference of a metric between any two large-enough slices of one slicing."""

    metric: str
    max_gap: Annotated[float, Field(gt=0.0)]
    slices: Optional[list[str]] = None   # the slicing (one entry of fairness.slices); null: every slicing


class FairnessSection(Section):
    """Slices of the eval split, their metrics, and the gates the Evaluator's blessing carries."""

    slices: list[list[str]] = []                 # each entry is a slicing: one feature, or a cross of several
    thresholds: Annotated[list[Fraction], Field(min_length=1)] = [0.5]   # decision thresholds of the rates
    min_slice_size: PositiveInt = 30             # smaller slices are reported but not gated
    slice_gates: list[SliceGate] = []
    gap_gates: list[GapGate] = []
    remediation: Optional[Remediation] = None   # null: a candidate blocked by a gate stays blocked

    @model_validator(mode="after")
    def _gates_name_known_metrics(self):
        for key, gates in (("slice_gates", self.slice_gates), ("gap_gates", self.gap_gates)):
            for gate in gates:
                name, _, threshold = gate.metric.partition("@")
                if gate.metric in SLICE_METRICS:
                    continue
                if name not in GATED_RATES or not threshold:
                    raise ValueError(f"{key}: metric {gate.metric!r} is not one of {', '.join(SLICE_METRICS)} "
                                     f"or <rate>@<threshold> with a rate among {', '.join(GATED_RATES)}")
                try:
                    value = float(threshold)
                except ValueError:
                    raise ValueError(f"{key}: metric {gate.metric!r}: {threshold!r} is not a number") from None
                if value not in self.thresholds:
                    raise ValueError(f"{key}: metric {gate.metric!r}: threshold {value} is not in "
                                     f"fairness.thresholds {self.thresholds}")
        for gate in self.gap_gates:
            if gate.slices is not None and gate.slices not in self.slices:
                raise ValueError(f"gap_gates: slices {gate.slices} is not an entry of fairness.slices {self.slices}")
        remediation = self.remediation
        if remediation is not None:
            if [remediation.slice] not in self.slices:
                raise ValueError(f"remediation.slice: {remediation.slice!r} is not a one-feature entry of "
                                 f"fairness.slices {self.slices}: the groups are brought together where they are gated")
            if remediation.when == "on_gap_failure" and not any(
                    gate.slices in (None, [remediation.slice]) for gate in self.gap_gates):
                raise ValueError(f"remediation.when: on_gap_failure, but no gap gate holds on slicing "
                                 f"[{remediation.slice}]: nothing would ever start it")
        return self


Threshold = Optional[Annotated[float, Field(gt=0.0)]]


class DriftThresholds(Section):
    """A feature drifts when any of its measures is over its threshold; null: measured and reported only.

    l_infinity applies to string features; psi to every numeric one; location and scale to numeric
    features that are not used as categories (treatment identity). See components/drift_check.py.
    """

    l_infinity: Threshold = 0.25
    psi: Threshold = 0.1
    location: Threshold = 0.15
    scale: Threshold = 0.3


class DriftSettings(Section):
    """Distance of the newest span from the newest span the blessed model was trained on, per feature."""

    quantile_buckets: Annotated[int, Field(ge=2, le=50)] = 10   # numeric features: the baseline's quantile buckets
    significance: Annotated[float, Field(ge=0.0)] = 4.0   # noise limit, in standard deviations (0: thresholds alone)
    thresholds: DriftThresholds = DriftThresholds()
    features: dict[str, DriftThresholds] = {}   # per feature: only the measures written here replace the defaults
    serving_logs: Optional[str] = None   # folder of logged serving requests (CSV) for a training/serving skew check
    skew_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.1


class RetrainingSection(Section):
    policy: Literal["drift_aware", "always_full", "never"] = "drift_aware"
    drift: DriftSettings = DriftSettings()
    full_retrain_every_n_spans: Annotated[int, Field(ge=0)] = 0   # 0: only drift or a schema change forces it
    fine_tune: FineTuneSettings = FineTuneSettings()


SECRET_NAME = re.compile(r"password|passwd|secret|token|api_?key|private_?key|credential", re.IGNORECASE)


def _no_secrets(key: str, args: list[str]) -> None:
    """Secrets never sit in pipeline.yaml (it is committed, and compiled into orchestrator specs). The error
    names the argument, never its value."""
    for index, arg in enumerate(args):
        name, _, value = arg.partition("=")
        if SECRET_NAME.search(name) and value:
            raise ValueError(f"{key}[{index}]: {name} is given a value in the file; secrets come from the workers' "
                             "environment (e.g. GOOGLE_APPLICATION_CREDENTIALS, the service account), never from "
                             "pipeline.yaml")


EnvironmentType = Literal["DOCKER", "PROCESS", "EXTERNAL", "LOOPBACK"]   # where a portable runner runs Python


class PortableRunnerSettings(Section):
    """Beam's PortableRunner: any job server (Flink's, Spark's, Beam's own local one)."""

    job_endpoint: str                          # host:port of the job server
    environment_type: EnvironmentType = "DOCKER"
    environment_config: Optional[str] = None   # e.g. the SDK container image for DOCKER


class FlinkRunnerSettings(Section):
    flink_master: str                          # host:port of the JobManager, or [local] / [auto]
    flink_version: Optional[str] = None
    parallelism: Optional[PositiveInt] = None
    environment_type: EnvironmentType = "DOCKER"
    environment_config: Optional[str] = None


class SparkRunnerSettings(Section):
    spark_master_url: str                      # spark://host:7077, or local[N]
    environment_type: EnvironmentType = "DOCKER"
    environment_config: Optional[str] = None


class DataflowRunnerSettings(Section):
    project: str
    region: str
    temp_location: Annotated[str, Field(pattern=r"^gs://")]
    staging_location: Optional[Annotated[str, Field(pattern=r"^gs://")]] = None
    service_account_email: Optional[str] = None
    machine_type: Optional[str] = None
    max_num_workers: Optional[PositiveInt] = None


RUNNERS = {"portable": ("PortableRunner", PortableRunnerSettings), "flink": ("FlinkRunner", FlinkRunnerSettings),
           "spark": ("SparkRunner", SparkRunnerSettings), "dataflow": ("DataflowRunner", DataflowRunnerSettings)}


class BeamSection(Section):
    """The runner of every Beam-based component (ExampleGen, StatisticsGen, Transform, Evaluator, ...)."""

    runner: Literal["direct", "portable", "flink", "spark", "dataflow"] = "direct"
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    direct_num_workers: Annotated[int, Field(ge=0)] = 0  # 0: one per core
    portable: Optional[PortableRunnerSettings] = None
    flink: Optional[FlinkRunnerSettings] = None
    spark: Optional[SparkRunnerSettings] = None
    dataflow: Optional[DataflowRunnerSettings] = None
    extra_args: list[str] = []

    @model_validator(mode="after")
    def _runner_is_described_and_args_are_beams(self):
        if self.runner != "direct" and getattr(self, self.runner) is None:
            required = [name for name, field in RUNNERS[self.runner][1].model_fields.items() if field.is_required()]
            raise ValueError(f"runner {self.runner} needs a {self.runner}: section ({', '.join(required)} required)")
        _no_secrets("extra_args", self.extra_args)
        if any(arg.split("=")[0] == "--runner" for arg in self.extra_args):
            raise ValueError("extra_args: --runner is set by beam.runner (direct, portable, flink, spark, dataflow)")
        _known_to_beam("extra_args", self.extra_args)
        return self

    def args(self) -> list[str]:
        """The Beam arguments every component gets. In memory, Beam's defaults are left unsaid: with no Beam
        args, TFX skips building an sdist of itself for remote workers, which the DirectRunner never uses."""
        if self.runner == "direct":
            if self.direct_running_mode == "in_memory":
                return list(self.extra_args)
            workers = self.direct_num_workers or os.cpu_count() or 1
            return ["--runner=DirectRunner", f"--direct_running_mode={self.direct_running_mode}",
                    f"--direct_num_workers={workers}", *self.extra_args]
        settings = getattr(self, self.runner).model_dump(exclude_none=True)
        return [f"--runner={RUNNERS[self.runner][0]}", *(f"--{key}={value}" for key, value in settings.items()),
                *self.extra_args]


def _known_to_beam(key: str, args: list[str]) -> None:
    """Every argument must be an option some PipelineOptions class of the installed Beam declares (Beam itself
    only logs and drops the others). Imports Beam, so only when there are arguments to check."""
    if not args:
        return
    with warnings.catch_warnings():   # Beam's GCP modules warn about Python versions at import
        warnings.simplefilter("ignore", FutureWarning)
        from apache_beam.options import pipeline_options

    parser = pipeline_options._BeamArgumentParser(allow_abbrev=False)   # the parser Beam's get_all_options uses
    for options in pipeline_options.PipelineOptions.__subclasses__():
        options._add_argparse_args(parser)
    _, unknown = parser.parse_known_args(args)
    unknown = [arg for arg in unknown if arg.startswith("--")]
    if unknown:
        raise ValueError(f"{key}: {', '.join(unknown)}: not an option of the installed Beam's PipelineOptions")


class MysqlSection(Section):
    """A MySQL (or MariaDB) server for ML Metadata. The password is read from the environment variable
    `password_env` names, never from this file."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 3306
    database: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]+$")]
    user: str
    password_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "MLMD_MYSQL_PASSWORD"


class MetadataSection(Section):
    backend: Literal["sqlite", "mysql"] = "sqlite"
    sqlite_path: str = "outputs/metadata.sqlite"
    mysql: Optional[MysqlSection] = None
    lock_wait_seconds: Annotated[float, Field(ge=0.0)] = 0.0   # a run that finds another one on the store waits

    @model_validator(mode="after")
    def _mysql_is_described(self):
        if self.backend == "mysql" and self.mysql is None:
            raise ValueError("backend mysql needs a mysql: section (host, port, database, user, password_env)")
        return self


class LoggingSection(Section):
    directory: str = "outputs/logs"
    report: bool = True     # each run ends by writing its HTML report (`python -m pipeline report` writes one any time)


class ScheduleSection(Section):
    """`python -m pipeline watch`: how often to look in data.base for a new complete span."""

    poll_seconds: Annotated[float, Field(gt=0.0)] = 60.0


class AirflowSection(Section):
    """`python -m pipeline compile --target airflow`: the DAG's id and first date."""

    dag_id: Optional[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]] = None   # null: pipeline.name
    start_date: datetime.date = datetime.date(2026, 1, 1)


class VertexSection(Section):
    """The Google Cloud project and region Vertex AI jobs run in, and as whom: the workers' own identity, never a
    key in this file."""

    project: Optional[str] = None
    region: str = "us-central1"
    service_account: Optional[str] = None   # e-mail of the service account the jobs run as; null: the default


class WorkerPool(Section):
    """One Vertex AI worker pool: machines of one kind (CustomJob's workerPoolSpecs)."""

    machine_type: str = "n1-standard-4"
    replicas: PositiveInt = 1
    accelerator_type: Optional[str] = None          # e.g. NVIDIA_TESLA_T4, NVIDIA_L4, TPU_V3
    accelerator_count: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _accelerators_named_and_counted(self):
        if bool(self.accelerator_type) != bool(self.accelerator_count):
            raise ValueError("accelerator_type and accelerator_count go together (both set, or neither)")
        return self

    def spec(self, image: str) -> dict:
        machine = {"machine_type": self.machine_type}
        if self.accelerator_type:
            machine.update(accelerator_type=self.accelerator_type, accelerator_count=self.accelerator_count)
        return {"machine_spec": machine, "replica_count": self.replicas, "container_spec": {"image_uri": image}}


class TrainingJobSection(Section):
    """The Trainer (full retrain and fine-tune) as a Vertex AI custom job, by TFX's Vertex Trainer: run_fn runs in
    deploy.image on these pools, Vertex sets TF_CONFIG on each replica (training.strategy). The first pool is the
    chief (one replica); the others are its workers."""

    worker_pools: Annotated[list[WorkerPool], Field(min_length=1)]

    @field_validator("worker_pools")
    @classmethod
    def _one_chief(cls, pools):
        if pools[0].replicas != 1:
            raise ValueError(f"the first pool is the chief: replicas must be 1 (got {pools[0].replicas})")
        return pools


class DeploySection(Section):
    """Running under an orchestrator (`python -m pipeline compile`): README "Orchestrators".

    Locations left null are this file's own (pipeline.root, data.base, serving.base), which suits an
    orchestrator on this machine (Airflow); Kubeflow and Vertex need URIs every worker can read.
    """

    image: Optional[str] = None            # container image with this package (Dockerfile); kubeflow/vertex
    pipeline_root: Optional[str] = None    # e.g. gs://bucket/tfx: artifacts of the orchestrated runs
    data_base: Optional[str] = None        # the spans, as the workers see them
    serving_base: Optional[str] = None     # where Pusher writes, as the workers see it
    schema_path: Optional[str] = None      # the curated schema, as the workers see it
    beam_args: list[str] = []              # Beam arguments of every component (e.g. --runner=DataflowRunner)
    schedule: Optional[str] = None         # cron expression (UTC); null: runs only when started by hand
    retries: Annotated[int, Field(ge=0)] = 0
    retry_delay_seconds: PositiveInt = 300
    catchup: bool = False                  # Airflow: run the missed intervals since airflow.start_date
    airflow: AirflowSection = AirflowSection()
    vertex: VertexSection = VertexSection()
    training_job: Optional[TrainingJobSection] = None   # null: the Trainer runs where the orchestrator runs nodes

    @field_validator("schedule")
    @classmethod
    def _schedule_is_cron(cls, schedule):
        if schedule is not None and not croniter.croniter.is_valid(schedule):
            raise ValueError("not a cron expression (five fields: minute hour day-of-month month day-of-week)")
        return schedule

    @model_validator(mode="after")
    def _beam_args_hold_no_secret_and_are_beams(self):
        _no_secrets("beam_args", self.beam_args)
        _known_to_beam("beam_args", self.beam_args)
        return self

    @model_validator(mode="after")
    def _training_job_has_image_project_and_root(self):
        """A Vertex training job runs in the image, bills the project, and reads and writes artifacts under the
        pipeline root from Google's machines."""
        if self.training_job is None:
            return self
        if not self.image:
            raise ValueError("training_job: set deploy.image, the image the training replicas run (Dockerfile)")
        if not self.vertex.project:
            raise ValueError("training_job: set deploy.vertex.project, the project the training job runs in")
        if not URI.match(self.pipeline_root or ""):
            raise ValueError("training_job: deploy.pipeline_root must be a URI the replicas can read and write "
                             f"(e.g. gs://bucket/tfx), got {self.pipeline_root!r}")
        return self

    def training_job_spec(self) -> dict:
        """The CustomJob's job_spec (Vertex AI REST names) for TFX's Vertex Trainer."""
        spec = {"worker_pool_specs": [pool.spec(self.image) for pool in self.training_job.worker_pools]}
        if self.vertex.service_account:
            spec["service_account"] = self.vertex.service_account
        return spec


class PipelineConfig(Section):
    pipeline: PipelineSection
    data: DataSection
    features: Annotated[list[Feature], Field(min_length=1)]
    label: Label
    model: ModelSection = ModelSection()
    training: TrainingSection = TrainingSection()
    evaluation: EvaluationSection
    fairness: FairnessSection = FairnessSection()
    serving: ServingSection
    retraining: RetrainingSection = RetrainingSection()
    beam: BeamSection = BeamSection()
    metadata: MetadataSection = MetadataSection()
    logging: LoggingSection = LoggingSection()
    schedule: ScheduleSection = ScheduleSection()
    deploy: DeploySection = DeploySection()

    # Set by load_config: relative paths in the file are relative to the file's own folder.
    _config_dir: pathlib.Path = PrivateAttr(default_factory=pathlib.Path.cwd)
    # Set by for_orchestrator: the config as an orchestrator's workers see it.
    _orchestrated: bool = PrivateAttr(default=False)

    @model_validator(mode="after")
    def _names_are_consistent(self):
        names = [feature.name for feature in self.features]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"features listed twice: {', '.join(duplicates)}")
        if self.label.source in names:
            raise ValueError(f"label.source {self.label.source!r} is also a model feature: it would leak the label")
        drift = self.retraining.drift
        unknown = sorted(set(drift.features) - set(names))
        if unknown:
            raise ValueError(f"retraining.drift.features names features that are not in 'features': {', '.join(unknown)}")
        for feature in self.features:
            measures = DRIFT_MEASURES[drift_kind(feature)]
            misplaced = sorted(drift.features.get(feature.name, DriftThresholds()).model_fields_set - set(measures))
            if misplaced:
                raise ValueError(f"retraining.drift.features.{feature.name}: {', '.join(misplaced)} does not apply to a "
                                 f"{drift_kind(feature)} feature (its measures: {', '.join(measures)})")
        epochs = self.training.epochs
        for key, steps in (("training.train_steps", self.training.train_steps),
                           ("retraining.fine_tune.train_steps", self.retraining.fine_tune.train_steps),
                           ("retraining.fine_tune.unfrozen_steps", self.retraining.fine_tune.unfrozen_steps)):
            if steps % epochs:
                raise ValueError(f"{key} ({steps}) is not a multiple of training.epochs ({epochs}): "
                                 f"every epoch runs the same number of steps")
        return self

    def path(self, value: str) -> pathlib.Path:
        """Resolve a path from the file against the file's folder."""
        if URI.match(value):
            raise ValueError(f"{value} is a URI: only the pipeline's components read it, not this command")
        candidate = pathlib.Path(value)
        return (candidate if candidate.is_absolute() else self._config_dir / candidate).resolve()

    def uri(self, value: str) -> str:
        """A location as TFX is given it: a URI (gs://...) as written, a path resolved as path() does."""
        return value if URI.match(value) else str(self.path(value))

    @property
    def pipeline_root(self) -> pathlib.Path:
        return self.path(self.pipeline.root) / self.pipeline.name

    @property
    def serving_dir(self) -> pathlib.Path:
        return self.path(self.serving.base) / self.serving.model_name

    @property
    def pipeline_root_uri(self) -> str:
        return f"{self.uri(self.pipeline.root).rstrip('/')}/{self.pipeline.name}"

    @property
    def serving_uri(self) -> str:
        return f"{self.uri(self.serving.base).rstrip('/')}/{self.serving.model_name}"

    def for_orchestrator(self) -> PipelineConfig:
        """This config as an orchestrator's workers see it: deploy's locations and Beam arguments in place
        of this file's (a null or empty deploy key keeps this file's own)."""
        deploy = self.deploy

        def replaced(section, **values):
            return section.model_copy(update={key: value for key, value in values.items() if value})

        orchestrated = self.model_copy(update={
            "pipeline": replaced(self.pipeline, root=deploy.pipeline_root),
            "data": replaced(self.data, base=deploy.data_base, schema_path=deploy.schema_path),
            "serving": replaced(self.serving, base=deploy.serving_base),
            # deploy.beam_args are the Beam arguments as they are (their own --runner included): checked on load
            "beam": BeamSection.model_construct(extra_args=deploy.beam_args) if deploy.beam_args else self.beam,
        })
        orchestrated._orchestrated = True
        return orchestrated

    @property
    def training_job(self) -> Optional[TrainingJobSection]:
        """deploy.training_job under an orchestrator; a local run always trains in its own process."""
        return self.deploy.training_job if self._orchestrated else None

    # --- each component's settings (components/settings.py), built once here ------------------------

    def transform_settings(self) -> TransformSettings:
        return TransformSettings(features=self.features, label=self.label)

    def trainer_settings(self, mode: str) -> TrainerSettings:
        """The Trainer's (mode FULL_RETRAIN) or the FineTuneTrainer's (mode FINE_TUNE) settings."""
        assert mode in (FULL_RETRAIN, FINE_TUNE), mode
        return TrainerSettings(
            mode=mode, transform=self.transform_settings(), model=self.model, training=self.training,
            fine_tune=self.retraining.fine_tune, decision_threshold=self.evaluation.decision_threshold,
            model_name=self.serving.model_name, warmup_rows=self.serving.warmup_rows,
            remediation=self.fairness.remediation)

    def serving_validator_settings(self) -> ServingValidatorSettings:
        return ServingValidatorSettings(transform=self.transform_settings(), validation=self.serving.validation,
                                        model_name=self.serving.model_name)

    def drift_check_settings(self) -> DriftCheckSettings:
        """Each feature's kind and thresholds: retraining.drift.thresholds, overridden per feature."""
        drift = self.retraining.drift
        features = {}
        for feature in self.features:
            override = drift.features.get(feature.name, DriftThresholds())
            features[feature.name] = FeatureDrift(kind=drift_kind(feature), thresholds={
                measure: getattr(override if measure in override.model_fields_set else drift.thresholds, measure)
                for measure in DRIFT_MEASURES[drift_kind(feature)]})
        return DriftCheckSettings(
            quantile_buckets=drift.quantile_buckets, significance=drift.significance, features=features,
            serving_logs=str(self.path(drift.serving_logs)) if drift.serving_logs else None,
            skew_threshold=drift.skew_threshold)

    def retrain_policy_settings(self) -> RetrainPolicySettings:
        return RetrainPolicySettings(policy=self.retraining.policy,
                                     full_retrain_every_n_spans=self.retraining.full_retrain_every_n_spans,
                                     settings_digest=self.candidate_settings_digest(),
                                     remediation_when=self.fairness.remediation and self.fairness.remediation.when)

    def candidate_settings_digest(self) -> str:
        """Digest of what a candidate and its gates depend on: a rejected candidate counts (escalation) only
        for runs with the same digest, so a changed gate or model gets a new attempt on the same span."""
        relevant = {"features": [feature.model_dump(mode="json") for feature in self.features]}
        for key, section in (("label", self.label), ("model", self.model), ("training", self.training),
                             ("evaluation", self.evaluation), ("fairness", self.fairness),
                             ("fine_tune", self.retraining.fine_tune), ("serving_validation", self.serving.validation)):
            relevant[key] = section.model_dump(mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]


def drift_kind(feature: Feature) -> str:
    """How DriftCheck measures a feature: string, category (integers used as categories) or numeric."""
    return {"vocabulary": "string", "identity": "category"}.get(feature.treatment, "numeric")


DRIFT_MEASURES = {"string": ("l_infinity",), "category": ("psi",), "numeric": ("psi", "location", "scale")}


def _describe(error: dict) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    value = "(a secret's value is not repeated)" if SECRET_NAME.search(location) else repr(error["input"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key (value {value}); check the spelling against the README"
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(error["input"], dict):  # a check across keys: the message names them
        return f"{location}: {message}"
    return f"{location}: got {value}; {message}"


def load_config(path: str | pathlib.Path) -> PipelineConfig:
    path = pathlib.Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the config file ({error.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        config = PipelineConfig.model_validate(raw)
    except pydantic.ValidationError as error:
        problems = "\n  ".join(_describe(item) for item in error.errors())
        raise ConfigError(f"{path}: invalid configuration:\n  {problems}") from None
    config._config_dir = path.parent.resolve()
    if not config.path(config.data.schema_path).is_file():
        raise ConfigError(f"{path}: data.schema_path: no schema file at {config.path(config.data.schema_path)}")
    mysql = config.metadata.mysql if config.metadata.backend == "mysql" else None
    if mysql is not None and mysql.password_env not in os.environ:
        raise ConfigError(f"{path}: metadata.mysql.password_env: the environment variable {mysql.password_env} is not "
                          f"set; it holds the password of {mysql.user} on {mysql.host}:{mysql.port}")
    if not config.path(config.data.base).is_dir():
        raise ConfigError(f"{path}: data.base: no data folder at {config.path(config.data.base)}")
    return config
