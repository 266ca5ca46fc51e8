"""The Nox sessions' shared rules: where positional arguments go, when a cell runs again, and
the CI matrix read from Nox itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from devenv import ci_matrix, sessions
from devenv.settings import REPO_ROOT


def test_arguments_go_to_pytest_unless_routed_to_go() -> None:
    assert sessions.route(["-k", "parity"]) == sessions.Args(pytest=("-k", "parity"))
    routed = sessions.route(["-k", "x", "--go", "-run", "TestDecode", "--pytest", "-x"])
    assert routed.pytest == ("-k", "x", "-x")
    assert routed.go == ("-run", "TestDecode")


def test_a_go_only_session_gives_its_runner_everything() -> None:
    assert sessions.route(["-run", "TestX", "-v"], default="go").go == ("-run", "TestX", "-v")


def test_the_sessions_own_flags_reach_no_runner() -> None:
    routed = sessions.route(["--force", "-k", "x", "--reuse", "--go", "--force"])
    assert routed.pytest == ("-k", "x")
    assert routed.go == ()
    assert routed.flags == {"--force", "--reuse"}


def test_cell_names_become_folder_names() -> None:
    assert sessions.cell_slug("integration(native)") == "integration-native"
    assert sessions.cell_slug("unit(3.12)") == "unit-3.12"
    assert sessions.cell_slug("lint") == "lint"


class Skipped(Exception):
    pass


class Failed(Exception):
    pass


class Cell:
    """What `kept` uses of a nox.Session: its name, arguments, venv, skip and warn."""

    def __init__(self, name: str, venv: Path, posargs: list[str] | None = None) -> None:
        self.name = name
        self.posargs = posargs or []
        self.virtualenv = SimpleNamespace(location=str(venv))
        self.warnings: list[str] = []

    def skip(self, reason: str) -> None:
        raise Skipped(reason)

    def warn(self, line: str) -> None:
        self.warnings.append(line)

    def error(self, reason: str) -> None:
        raise Failed(reason)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    root = tmp_path / "repo"
    (root / "schemas").mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(".state/\n")
    (root / "schemas" / "a.json").write_text("{}\n")
    (root / "README.md").write_text("readme\n")
    monkeypatch.setattr(sessions, "REPO_ROOT", root)
    monkeypatch.setattr(sessions, "RESULTS", root / ".state" / "results")
    monkeypatch.setattr(sessions, "REPORTS", root / ".state" / "reports")
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("NOX_FORCE", raising=False)
    yield root


def contract_runs(outcomes: list[str]) -> Any:
    """A session body that records each run and fails when told to."""

    @sessions.kept()
    def contract(session: Any) -> None:
        outcome = outcomes.pop(0)
        outcomes.append(f"ran:{outcome}")
        if outcome == "fail":
            report = sessions.reports_dir(session) / "pytest.xml"
            report.write_text(
                '<testsuites><testsuite name="s"><testcase classname="t" name="case">'
                "<failure message='boom'/></testcase></testsuite></testsuites>"
            )
            raise RuntimeError("a test failed")

    return contract


def test_a_cell_runs_again_after_an_edit_to_any_file_of_the_repository(
    repo: Path, tmp_path: Path
) -> None:
    runs = ["pass"] * 5
    contract = contract_runs(runs)
    cell = Cell("contract", tmp_path / "venv")

    contract(cell)
    with pytest.raises(Skipped, match=r"^inputs unchanged since it passed at \d\d:\d\d"):
        contract(cell)
    (repo / ".state" / "scratch.json").write_text("{}\n")  # git-ignored: what runs write
    with pytest.raises(Skipped):
        contract(cell)
    (repo / "README.md").write_text("a file no list would have named\n")
    contract(cell)
    (repo / "schemas" / "new.json").write_text("{}\n")  # untracked, not ignored
    contract(cell)
    (repo / ".env").write_text("GATEWAY_PORT=18000\n")  # ignored, but settings read it
    contract(cell)
    (repo / "schemas" / "a.json").unlink()
    contract(cell)

    assert runs == ["ran:pass"] * 5


def test_a_run_of_a_selection_is_not_a_pass_of_the_whole_cell(repo: Path, tmp_path: Path) -> None:
    runs = ["pass", "pass", "pass"]
    contract = contract_runs(runs)

    contract(Cell("contract", tmp_path / "venv", ["-k", "parity"]))
    contract(Cell("contract", tmp_path / "venv"))
    with pytest.raises(Skipped):
        contract(Cell("contract", tmp_path / "venv"))

    assert runs == ["pass", "ran:pass", "ran:pass"]


def test_force_and_ci_run_it_anyway(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = ["pass", "pass", "pass"]
    contract = contract_runs(runs)

    contract(Cell("contract", tmp_path / "venv"))
    contract(Cell("contract", tmp_path / "venv", ["--force"]))
    monkeypatch.setenv("CI", "true")
    contract(Cell("contract", tmp_path / "venv"))

    assert runs == ["ran:pass"] * 3


def test_a_failed_run_is_not_kept_and_a_pass_after_it_names_the_flaky_test(
    repo: Path, tmp_path: Path
) -> None:
    runs = ["fail", "pass"]
    contract = contract_runs(runs)
    cell = Cell("contract", tmp_path / "venv")

    with pytest.raises(RuntimeError):
        contract(cell)
    contract(cell)  # same inputs, but the failure was not kept: it runs
    with pytest.raises(Skipped):
        contract(cell)  # the pass is

    assert runs == ["ran:fail", "ran:pass"]
    assert len(cell.warnings) == 1
    assert cell.warnings[0].startswith("flaky: t::case failed at ")
    assert cell.warnings[0].endswith("and passed now, on the same inputs")


@pytest.fixture
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions.backends, "docker_engine_answers", lambda: False)
    monkeypatch.delenv("REQUIRE_DOCKER", raising=False)


def test_a_docker_cell_without_an_engine_skips_with_one_line(
    no_engine: None, tmp_path: Path
) -> None:
    cell = Cell("e2e(docker)", tmp_path)
    with pytest.raises(Skipped, match=r"^no Docker engine answers here; CI runs this cell"):
        sessions.require_engine(cell, "docker")
    sessions.require_engine(cell, "native")


def test_a_docker_cell_without_an_engine_fails_where_docker_is_required(
    no_engine: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUIRE_DOCKER", "1")
    with pytest.raises(Failed, match="REQUIRE_DOCKER=1 but no Docker engine answers"):
        sessions.require_engine(Cell("e2e(docker)", tmp_path), "docker")


@pytest.mark.tools  # runs nox as a subprocess
def test_the_ci_matrix_is_every_ci_cell_nox_lists() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    cells = json.loads(listed)

    include = ci_matrix.matrix(cells)["include"]

    names = [row["session"] for row in include]
    assert names == [cell["session"] for cell in cells if "ci" in cell["tags"]]
    assert {"unit(3.12)", "integration(docker)", "e2e(native)", "go(race)"} <= set(names)
    assert "go(plain)" not in names  # the quick loop's cell; CI runs go(race)
    assert {row["python"] for row in include} == {"3.11", "3.12", "3.13"}
    assert len({row["slug"] for row in include}) == len(include)
