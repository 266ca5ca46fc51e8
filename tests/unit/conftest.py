"""The unit tier stays pure and quick: tests that drive heavy real tools are marked `tools`
here, by what they use, and run in `nox -s tools` instead of the unit cells. New tests that
use the same fixtures or live in the same modules follow automatically. The moto account's
fixtures live here so that every `inv aws.*` test module shares them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from devenv import declared
from tests.unit.aws_account import REGION

# fixture -> the heavy tool behind it
TOOL_FIXTURES = {"aws_env": "moto's full AWS emulation"}
# module -> why all of it drives real tools
TOOL_MODULES = {"test_build.py": "real `go build` runs and venvs made by uv and pip"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TOOL_FIXTURES.keys() & set(getattr(item, "fixturenames", ())) or (
            item.path.name in TOOL_MODULES
        ):
            item.add_marker(pytest.mark.tools)


@pytest.fixture(autouse=True)
def declared_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting at its declared default unless the test sets it: the caller's environment
    (`.ci/run` exports INFRA_IMAGES=local and REQUIRE_DOCKER=1, a developer may export a port)
    must not change what a unit test sees."""
    for key in [*declared.settings(), "REQUIRE_DOCKER"]:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # moto advances a task one state per DescribeTasks by default; real tasks stay RUNNING.
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**9})
    try:
        with mock_aws():
            yield
    finally:
        state_manager.unset_transition("ecs::task")


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine where boto3 finds no credentials anywhere in its chain."""
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
