"""The docker backend: ADR-0007's way, `docker compose` on compose.yaml.

No engine runs on our development machines, so this module is unit-tested against the exact
commands it runs (`runner` is injectable); write it as if Docker Desktop runs it tomorrow.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from devenv import compose, ports
from devenv.backends import stand_ins
from devenv.backends.base import ComponentStatus, InfraError, Say
from devenv.settings import REPO_ROOT, Settings

Runner = Callable[..., subprocess.CompletedProcess[str]]
PS_ARGS = ("ps", "--all", "--format", "json")


class DockerBackend:
    name = "docker"

    def __init__(self, settings: Settings, say: Say = print, runner: Runner = subprocess.run):
        self.settings = settings
        self.say = say
        self.runner = runner
        self.components = compose.components(settings.as_env())

    def command(self, *args: str) -> list[str]:
        files = stand_ins.compose_files(self.settings)  # + the stand-ins under INFRA_IMAGES=local
        flags = [arg for path in files for arg in ("-f", str(path))]
        return ["docker", "compose", "--project-directory", str(REPO_ROOT), *flags, *args]

    def up(self, names: list[str]) -> None:
        services = self._services(names)
        running = {row.service for row in self.status() if row.state == "running"}
        todo = [s for s in services if s not in running]
        if not todo:
            self.say(f"already up: {', '.join(services)} (docker)")
            return
        ports.check_free(
            {
                p.host_port: self.settings.port_owner().get(p.host_port, "its *_PORT setting")
                for c in self.components
                if c.service in todo
                for p in c.ports
            }
        )
        stand_ins.ensure(self.settings, self.say)  # INFRA_IMAGES=local: the stand-ins, built here
        t0 = time.monotonic()
        try:
            result = self._run(*self._up_args(todo), check=False)
        except KeyboardInterrupt:
            self.say("interrupted: stopping what this `inv up` started")
            self._run("stop", *todo, check=False)
            raise
        if result.returncode != 0:
            details = self._run("logs", "--no-color", "--tail", "20", *todo, check=False).stdout
            self._run("stop", *todo, check=False)
            raise InfraError(
                f"docker compose up failed (exit {result.returncode}); stopped {', '.join(todo)}.\n"
                f"{result.stderr.strip()}\nLast log lines:\n{details}"
            )
        self.say(f"all healthy in {time.monotonic() - t0:.1f}s (docker)")

    def dry_run_up(self, names: list[str]) -> list[str]:
        """The commands `up` runs on a project where nothing runs yet, as shell lines."""
        return [
            shlex.join(self.command(*PS_ARGS)),
            shlex.join(self.command(*self._up_args(self._services(names)))),
        ]

    def _up_args(self, services: list[str]) -> list[str]:
        timeout = str(int(self.settings.UP_TIMEOUT))
        return ["up", "--detach", "--wait", "--wait-timeout", timeout, *services]

    def down(self, names: list[str]) -> None:
        if names:
            self._run("stop", *self._services(names))
            self._run("rm", "--force", *self._services(names))
        else:
            self._run("down", "--remove-orphans")

    def clean(self) -> None:
        self.remove_data()
        self.say("deleted the project's containers and volumes")

    def remove_data(self) -> None:
        self._run("down", "--volumes", "--remove-orphans")

    def status(self) -> list[ComponentStatus]:
        result = self._run(*PS_ARGS, check=False)
        rows = {row["Service"]: row for row in parse_ps(result.stdout)}
        statuses = []
        for component in self.components:
            row = rows.get(component.service)
            address = f"127.0.0.1:{component.main_port.host_port}"
            if row is None:
                statuses.append(
                    ComponentStatus(
                        component.service,
                        component.role,
                        self.name,
                        "stopped",
                        None,
                        address,
                        "-",
                        None,
                    )
                )
                continue
            health = row.get("Health") or ""
            statuses.append(
                ComponentStatus(
                    service=component.service,
                    role=component.role,
                    backend=self.name,
                    state=row.get("State", "unknown"),
                    healthy=None if not health else health == "healthy",
                    address=address,
                    ident=str(row.get("ID", "-"))[:12],
                    uptime=_uptime(row.get("CreatedAt")) if row.get("State") == "running" else None,
                )
            )
        return statuses

    def logs(self, name: str | None, follow: bool, lines: int) -> None:
        args = ["logs", "--tail", str(lines)] + (["--follow"] if follow else [])
        try:
            self._run(*args, *self._services([name] if name else []), capture=False)
        except KeyboardInterrupt:
            return

    def _services(self, names: Sequence[str]) -> list[str]:
        if not names:
            return [c.service for c in self.components]
        try:
            return [compose.find(self.components, n).service for n in names]
        except KeyError as exc:
            raise InfraError(str(exc.args[0])) from None

    def _run(
        self, *args: str, check: bool = True, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = self.command(*args)
        self.say(f"$ {' '.join(argv[:2] + list(args))}")
        result = self.runner(
            argv,
            env={**os.environ, **self.settings.as_env()},
            capture_output=capture,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise InfraError(
                f"`{' '.join(argv)}` failed (exit {result.returncode}): "
                f"{(result.stderr or '').strip()}"
            )
        return result


def parse_ps(output: str) -> list[dict[str, Any]]:
    """`compose ps --format json` prints one JSON object per line (v2.21+) or one array."""
    output = output.strip()
    if not output:
        return []
    if output.startswith("["):
        return list(json.loads(output))
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def _uptime(created_at: str | None) -> float | None:
    if not created_at:
        return None
    try:
        created = datetime.strptime(created_at[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return max(0.0, time.time() - created.timestamp())
