"""Go command-line tools the sessions use, `go install`ed once per version into the tool
cache from the Go module proxy (their PyPI wrappers download from outside the registries)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

TOOL_CACHE = Path.home() / ".cache" / "platform-devenv" / "bin"
ACTIONLINT = "github.com/rhysd/actionlint/cmd/actionlint@v1.7.7"
# Runs `go test -json` and writes JUnit XML from it, so Go results read like pytest's.
GOTESTSUM = "gotest.tools/gotestsum@v1.13.0"


def installed(module: str) -> str:
    """The binary of `module@version`, installed on first use; a new version installs anew."""
    path, version = module.rsplit("@", 1)
    folder = TOOL_CACHE / f"{path.rsplit('/', 1)[-1]}@{version}"
    binary = folder / path.rsplit("/", 1)[-1]
    if not binary.exists():
        go = shutil.which("go")
        if go is None:
            raise RuntimeError(f"go is needed to install {module}: run ./scripts/bootstrap")
        env = {**os.environ, "GOBIN": str(folder)}
        subprocess.run([go, "install", module], env=env, check=True)
    return str(binary)
