"""TF Serving's model base (`<serving.base>/<model_name>/`): atomic pushes, pruning, and clean-up.

TF Serving's file-system poller loads any folder of `<base>/<model>/` whose name is a number. TFX's
own Pusher copies file by file into `<version>/`, so an interrupted push leaves a partial version
that the poller may try to load. Here the version is written completely under a hidden staging
name (`.incoming-<version>`, never a number) and then renamed into place with one rename(2):
the poller sees no version or a whole one. Staging left by an interrupted push is removed by the
next push. Only the newest `versions_to_keep` versions stay. Used by the Pusher and by `rollback`;
imports neither TFX nor TensorFlow.
"""
from __future__ import annotations

import logging
import os
import shutil
import time

from components import deployment
from components.contracts import BUNDLE_PREFIX, STAGING_PREFIX
from components.settings import ServingSection

_log = logging.getLogger(__name__)


def versions(model_base: str) -> list[int]:
    """Version numbers TF Serving would see, oldest first."""
    if not os.path.isdir(model_base):
        return []
    return sorted(int(name) for name in os.listdir(model_base)
                  if name.isdigit() and os.path.isdir(os.path.join(model_base, name)))


def served_version(model_base: str) -> str | None:
    """The version TF Serving's `latest` policy serves: the highest."""
    found = versions(model_base)
    return str(found[-1]) if found else None


def remove_staging(model_base: str) -> list[str]:
    """Remove what an interrupted push left (staging, a bundle without its version); returns the names."""
    if not os.path.isdir(model_base):
        return []
    names = os.listdir(model_base)
    left = sorted(name for name in names if name.startswith(STAGING_PREFIX)
                  or (name.startswith(BUNDLE_PREFIX) and name.removeprefix(BUNDLE_PREFIX) not in names))
    for name in left:
        _log.warning("Removing %s, left by an interrupted push", os.path.join(model_base, name))
        shutil.rmtree(os.path.join(model_base, name))
    return left


def push_version(model_path: str, model_base: str, serving: ServingSection) -> tuple[str, str]:
    """Copy a SavedModel in as a new version, atomically; write its bundle; prune old versions.

    Returns (version, serving path)."""
    remove_staging(model_base)
    os.makedirs(model_base, exist_ok=True)
    existing = versions(model_base)
    version = str(max(int(time.time()), (existing[-1] + 1) if existing else 0))
    staging = os.path.join(model_base, STAGING_PREFIX + version)
    bundle = os.path.join(model_base, BUNDLE_PREFIX + version)
    serving_path = os.path.join(model_base, version)
    try:
        shutil.copytree(model_path, staging)
        deployment.write_bundle(bundle, serving, model_base, version)
        os.rename(staging, serving_path)  # the one step TF Serving's poller can observe
    except BaseException as failure:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(bundle, ignore_errors=True)
        if isinstance(failure, shutil.Error):   # copytree's list of (source, target, reason), one per file
            source, _, reason = failure.args[0][0]
            raise OSError(f"copying the model into {model_base} failed at {source}: {reason}; nothing was pushed") from None
        raise
    prune(model_base, serving.versions_to_keep)
    return version, serving_path


def prune(model_base: str, keep: int) -> list[int]:
    """Delete all but the newest `keep` versions (and their bundles); returns the versions deleted."""
    old = versions(model_base)[:-keep]
    for version in old:
        shutil.rmtree(os.path.join(model_base, str(version)))
        shutil.rmtree(os.path.join(model_base, f"{BUNDLE_PREFIX}{version}"), ignore_errors=True)
    return old
