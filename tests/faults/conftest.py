"""Faults: the running private stack (`nox -s faults` starts one), driven from outside while
real faults hit the real processes. Each test asserts zero lost and zero duplicated effects
and records one summary line (sent, stored, duplicates, time to recover), printed at the end.
The helpers are in tests/support (faults: what breaks the stack; delivery: what is sent and
counted)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.settings import load
from devenv.stack import isolated_env, platform_running
from tests.support.clients import Platform
from tests.support.delivery import OUTCOMES, Publisher
from tests.support.faults import BACKEND
from tests.support.traced import pytest_runtest_makereport  # noqa: F401 (the hook)

STATE = Path(f".state/faults-{BACKEND}").resolve()  # every component's log after a run


@pytest.fixture(scope="session", name="stack")
def private_stack() -> Iterator[Platform]:
    """A fresh private stack on free ports, started by this process (so it can reap what a
    fault kills), stopped at the end even on failure (a docker one in its Compose project,
    COMPOSE_PROJECT_NAME)."""
    shutil.rmtree(STATE, ignore_errors=True)
    env = {**isolated_env(STATE, tracing=True), "INFRA_BACKEND": BACKEND}
    settings = load(environ={**os.environ, **env})
    with platform_running(settings, say=lambda line: print(line, flush=True)):
        yield Platform(settings)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if OUTCOMES:
        terminalreporter.section("faults: one line per fault")
        for outcome in OUTCOMES:
            terminalreporter.write_line(outcome.line())


@pytest.fixture
def publisher(stack: Platform) -> Iterator[Publisher]:
    pub = Publisher(stack.settings)
    yield pub
    pub.close()
