"""Config-driven TFX pipeline: config → ingest → validate → transform → train → evaluate → push."""
import os

# tf.keras is Keras 2 (tf_keras, the trainer's Keras) in every process the pipeline runs in: tf.Transform requires
# it, and MinDiff's MinDiffModel subclasses tf.keras.Model. TF 2.16 reads this once, when tf.keras is first used,
# and importing TFX already uses it; so here, before any of it. The Dockerfile sets it for the orchestrators' image.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
