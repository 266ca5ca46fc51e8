"""A .venv older than pyproject.toml (after a pull) is named with its fix, not a traceback."""

from __future__ import annotations

import pytest

from devenv import requirements_installed


def test_a_missing_package_is_one_line_with_the_fix() -> None:
    missing = r"'junitparser' is missing .* run `\./scripts/bootstrap`"
    with pytest.raises(SystemExit, match=missing), requirements_installed():
        raise ModuleNotFoundError("No module named 'junitparser'", name="junitparser")


def test_a_missing_module_of_our_own_is_a_bug_and_stays_one() -> None:
    with pytest.raises(ModuleNotFoundError), requirements_installed():
        raise ModuleNotFoundError("No module named 'devenv.gone'", name="devenv.gone")
