"""The unit tier stays pure and quick: tests that drive heavy real tools are marked `tools`
here, by what they use, and run in `nox -s tools` instead of the unit cells. New tests that
use the same fixtures or live in the same modules follow automatically."""

from __future__ import annotations

import pytest

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
