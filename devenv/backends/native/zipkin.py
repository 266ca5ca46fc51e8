"""The trace viewer: the Zipkin server's exec jar (Maven Central, `io.zipkin:zipkin-server`,
classifier `exec`) on the JVM that native Kafka needs anyway, with compose.yaml's zipkin
environment (in-memory storage, its bound, the JVM options), listening on 127.0.0.1 only.

The jar comes once into the tool cache (Maven resolves it, as it does Kafka's jars); the
spans live in memory, so there is no data to keep or delete.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from devenv.backends.native.needs import JAVA, MAVEN
from devenv.backends.native.recipe import Launch, Recipe, Say, require
from devenv.compose import load_raw
from devenv.proc import readiness

ZIPKIN_VERSION = "3.5.1"
ARTIFACT = f"io.zipkin:zipkin-server:{ZIPKIN_VERSION}:jar:exec"


class Zipkin(Recipe):
    program = "zipkin"
    needs = (JAVA, MAVEN)

    def listen_ports(self) -> list[int]:
        return [self.settings.ZIPKIN_PORT]

    def prepare(self, say: Say) -> None:
        require(JAVA)
        (self.home / "tmp").mkdir(parents=True, exist_ok=True)
        ensure_jar(self.cache, say)

    def launch(self) -> Launch:
        environment = compose_environment()
        port = str(self.settings.ZIPKIN_PORT)
        return Launch(
            argv=[
                require(JAVA),
                *shlex.split(environment.pop("JAVA_OPTS", "")),
                # Its temporary files in its folder: its command line names the state folder.
                f"-Djava.io.tmpdir={self.home / 'tmp'}",
                "-jar", str(jar_path(self.cache)),
                # Armeria binds every address unless a port names one; Spring replaces a
                # list whole, so the port is given in full.
                "--armeria.ports[0].ip=127.0.0.1",
                f"--armeria.ports[0].port={port}",
                "--armeria.ports[0].protocols[0]=http",
            ],
            # QUERY_PORT is also the monolith's setting: the supervisor's environment may
            # carry it, so the viewer's own value is given explicitly.
            env={**environment, "QUERY_PORT": port},
        )  # fmt: skip

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        return (readiness.Http(f"http://127.0.0.1:{self.settings.ZIPKIN_PORT}/health"),)


def compose_environment() -> dict[str, str]:
    """compose.yaml's zipkin environment: one source for both backends."""
    return {k: str(v) for k, v in load_raw()["services"]["zipkin"]["environment"].items()}


def jar_path(cache: Path) -> Path:
    return cache / f"zipkin-{ZIPKIN_VERSION}" / f"zipkin-server-{ZIPKIN_VERSION}-exec.jar"


def ensure_jar(cache: Path, say: Say) -> Path:
    """The Zipkin server's exec jar in the tool cache, fetched by Maven the first time."""
    jar = jar_path(cache)
    if jar.exists():
        return jar
    mvn = require(MAVEN)
    say(f"zipkin: fetching {ARTIFACT} from Maven Central (once, 131 MB)")
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={ARTIFACT}",
             f"-DoutputDirectory={tmp}"],
            capture_output=True, text=True, check=False, cwd=tmp,
        )  # fmt: skip
        staged = Path(tmp) / jar.name
        if result.returncode != 0 or not staged.exists():
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise RuntimeError(f"mvn could not fetch {ARTIFACT}:\n{tail}")
        jar.parent.mkdir(parents=True, exist_ok=True)
        # Across file systems a move is a copy: a cut-off one must not pass for the jar.
        partial = jar.with_name(jar.name + ".part")
        shutil.move(str(staged), partial)
        os.replace(partial, jar)
    return jar
