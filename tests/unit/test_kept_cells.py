"""Kept results through the real `nox`, in a copy of this repository: a cell that passed is
skipped while nothing changed, and runs again after an edit to a file it reads that no list of
inputs named (issue 22: the settings schema for the unit cells, `.env.example` for the ai
cells). Each copy makes its own venvs (from uv's cache), so these run in the `tools` cell."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import results
from devenv.settings import REPO_ROOT

pytestmark = pytest.mark.tools
KEPT = "inputs unchanged since it passed"
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"  # the one surely installed


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The working tree as git lists it (uncommitted edits included), in a repository of its
    own: nox's venvs, reports and kept results land there, not here."""
    root = tmp_path / "repo"
    for name in results.tree_files(REPO_ROOT):
        if (REPO_ROOT / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, root / name)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def nox(clone: Path, cell: str, *pytest_args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("CI", "NOX_FORCE")}
    return subprocess.run(  # stdout and stderr together: nox logs its session lines to stderr
        [sys.executable, "-m", "nox", "-s", cell, "--", *pytest_args],
        cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False,
    )  # fmt: skip


def test_unit_runs_again_and_fails_when_a_setting_goes_from_the_schema(clone: Path) -> None:
    selection = ("-k", "test_settings")
    first = nox(clone, f"unit({PYTHON})", *selection)
    assert first.returncode == 0, first.stdout[-3000:]
    assert KEPT in nox(clone, f"unit({PYTHON})", *selection).stdout

    schema_file = clone / "schemas" / "settings.schema.json"
    schema = json.loads(schema_file.read_text())
    del schema["properties"]["GATEWAY_PORT"]  # devenv reads the schema as it is imported
    schema_file.write_text(json.dumps(schema, indent=2) + "\n")
    again = nox(clone, f"unit({PYTHON})", *selection)

    assert KEPT not in again.stdout
    assert again.returncode != 0, again.stdout[-3000:]


def test_ai_runs_again_after_an_edit_to_env_example(clone: Path) -> None:
    first = nox(clone, f"ai({PYTHON})")
    assert first.returncode == 0, first.stdout[-3000:]
    (clone / ".state" / "scratch.txt").write_text("what runs write is not an input\n")
    assert KEPT in nox(clone, f"ai({PYTHON})").stdout

    env_example = clone / ".env.example"
    env_example.write_text(env_example.read_text().replace("\nAI_WINDOW=", "\n# AI_WINDOW="))
    again = nox(clone, f"ai({PYTHON})")

    assert KEPT not in again.stdout
    assert again.returncode != 0, again.stdout[-3000:]  # test_settings reads .env.example
