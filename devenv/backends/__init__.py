"""The infrastructure backends and the one interface callers use: they never branch on it.

The backend that started a stack is recorded in its state folder and used until `down`: a
Docker engine that starts in between must not make `down` look in the wrong place.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devenv import compose, state
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

NO_ENGINE = (
    "INFRA_BACKEND=docker but no Docker engine answers: start Docker, "
    "or set INFRA_BACKEND=native to run the infrastructure as host processes"
)


def docker_engine_answers(timeout: float = 5.0) -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return result.returncode == 0


def docker_problem() -> str | None:
    """Why the docker backend cannot run here (None when it can)."""
    if not docker_engine_answers():
        return NO_ENGINE
    try:
        compose.binary()
    except RuntimeError as exc:
        return str(exc)
    return None


def select(settings: Settings, say: Say = print) -> Backend:
    """The backend recorded for a running stack; otherwise INFRA_BACKEND=docker|native forces
    one and auto picks docker when an engine answers."""
    recorded = state.recorded_backend(settings.state_dir)
    choice = recorded or settings.INFRA_BACKEND
    if choice == "auto":
        choice = "docker" if docker_engine_answers() else "native"
    elif choice == "docker" and recorded is None and (problem := docker_problem()):
        raise InfraError(problem)
    inner: Backend = (
        DockerBackend(settings, say) if choice == "docker" else NativeBackend(settings, say)
    )
    return Recorded(inner, settings.state_dir)


class Recorded:
    """A backend that writes down its name when it starts something and forgets it when
    everything is down."""

    def __init__(self, inner: Backend, state_dir: Path) -> None:
        self.inner = inner
        self.state_dir = state_dir
        self.name = inner.name

    def up(self, names: list[str]) -> None:
        state.record_backend(state.claim(self.state_dir), self.name)
        self.inner.up(names)

    def down(self, names: list[str]) -> None:
        self.inner.down(names)
        if not names:
            state.forget_backend(self.state_dir)

    def status(self) -> list[ComponentStatus]:
        return self.inner.status()

    def logs(self, name: str | None, follow: bool, lines: int) -> None:
        self.inner.logs(name, follow, lines)

    def clean(self) -> None:
        self.inner.clean()

    def remove_data(self) -> None:
        self.inner.remove_data()

    def upstream_hosts(self) -> list[str]:
        return self.inner.upstream_hosts()
