"""The names components, the run summary, `watch` and `rollback` share: node ids, artifact type names,
custom property keys, file names and exit codes, as TFX's own standard_component_specs holds its keys.

A leaf module: it imports nothing, so whatever reads ML Metadata or an artifact's files (watch,
rollback, the summary) can do so without TFX or TensorFlow. The custom artifact classes that carry
these type names are in components/artifacts.py.
"""

# --- node ids of the pipeline (pipeline/stages), as ML Metadata records them -------------------
EXAMPLE_GEN = "CsvExampleGen"
STATISTICS_GEN = "StatisticsGen"
DATA_GATE = "DataGate"
BLESSED_MODEL = "blessed_model"          # resolver: the blessed model and its lineage
TRAINING_WINDOW = "training_window"      # resolver: the spans Transform and Trainer read
DRIFT_CHECK = "DriftCheck"
RETRAIN_POLICY = "RetrainPolicy"
TRAINER = "Trainer"
FINE_TUNE_TRAINER = "FineTuneTrainer"
EVALUATOR = "Evaluator"
SERVING_VALIDATOR = "ServingValidator"
PUSHER = "Pusher"
CANDIDATE_VERDICT = "CandidateVerdict"
RESOLVERS = (BLESSED_MODEL, TRAINING_WINDOW)   # they resolve what earlier runs produced; they produce nothing

# --- artifact type names ----------------------------------------------------------------------
DATA_GATE_RESULT = "DataGateResult"
DRIFT_REPORT = "DriftReport"
RETRAIN_DECISION = "RetrainDecision"
VERDICT = "CandidateVerdict"
# TFX's standard artifacts (tfx.types.standard_artifacts), as read back from ML Metadata
EXAMPLES = "Examples"
EXAMPLE_STATISTICS = "ExampleStatistics"
TRANSFORM_GRAPH = "TransformGraph"
MODEL = "Model"
MODEL_RUN = "ModelRun"
MODEL_EVALUATION = "ModelEvaluation"
MODEL_BLESSING = "ModelBlessing"
INFRA_BLESSING = "InfraBlessing"
PUSHED_MODEL = "PushedModel"

# --- execution properties ---------------------------------------------------------------------
SETTINGS_KEY = "settings"        # a custom component's one execution property: its settings model as JSON

# --- custom properties ------------------------------------------------------------------------
SPAN_KEY = "span"                # ExampleGen's span of its Examples; also the span of a decision and a verdict
BLESSED_KEY = "blessed"          # 1/0 on DataGateResult, and on TFX's ModelBlessing and InfraBlessing
CURRENT_MODEL_ID_KEY = "current_model_id"   # TFX's blessings: the Model they judged
BASELINE_MODEL_KEY = "baseline_model"       # TFX's ModelBlessing: the baseline it was compared with

# DataGate
PROBLEM_COUNT_KEY = "problem_count"

# DriftCheck
HAS_BASELINE_KEY = "has_baseline"          # 1 when the blessed model's statistics were there to compare with
DRIFTED_KEY = "drifted"
DRIFTED_FEATURES_KEY = "drifted_features"  # JSON list of names
SKEWED_FEATURES_KEY = "skewed_features"    # JSON list of names (reported, not acted on)

# RetrainPolicy's decision, read by the Cond blocks of the pipeline, CandidateVerdict and the summary.
MODE_KEY = "mode"                 # one of SKIP, FINE_TUNE, FULL_RETRAIN
SKIP, FINE_TUNE, FULL_RETRAIN = "skip", "fine_tune", "full_retrain"
REASONS_KEY = "reasons"           # JSON list of sentences
SERVING_KEY = "serving"           # JSON: the model that serves (id, spans) and the spans it lags, when known
REJECTED_KEY = "rejected"         # JSON list of this span's rejected candidates ({"run_id", "mode", "rejections"})
SETTINGS_DIGEST_KEY = "settings_digest"   # of the settings a candidate and its gates depend on (also on verdicts)
MIN_DIFF_KEY = "min_diff"         # 1: the candidate trains with MinDiff (fairness.remediation); also on verdicts
# The decision's run-time training options, as the Trainer's `hyperparameters` input (fn_args.hyperparameters).
TRAINING_OPTIONS_FILE = "training_options.json"

# Trainer custom_config: keys TFX's Vertex Trainer reads there (deploy.training_job), beside the TrainerSettings.
VERTEX_TRAINER_KEY_PREFIX = "ai_platform_"

# ServingValidator's InfraBlessing: why a model was refused.
SERVING_REASON_KEY = "reason"

# Pusher (TFX's keys, and ours) and rollback
PUSHED_KEY = "pushed"
PUSHED_DESTINATION_KEY = "pushed_destination"
PUSHED_VERSION_KEY = "pushed_version"
MODEL_ID_KEY = "model_id"         # PushedModel → the Model artifact it serves (rollback follows it)
MODEL_PATH_KEY = "model_path"     # PushedModel → the SavedModel folder that was copied in (rollback copies it again)
ROLLED_BACK_KEY = "rolled_back"   # on a Model: taken out of service; never a baseline or a warm start again
ROLLED_BACK_FROM_KEY = "rolled_back_from"   # on a rollback's PushedModel: the version it replaced
ROLLBACK = "Rollback"             # execution type of a rollback

# The pipeline's context: the last settled run and the fingerprint of its inputs (pipeline/unchanged.py).
UNCHANGED_SINCE_KEY = "unchanged_since"

# CandidateVerdict: what became of a run's candidate.
REJECTIONS_KEY = "rejections"     # JSON list of {"gate": MODEL_GATE | SERVING_GATE, "reasons": [...], "gaps": [...]}
RUN_KEY = "run_id"
MODEL_GATE, SERVING_GATE = "model", "serving"

# --- files inside artifacts -------------------------------------------------------------------
PROBLEMS_FILE = "problems.json"               # DataGateResult: each problem of the span in plain words
DRIFT_REPORT_FILE = "drift.json"              # DriftReport: every measure of every feature
FAIRNESS_REPORT_JSON = "fairness.json"        # ModelEvaluation: per-slice metrics and gates
FAIRNESS_REPORT_CSV = "fairness.csv"
FAIRNESS_REPORT_PNG = "fairness.png"
SERVING_REPORT_FILE = "serving_validation.json"   # InfraBlessing: load time, latencies, problems
CANARY_FILE = "canary_predictions.json"       # ModelRun: the trained model's own scores of the first eval rows
WARM_START_FILE = "warm_start.json"           # ModelRun of a fine-tune: the base model and phases
HISTORY_FILE = "history.json"                 # ModelRun: Keras' per-epoch losses and metrics
PUSH_FILE = "push.json"                       # PushedModel: what was copied where
STATISTICS_FILE = "FeatureStats.pb"           # ExampleStatistics, in Split-<name>/: TFDV's DatasetFeatureStatisticsList

# --- the serving base (TF Serving's model folder) ---------------------------------------------
STAGING_PREFIX = ".incoming-"     # a version being copied in; never a number, so TF Serving ignores it
BUNDLE_PREFIX = "deploy-"         # a version's deployment bundle
TPU_FUNCTION_ALIAS = "tpu_func"   # the SavedModel function alias the Cloud TPU Inference Converter converts

# --- exit codes of `python -m pipeline` ---------------------------------------------------------
EXIT_CODES = {"ok": 0, "failed": 1, "config_error": 2, "data_blocked": 3, "model_blocked": 4, "serving_blocked": 5,
              "busy": 6}
