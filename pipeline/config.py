"""pipeline.yaml: the one place users change behaviour. Validated before any component starts."""
from __future__ import annotations

import hashlib
import json
import pathlib
import re
from typing import Annotated, Literal, Optional, Union

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

SPAN_TOKEN = re.compile(r"\{SPAN(?::\d+)?\}")  # ExampleGen's span spec, optionally zero-padded to a width
PositiveInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class ConfigError(Exception):
    """pipeline.yaml cannot be used; the message names the file, the key, the value and what is allowed."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PipelineSection(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
    root: str = "outputs"
    enable_cache: bool = True


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
    def _pattern_has_span(self):
        if len(SPAN_TOKEN.findall(self.span_pattern)) != 1:
            raise ValueError(f"span_pattern must contain {{SPAN}} or {{SPAN:width}} once (got {self.span_pattern!r})")
        return self


class Feature(Section):
    """One raw column and how the transform turns it into a model input."""

    name: str
    treatment: Literal["zscore", "bucketize", "vocabulary", "identity"]
    buckets: Optional[PositiveInt] = None          # bucketize: quantile buckets; identity: values 0..buckets-1
    top_k: Optional[PositiveInt] = None            # vocabulary: keep the k most frequent values
    oov_buckets: Annotated[int, Field(ge=0)] = 1  # vocabulary: buckets for values outside the vocabulary
    fill_value: Union[float, str, None] = None     # value used where the feature is missing

    @model_validator(mode="after")
    def _treatment_arguments(self):
        if self.treatment in ("bucketize", "identity") and self.buckets is None:
            raise ValueError(f"feature {self.name!r}: treatment {self.treatment!r} needs 'buckets'")
        if self.treatment not in ("bucketize", "identity") and self.buckets is not None:
            raise ValueError(f"feature {self.name!r}: 'buckets' only applies to bucketize and identity")
        if self.treatment != "vocabulary" and self.top_k is not None:
            raise ValueError(f"feature {self.name!r}: 'top_k' only applies to vocabulary")
        return self


class Label(Section):
    """The label is made in the transform from raw columns, so serving requests never carry it."""

    name: str
    source: str
    rule: Literal["ratio_above", "above", "equals"]
    denominator: Optional[str] = None   # ratio_above: source / denominator > threshold
    threshold: Optional[float] = None   # ratio_above, above
    value: Optional[str] = None         # equals: source == value

    @model_validator(mode="after")
    def _rule_arguments(self):
        needs = {"ratio_above": ("denominator", "threshold"), "above": ("threshold",), "equals": ("value",)}
        missing = [key for key in needs[self.rule] if getattr(self, key) is None]
        if missing:
            raise ValueError(f"rule {self.rule!r} needs {', '.join(missing)}")
        return self


class ModelSection(Section):
    hidden_units: Annotated[list[PositiveInt], Field(min_length=1)] = [64, 32]
    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.001
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    l2: Annotated[float, Field(ge=0.0)] = 0.001      # weight decay on the dense layers' kernels


class TrainingSection(Section):
    train_steps: PositiveInt = 1000
    eval_steps: PositiveInt = 100
    batch_size: PositiveInt = 40
    seed: Annotated[int, Field(ge=0)] = 42   # weights' initialisation and shuffling: same data, same model
    epochs: PositiveInt = 10                 # the steps (full training and fine-tuning) run as this many epochs
    early_stopping_patience: Annotated[int, Field(ge=0)] = 2   # epochs without a lower eval loss (0: no early stop)


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


# Rates a fairness gate can hold, at one of fairness.thresholds (Fairness Indicators reports these and more).
GATED_RATES = ("false_positive_rate", "false_negative_rate", "true_positive_rate", "true_negative_rate",
               "positive_rate", "false_discovery_rate", "false_omission_rate")
SLICE_METRICS = ("auc", "example_count")


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

    def metric_threshold(self, metric: str) -> Optional[float]:
        """The decision threshold of a `rate@threshold` metric name (None for auc, example_count)."""
        return None if metric in SLICE_METRICS else float(metric.split("@", 1)[1])

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
        return self


class Resources(Section):
    """Kubernetes requests/limits of one TF Serving replica; accelerators: GPUs or TPU chips."""

    cpu: str = "2"
    memory: str = "4Gi"
    accelerators: PositiveInt = 1


class TpuSettings(Section):
    """GKE TPU node pool and the Cloud TPU Inference Converter's options."""

    accelerator: str = "tpu-v5-lite-podslice"   # node selector cloud.google.com/gke-tpu-accelerator
    topology: str = "1x1"                      # node selector cloud.google.com/gke-tpu-topology
    batch_sizes: list[PositiveInt] = [8, 32, 128]   # converter: allowed batch sizes of the TPU function
    batch_timeout_micros: Annotated[int, Field(ge=0)] = 5000
    num_batch_threads: PositiveInt = 2
    converter_image: str = "us-docker.pkg.dev/cloud-tpu-images/inference/tpu-inference-converter-cli"
    serving_image: str = "us-docker.pkg.dev/cloud-tpu-images/inference/tf-serving-tpu:2.16.1"


class Batching(Section):
    """TF Serving's --batching_parameters_file (GPU target): batches of requests per model call."""

    max_batch_size: PositiveInt = 128
    batch_timeout_micros: Annotated[int, Field(ge=0)] = 2000
    max_enqueued_batches: PositiveInt = 100
    num_batch_threads: PositiveInt = 4
    allowed_batch_sizes: list[PositiveInt] = []    # [] lets TF Serving use any size up to max_batch_size

    @model_validator(mode="after")
    def _sizes_end_at_max(self):
        sizes = self.allowed_batch_sizes
        if sizes and (sizes != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(f"allowed_batch_sizes must increase and end at max_batch_size {self.max_batch_size} (got {sizes})")
        return self


class ServingValidation(Section):
    """Serving validation: the candidate loaded in a fresh process and queried as TF Serving would."""

    tolerance: Annotated[float, Field(gt=0.0)] = 1.0e-5       # |served - Trainer's| per canary row
    max_load_seconds: Annotated[float, Field(gt=0.0)] = 120.0
    max_latency_ms: Annotated[float, Field(gt=0.0)] = 1000.0   # p99 of one-row requests


class ServingSection(Section):
    base: str = "outputs/serving"
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    versions_to_keep: PositiveInt = 3          # older version folders are deleted after a push
    warmup_rows: PositiveInt = 16              # training rows in assets.extra/tf_serving_warmup_requests
    target: Literal["cpu", "gpu", "tpu"] = "cpu"
    image: Optional[str] = None                # None: tensorflow/serving:<TF Serving release of the lock>[-gpu]
    replicas: PositiveInt = 1
    resources: Resources = Resources()
    batching: Batching = Batching()
    tpu: TpuSettings = TpuSettings()
    validation: ServingValidation = ServingValidation()


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


class FineTuneSettings(Section):
    """Warm start from the blessed model, through its own transform graph (no re-analysis)."""

    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.0001
    train_steps: PositiveInt = 200
    frozen_layers: list[str] = []              # layer names kept fixed while the rest trains
    unfrozen_steps: Annotated[int, Field(ge=0)] = 0  # then train every layer for this many steps (0: skip)


class RetrainingSection(Section):
    policy: Literal["drift_aware", "always_full", "never"] = "drift_aware"
    drift: DriftSettings = DriftSettings()
    full_retrain_every_n_spans: Annotated[int, Field(ge=0)] = 0   # 0: only drift or a schema change forces it
    fine_tune: FineTuneSettings = FineTuneSettings()


class BeamSection(Section):
    direct_running_mode: Literal["in_memory", "multi_threading", "multi_processing"] = "in_memory"
    direct_num_workers: Annotated[int, Field(ge=0)] = 0  # 0: one per core
    extra_args: list[str] = []


class MetadataSection(Section):
    sqlite_path: str = "outputs/metadata.sqlite"


class LoggingSection(Section):
    directory: str = "outputs/logs"


class ScheduleSection(Section):
    """`python -m pipeline watch`: how often to look in data.base for a new complete span."""

    poll_seconds: Annotated[float, Field(gt=0.0)] = 60.0


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

    # Set by load_config: relative paths in the file are relative to the file's own folder.
    _config_dir: pathlib.Path = PrivateAttr(default_factory=pathlib.Path.cwd)

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
        candidate = pathlib.Path(value)
        return (candidate if candidate.is_absolute() else self._config_dir / candidate).resolve()

    @property
    def pipeline_root(self) -> pathlib.Path:
        return self.path(self.pipeline.root) / self.pipeline.name

    @property
    def serving_dir(self) -> pathlib.Path:
        return self.path(self.serving.base) / self.serving.model_name

    def transform_settings(self) -> dict:
        """What the transform and trainer modules need, as plain data (it travels in custom_config)."""
        return {
            "features": [feature.model_dump() for feature in self.features],
            "label": self.label.model_dump(),
        }


    def candidate_settings_digest(self) -> str:
        """Digest of what a candidate and its gates depend on: a rejected candidate counts (escalation) only
        for runs with the same digest, so a changed gate or model gets a new attempt on the same span."""
        relevant = {"features": [feature.model_dump(mode="json") for feature in self.features]}
        for key, section in (("label", self.label), ("model", self.model), ("training", self.training),
                             ("evaluation", self.evaluation), ("fairness", self.fairness),
                             ("fine_tune", self.retraining.fine_tune), ("serving_validation", self.serving.validation)):
            relevant[key] = section.model_dump(mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def drift_settings(self) -> dict:
        """DriftCheck's settings: each feature's kind and thresholds, the defaults overridden per feature."""
        drift = self.retraining.drift
        features = {}
        for feature in self.features:
            override = drift.features.get(feature.name, DriftThresholds())
            features[feature.name] = {"kind": drift_kind(feature), "thresholds": {
                measure: getattr(override if measure in override.model_fields_set else drift.thresholds, measure)
                for measure in DRIFT_MEASURES[drift_kind(feature)]}}
        return {"quantile_buckets": drift.quantile_buckets, "significance": drift.significance, "features": features,
                "serving_logs": str(self.path(drift.serving_logs)) if drift.serving_logs else None,
                "skew_threshold": drift.skew_threshold}


def drift_kind(feature: Feature) -> str:
    """How DriftCheck measures a feature: string, category (integers used as categories) or numeric."""
    return {"vocabulary": "string", "identity": "category"}.get(feature.treatment, "numeric")


DRIFT_MEASURES = {"string": ("l_infinity",), "category": ("psi",), "numeric": ("psi", "location", "scale")}


def _describe(error: dict) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown key (value {error['input']!r}); check the spelling against the README"
    if error["type"] == "missing":
        return f"{location}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(error["input"], dict):  # a check across keys: the message names them
        return f"{location}: {message}"
    return f"{location}: got {error['input']!r}; {message}"


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
    if not config.path(config.data.base).is_dir():
        raise ConfigError(f"{path}: data.base: no data folder at {config.path(config.data.base)}")
    return config
