"""Deployment bundle written beside each pushed version: how to serve it with TF Serving.

From the `serving:` section: TF Serving's models.config (TF Serving's own ModelServerConfig proto)
and batching_parameters.txt, Kubernetes Deployment + Service (+ ConfigMap) for the configured
target, the exact `docker run` commands for CPU and GPU, and for a TPU target the Cloud TPU
Inference Converter's options and command.
"""
from __future__ import annotations

import importlib.metadata
import os
import shlex

import yaml
from google.protobuf import text_format

from components.contracts import TPU_FUNCTION_ALIAS
from components.settings import Batching, ServingSection, TpuSettings

GRPC_PORT, REST_PORT = 8500, 8501
CONFIG_MOUNT = "/models/config"
CONVERTED_SUFFIX = "-tpu"  # the converted model's base, beside the pushed one


def serving_release() -> str:
    """TF Serving's release that matches this TensorFlow: the one tensorflow-serving-api was cut from."""
    return importlib.metadata.version("tensorflow-serving-api")


def image(serving: ServingSection, target: str) -> str:
    if target == "tpu":
        return serving.tpu.serving_image
    if serving.image:
        return serving.image
    return f"tensorflow/serving:{serving_release()}" + ("-gpu" if target == "gpu" else "")


def models_config(model_name: str, base_path: str) -> str:
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    model = config.model_config_list.config.add()
    model.name = model_name
    model.base_path = base_path
    model.model_platform = "tensorflow"
    model.model_version_policy.latest.num_versions = 1
    return text_format.MessageToString(config)


def batching_parameters(batching: Batching) -> str:
    """TF Serving's BatchingParameters in text format (each field a wrapper message)."""
    lines = [f"{key} {{ value: {getattr(batching, key)} }}"
             for key in ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")]
    lines += [f"allowed_batch_sizes: {size}" for size in batching.allowed_batch_sizes]
    return "\n".join(lines) + "\n"


def converter_options(tpu: TpuSettings) -> str:
    """Cloud TPU Inference Converter options: the aliased function goes to the TPU, batched in-graph."""
    sizes = "".join(f"    allowed_batch_sizes: {size}\n" for size in tpu.batch_sizes)
    return (f'tpu_functions {{\n  function_alias: "{TPU_FUNCTION_ALIAS}"\n}}\n'
            f"batch_options {{\n    num_batch_threads: {tpu.num_batch_threads}\n"
            f"    max_batch_size: {max(tpu.batch_sizes)}\n"
            f"    batch_timeout_micros: {tpu.batch_timeout_micros}\n{sizes}"
            f"    max_enqueued_batches: 100\n}}\n")


def server_args(model_name: str, target: str) -> list[str]:
    args = [f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
            f"--model_config_file={CONFIG_MOUNT}/models.config", "--file_system_poll_wait_seconds=30"]
    if target == "gpu":
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_MOUNT}/batching_parameters.txt"]
    return args


def docker_commands(serving: ServingSection, model_dir: str, bundle_dir: str) -> str:
    """`docker run` for CPU and GPU: the model base and this bundle mounted read-only."""
    name = serving.model_name
    lines = ["#!/bin/sh", "# TF Serving on this pushed model; gRPC on 8500, REST on 8501.", ""]
    for target, extra in (("cpu", []), ("gpu", ["--gpus", "all"])):
        command = ["docker", "run", "--rm", *extra, "-p", f"{GRPC_PORT}:{GRPC_PORT}", "-p", f"{REST_PORT}:{REST_PORT}",
                   "--mount", f"type=bind,source={model_dir},target=/models/{name},readonly",
                   "--mount", f"type=bind,source={bundle_dir},target={CONFIG_MOUNT},readonly",
                   image(serving, target), *server_args(name, target)]
        lines += [f"# {target.upper()}", ("" if target == serving.target else "# ") + shlex.join(command), ""]
    return "\n".join(lines)


def tpu_convert_command(serving: ServingSection, model_dir: str, version: str, bundle_dir: str) -> str:
    converted = f"{model_dir}{CONVERTED_SUFFIX}/{version}"
    command = ["docker", "run", "--rm",
               "--mount", f"type=bind,source={model_dir}/{version},target=/tmp/input,readonly",
               "--mount", f"type=bind,source={converted},target=/tmp/output",
               serving.tpu.converter_image, "--input_model_dir=/tmp/input", "--output_model_dir=/tmp/output",
               f"--converter_options_string=$(cat {shlex.quote(bundle_dir)}/tpu_converter_options.pbtxt)"]
    return ("#!/bin/sh\n# Cloud TPU Inference Converter: the tpu_func alias onto the TPU, batched in-graph.\n"
            f"set -e\nmkdir -p {shlex.quote(converted)}\n"
            + " ".join(shlex.quote(part) if not part.startswith("--converter_options_string") else f'"{part}"'
                       for part in command) + "\n")


def kubernetes_manifests(serving: ServingSection) -> list[dict]:
    name, target = serving.model_name, serving.target
    app = f"{name}-serving"
    resources = serving.resources
    limits = {"cpu": resources.cpu, "memory": resources.memory}
    pod: dict = {}
    if target == "gpu":
        limits["nvidia.com/gpu"] = resources.accelerators
        pod["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    elif target == "tpu":
        limits["google.com/tpu"] = resources.accelerators
        pod["nodeSelector"] = {"cloud.google.com/gke-tpu-accelerator": serving.tpu.accelerator,
                               "cloud.google.com/gke-tpu-topology": serving.tpu.topology}
    models_claim = f"{name}{CONVERTED_SUFFIX}-models" if target == "tpu" else f"{name}-models"
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{app}-config"},
        "data": {"models.config": models_config(name, f"/models/{name}"),
                 "batching_parameters.txt": batching_parameters(serving.batching)},
    }
    container = {
        "name": "tf-serving", "image": image(serving, target), "args": server_args(name, target),
        "ports": [{"name": "grpc", "containerPort": GRPC_PORT}, {"name": "http", "containerPort": REST_PORT}],
        "resources": {"requests": dict(limits), "limits": limits},
        "volumeMounts": [{"name": "models", "mountPath": f"/models/{name}", "readOnly": True},
                         {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
        "readinessProbe": {"httpGet": {"path": f"/v1/models/{name}", "port": REST_PORT},
                           "initialDelaySeconds": 5, "periodSeconds": 5},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            "replicas": serving.replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}}, "spec": {
                **pod, "containers": [container],
                "volumes": [{"name": "models", "persistentVolumeClaim": {"claimName": models_claim, "readOnly": True}},
                            {"name": "config", "configMap": {"name": f"{app}-config"}}]}},
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
        "spec": {"selector": {"app": app}, "ports": [
            {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT},
            {"name": "http", "port": REST_PORT, "targetPort": REST_PORT}]},
    }
    return [config_map, deployment, service]


def write_bundle(bundle_dir: str, serving: ServingSection, model_dir: str, version: str) -> list[str]:
    """The bundle's files for one pushed version; returns their names."""
    name = serving.model_name
    files = {
        "models.config": models_config(name, f"/models/{name}"),
        "batching_parameters.txt": batching_parameters(serving.batching),
        "kubernetes.yaml": yaml.safe_dump_all(kubernetes_manifests(serving), sort_keys=False),
        "docker_run.sh": docker_commands(serving, model_dir, bundle_dir),
    }
    if serving.target == "tpu":
        files["tpu_converter_options.pbtxt"] = converter_options(serving.tpu)
        files["tpu_convert.sh"] = tpu_convert_command(serving, model_dir, version, bundle_dir)
    os.makedirs(bundle_dir, exist_ok=True)
    for file_name, text in files.items():
        with open(os.path.join(bundle_dir, file_name), "w") as handle:
            handle.write(text)
    return sorted(files)
