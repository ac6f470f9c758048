"""What each custom component and user module is told: one typed settings model apiece.

pipeline/config.py builds them from the validated pipeline.yaml (the sections below are also
sections of that file); the pipeline passes each as one execution property (JSON) and the
executor or module parses it once with `model_validate_json` / `model_validate`. Imports pydantic
alone, so the components package never imports the pipeline package.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveInt = Annotated[int, Field(gt=0)]


class Section(BaseModel):
    """A section of pipeline.yaml, or a component's settings: unknown keys are errors, values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- sections of pipeline.yaml that components receive whole ------------------------------------

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

    @property
    def source_columns(self) -> list[str]:
        """Raw columns the label is computed from; a serving request carries none that are not features."""
        return [self.source] + ([self.denominator] if self.denominator else [])


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
    # tf.distribute strategy (components/distribution.py); batch_size stays the global batch of one step
    strategy: Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"] = "auto"
    devices: list[str] = []      # one_device: its device; mirrored: its replicas ([]: every GPU, else the CPU)
    tpu: Optional[str] = None    # tpu: a Cloud TPU name, grpc://host:port of a TPU worker, or local (a TPU VM)

    @model_validator(mode="after")
    def _strategy_arguments(self):
        if self.devices and self.strategy not in ("one_device", "mirrored"):
            raise ValueError(f"devices only applies to strategy one_device or mirrored (strategy is {self.strategy})")
        if self.strategy == "one_device" and len(self.devices) > 1:
            raise ValueError(f"strategy one_device takes one device (devices: {self.devices})")
        if self.strategy == "mirrored" and self.devices and self.batch_size % len(self.devices):
            raise ValueError(f"batch_size {self.batch_size} (the global batch) is not a multiple of the "
                             f"{len(self.devices)} replicas of devices {self.devices}")
        if (self.tpu is not None) != (self.strategy == "tpu"):
            raise ValueError("strategy tpu needs tpu: a Cloud TPU name, grpc://host:port or local"
                             if self.strategy == "tpu" else f"tpu only applies to strategy tpu (strategy is {self.strategy})")
        return self


class FineTuneSettings(Section):
    """Warm start from the blessed model, through its own transform graph (no re-analysis)."""

    learning_rate: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.0001
    train_steps: PositiveInt = 200
    frozen_layers: list[str] = []              # layer names kept fixed while the rest trains
    unfrozen_steps: Annotated[int, Field(ge=0)] = 0  # then train every layer for this many steps (0: skip)


class Remediation(Section):
    """fairness.remediation: retrain with MinDiff (tensorflow-model-remediation), which adds to the training loss
    a penalty on the difference between two groups' score distributions, so a gap gate can be met by training
    rather than by hand. The exported model is the plain Keras model: MinDiff changes training only."""

    method: Literal["min_diff"] = "min_diff"
    when: Literal["always", "on_gap_failure"] = "on_gap_failure"
    slice: str                             # a one-feature slicing of fairness.slices: the raw column of the groups
    sensitive: Annotated[list[str], Field(min_length=1)]   # its values in one group (e.g. [Female])
    nonsensitive: Optional[Annotated[list[str], Field(min_length=1)]] = None   # the other group; null: every other value
    examples: Literal["negatives", "positives", "all"] = "negatives"   # negatives: a false positive rate gap
    loss: Literal["mmd", "absolute_correlation"] = "mmd"
    loss_weight: Annotated[float, Field(gt=0.0)] = 1.0

    @model_validator(mode="after")
    def _groups_are_disjoint(self):
        both = sorted(set(self.sensitive) & set(self.nonsensitive or []))
        if both:
            raise ValueError(f"{', '.join(both)} is in both sensitive and nonsensitive: the groups must not overlap")
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
    """The `serving:` section; also the Pusher's settings (its custom_config)."""

    base: str = "outputs/serving"
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]   # a folder of serving.base
    versions_to_keep: PositiveInt = 3          # older version folders are deleted after a push
    warmup_rows: PositiveInt = 16              # training rows in assets.extra/tf_serving_warmup_requests
    target: Literal["cpu", "gpu", "tpu"] = "cpu"
    image: Optional[str] = None                # None: tensorflow/serving:<TF Serving release of the lock>[-gpu]
    replicas: PositiveInt = 1
    resources: Resources = Resources()
    batching: Batching = Batching()
    tpu: TpuSettings = TpuSettings()
    validation: ServingValidation = ServingValidation()


# --- settings of one component or module ------------------------------------------------------

class TransformSettings(Section):
    """The transform module's custom_config: the features and the label, which every graph user needs."""

    features: list[Feature]
    label: Label

    @property
    def feature_names(self) -> list[str]:
        return [feature.name for feature in self.features]


class TrainerSettings(Section):
    """The trainer module's custom_config (Trainer and FineTuneTrainer)."""

    mode: Literal["full_retrain", "fine_tune"]   # contracts.FULL_RETRAIN or FINE_TUNE
    transform: TransformSettings
    model: ModelSection
    training: TrainingSection
    fine_tune: FineTuneSettings
    decision_threshold: float       # evaluation.decision_threshold: `classes` of the serving signatures
    model_name: str                 # serving.model_name, in the warmup requests
    warmup_rows: PositiveInt        # serving.warmup_rows
    remediation: Optional[Remediation] = None   # fairness.remediation; whether a run uses it is the decision's


class ServingValidatorSettings(Section):
    transform: TransformSettings
    validation: ServingValidation
    model_name: str


class FeatureDrift(Section):
    """How DriftCheck measures one feature, and the threshold of each measure (None: reported only)."""

    kind: Literal["string", "category", "numeric"]
    thresholds: dict[str, Optional[float]]


class DriftCheckSettings(Section):
    quantile_buckets: int
    significance: float
    features: dict[str, FeatureDrift]
    serving_logs: Optional[str] = None    # absolute path of the logged serving requests (CSV), if any
    skew_threshold: float


class RetrainPolicySettings(Section):
    policy: Literal["drift_aware", "always_full", "never"]
    full_retrain_every_n_spans: int
    settings_digest: str    # of what a candidate and its gates depend on: PipelineConfig.candidate_settings_digest
    remediation_when: Optional[Literal["always", "on_gap_failure"]] = None   # fairness.remediation.when; None: off
