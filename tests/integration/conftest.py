"""Fixtures of the integration tests: a private stack, cleaned away afterwards, and a reaper
for processes a test started outside of one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devenv.proc import group
from tests.integration.test_native_stack import Stack


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A private native stack (own ports, own state folder); `inv clean` afterwards, so no
    data is left behind (PostgreSQL's may live outside the state folder)."""
    s = Stack(tmp_path / "state")
    yield s
    s.inv("clean", "--yes", check=False)


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Pids to kill (with their groups and descendants) whatever the test's outcome."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        group.stop_group(pid, 1)
