"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def no_env_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "absent.env"
