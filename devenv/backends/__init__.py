"""The infrastructure backends and the one interface callers use: they never branch on it."""

from __future__ import annotations

import shutil
import subprocess

from devenv.backends.base import (
    STATUS_HEADER,
    Backend,
    ComponentStatus,
    InfraError,
    Say,
)
from devenv.backends.docker import DockerBackend
from devenv.backends.native import NativeBackend
from devenv.settings import Settings

__all__ = ["STATUS_HEADER", "Backend", "ComponentStatus", "InfraError", "select"]


def docker_engine_answers(timeout: float = 5.0) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True, timeout=timeout, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def select(settings: Settings, say: Say = print) -> Backend:
    """INFRA_BACKEND=docker|native forces one; auto picks docker when an engine answers."""
    choice = settings.INFRA_BACKEND
    if choice == "auto":
        choice = "docker" if docker_engine_answers() else "native"
    if choice == "docker":
        return DockerBackend(settings, say)
    return NativeBackend(settings, say)
