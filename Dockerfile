# The image every node runs in under Kubeflow Pipelines / Vertex AI (deploy.image in pipeline.yaml): the
# lock and this package, installed by the same script `make` uses (.ci/install), so the custom components
# and user modules (components.transform.preprocessing_fn, components.trainer.run_fn) import as installed.
# TFX's KFP v2 launcher (python -m tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor) is the
# command of each task, set in the compiled pipeline: no entrypoint here.
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/taxi-pipeline:TAG .
# Docker is not on the machines this was written on: README, "Orchestrators", says what ran.
FROM python:3.11-slim-bookworm
# tf.keras as Keras 2 before TFX's launcher first uses it (pipeline/__init__.py says why)
ENV TF_USE_LEGACY_KERAS=1

WORKDIR /pipeline
COPY requirements.lock pyproject.toml ./
COPY .ci/install .ci/install
COPY components components
COPY pipeline pipeline
RUN bash .ci/install /usr/local/bin/python && rm -rf /root/.cache/pip
