"""Fixtures of the integration tests: a private stack, cleaned away afterwards, and a reaper
for processes a test started outside of one."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.proc import group
from tests.support.stack import Stack, cleaned

# Tests interrupt `inv up` / `inv run` with SIGINT as a terminal would. A suite started in the
# background by a non-interactive shell inherits SIGINT as ignored, and an ignored signal stays
# ignored in every child: Python there would install no KeyboardInterrupt handler. A handler of
# our own is reset to the default across exec, so the children get theirs back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A private native stack (own ports, own state folder); `inv clean` afterwards, so no
    data is left behind (PostgreSQL's may live outside the state folder)."""
    with cleaned(tmp_path / "state") as s:
        yield s


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids to kill (with their groups and descendants) whatever the test's outcome."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        group.stop_group(pid, 1)
