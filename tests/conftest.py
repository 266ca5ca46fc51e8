"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devenv.aws import config, render


@pytest.fixture
def no_env_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "absent.env"


@pytest.fixture(scope="module")
def dev_definition() -> dict[str, Any]:
    """The dev env's task definition rendered offline, in the region its config names."""
    cfg = config.load("dev")
    return render.render(cfg, render.Target(region=cfg.region, tag="0123456789ab"))
