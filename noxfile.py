"""Nox sessions: the same test and lint matrix on a laptop and in GitHub Actions.

Tags: `nox -t quick` (lint + unit), `nox -t ci` (everything CI's jobs run).
Every session passes its positional arguments to its test runner: `nox -s unit -- -k settings`.
"""

from __future__ import annotations

import nox

from devenv import lint as lint_tools

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "unit", "integration"]

PYPROJECT = nox.project.load_toml("pyproject.toml")
PLATFORM = "services/platform"


def install(session: nox.Session, *groups: str) -> None:
    """The automation package and the named dependency groups of pyproject.toml."""
    session.install("-e", ".", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session(tags=["quick", "ci"])
def lint(session: nox.Session) -> None:
    """Ruff, mypy, gofmt/go vet, actionlint, and compose.yaml through the real Compose loader."""
    install(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("python", "-m", "devenv.lint")  # compose.yaml through the Compose v2 loader
    if lint_tools.workflows():
        session.run(lint_tools.actionlint(), *lint_tools.workflows(), external=True)


@nox.session(tags=["quick", "ci"])
def unit(session: nox.Session) -> None:
    """Automation unit tests: no processes started, fast."""
    install(session, "test")
    session.run("pytest", "tests/unit", *session.posargs)


@nox.session(tags=["ci"])
def integration(session: nox.Session) -> None:
    """The native backend on real PostgreSQL, Kafka, Mosquitto and Traefik processes."""
    install(session, "test")
    session.run("pytest", "-m", "integration", "tests/integration", *session.posargs)
