"""Nox sessions: the same test and lint matrix on a laptop and in GitHub Actions.

Tags: `nox -t quick` (lint + unit), `nox -t ci` (everything CI runs).
Every session passes its positional arguments to its pytest run: `nox -s unit -- -k settings`.
Sessions that need infrastructure start it through the project's own backend, say so, and
stop afterwards what they started.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

from devenv import lint as lint_tools
from devenv import settings
from devenv.stack import infra_running, isolated_env, platform_running

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "unit", "component", "contract", "integration", "e2e"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
AI = "services/ai-inference"
AI_PYPROJECT = nox.project.load_toml(f"{AI}/pyproject.toml")
PLATFORM = "services/platform"
E2E_STATE = Path(".state/e2e").resolve()  # every component's log after a run (CI uploads it)


def install(session: nox.Session, *groups: str) -> None:
    """The automation package and the named dependency groups of pyproject.toml."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, *groups))


def install_ai(session: nox.Session, *groups: str) -> None:
    """The AI inference service from its own pyproject.toml, with its dependency groups."""
    session.install("-e", AI, *nox.project.dependency_groups(AI_PYPROJECT, *groups))


def go(session: nox.Session, *args: str, env: dict[str, str] | None = None) -> None:
    with session.chdir(PLATFORM):
        session.run("go", *args, external=True, env=env)


@nox.session(tags=["quick", "ci"])
def lint(session: nox.Session) -> None:
    """Ruff, mypy, gofmt, go vet, actionlint, and compose.yaml through the real Compose loader."""
    install(session, "lint")
    install_ai(session, "lint", "test")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    with session.chdir(AI):
        session.run("mypy")
    with session.chdir(PLATFORM):
        unformatted = session.run("gofmt", "-l", ".", external=True, silent=True)
    if unformatted:
        session.error(f"gofmt would change:\n{unformatted}run `gofmt -w {PLATFORM}`")
    go(session, "vet", "-tags", "component,integration", "./...")
    session.run("python", "-m", "devenv.lint")  # compose.yaml through the Compose v2 loader
    session.run("python", "-m", "devenv.aws.validate")  # the ECS task definition, by botocore
    session.run("python", "-m", "devenv.aws.dockerfiles")
    session.run(lint_tools.actionlint(), *lint_tools.workflows(), external=True)


@nox.session(tags=["quick", "ci"])
def unit(session: nox.Session) -> None:
    """Unit tests, no processes: the automation, the AI scoring, the Go packages (-race)."""
    install(session, "test")
    install_ai(session, "test")
    session.run("pytest", "tests/unit", *session.posargs)
    with session.chdir(AI):
        session.run("pytest", "tests/test_scoring.py", "tests/test_settings.py", *session.posargs)
    go(session, "test", "-race", "-count=1", "./...")


@nox.session(tags=["ci"])
def component(session: nox.Session) -> None:
    """Each server through its client library, on a real PostgreSQL; outbound deps faked."""
    install_ai(session, "test")
    with session.chdir(AI):
        session.run("pytest", "tests/test_api.py", "tests/test_client.py", *session.posargs)
    current = settings.load()
    session.log(f"component tests use PostgreSQL at 127.0.0.1:{current.POSTGRES_PORT}")
    with infra_running(current, ["db"], say=session.log):
        go(session, "test", "-race", "-count=1", "-tags=component", "./...", env=current.as_env())


@nox.session(tags=["ci"])
def contract(session: nox.Session) -> None:
    """schemas/: valid, examples as named, OpenAPI <-> schemas, Go and Python on the same files."""
    install(session, "test")
    install_ai(session, "test")
    session.run("pytest", "tests/contract", *session.posargs)
    with session.chdir(AI):
        session.run("pytest", "tests/test_contract.py", *session.posargs)
    go(session, "test", "-count=1", "./internal/contracts/...")


@nox.session(tags=["ci"])
def integration(session: nox.Session) -> None:
    """Real processes: the native backend, the supervisor and reload; the relay on real Kafka."""
    install(session, "test")
    install_ai(session)  # the Go anomaly-loop test runs the real inference service
    session.run("pytest", "-m", "integration", "tests/integration", *session.posargs)
    current = settings.load()
    python = str(Path(str(session.virtualenv.location)) / "bin" / "python")
    env = {**current.as_env(), "AI_INFERENCE_PYTHON": python}
    with infra_running(current, ["db", "bus", "mqtt"], say=session.log):
        go(session, "test", "-count=1", "-tags=integration", "./...", env=env)


@nox.session(tags=["ci"])
def e2e(session: nox.Session) -> None:
    """The whole stack, driven from outside (gateway, MQTT). `-- --reuse`: the running stack."""
    install(session, "test")
    args = [arg for arg in session.posargs if arg != "--reuse"]
    if len(args) < len(session.posargs):
        session.run("pytest", "tests/e2e", *args)
        return
    shutil.rmtree(E2E_STATE, ignore_errors=True)  # cold: a fresh private stack every run
    env = isolated_env(E2E_STATE)
    session.log(f"starting a private stack on free ports; state and logs in {E2E_STATE}")
    with platform_running(settings.load(environ={**os.environ, **env}), say=session.log):
        session.run("pytest", "tests/e2e", *args, env=env)


@nox.session(tags=["ci"])
def faults(session: nox.Session) -> None:
    """Real faults against a private stack: kill -9, a paused app, poison records, 2 apps."""
    install(session, "test")
    # The suite starts the stack itself (tests/faults/conftest.py): it must be the parent of
    # the processes it kills, to reap them as `inv up`'s exit does.
    session.run("pytest", "-p", "no:cacheprovider", "tests/faults", "-v", *session.posargs)
