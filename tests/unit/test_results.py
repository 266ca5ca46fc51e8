"""Kept results: reused only while every file of the repository and every value is unchanged,
never after a failure; a test that failed and then passed on the same inputs is named flaky."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from devenv import results
from devenv.results import Results


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "schemas" / "v1").mkdir(parents=True)
    (root / "docs").mkdir()
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text(".state/\n")
    (root / "schemas" / "v1" / "reading.json").write_text('{"type": "object"}\n')
    (root / "docs" / "notes.md").write_text("notes\n")
    return root


PYTHON = ("python 3.11.7",)


def test_an_edit_to_any_file_of_the_tree_changes_the_key(tree: Path) -> None:
    before = results.digest(tree, PYTHON)
    assert results.digest(tree, PYTHON) == before

    for name in ("schemas/v1/reading.json", "docs/notes.md", ".gitignore"):
        original = (tree / name).read_text()
        (tree / name).write_text(original + "edited\n")
        assert results.digest(tree, PYTHON) != before, name
        (tree / name).write_text(original)
        assert results.digest(tree, PYTHON) == before


def test_new_deleted_and_renamed_files_change_the_key(tree: Path) -> None:
    seen = {results.digest(tree, PYTHON)}
    (tree / "docs" / "extra.md").write_text("{}\n")
    seen.add(results.digest(tree, PYTHON))
    (tree / "docs" / "extra.md").rename(tree / "schemas" / "moved.json")
    seen.add(results.digest(tree, PYTHON))
    (tree / "schemas" / "moved.json").unlink()

    assert len(seen) == 3
    assert results.digest(tree, PYTHON) in seen  # back to the first state


def test_the_env_file_is_an_input_though_ignored(tree: Path) -> None:
    (tree / ".gitignore").write_text(".state/\n.env\n")
    before = results.digest(tree, PYTHON)

    (tree / ".env").write_text("GATEWAY_PORT=18000\n")

    assert results.digest(tree, PYTHON) != before
    assert results.input_files(tree) == [".env", ".gitignore", "docs/notes.md",
                                         "schemas/v1/reading.json"]  # fmt: skip


def test_what_runs_write_is_not_an_input(tree: Path) -> None:
    before = results.digest(tree, PYTHON)
    (tree / ".state").mkdir()
    (tree / ".state" / "schemas-copy.json").write_text("{}\n")

    assert results.digest(tree, PYTHON) == before


def test_values_are_inputs(tree: Path) -> None:
    assert results.digest(tree, ("python 3.12.1",)) != results.digest(tree, PYTHON)


def test_a_pass_is_reused_with_the_same_inputs_only(tmp_path: Path) -> None:
    kept = Results(tmp_path / "results")
    assert kept.passed_with("contract", "a" * 64) is None

    kept.record_pass("contract", "a" * 64, "a1b2c3d")

    passed = kept.passed_with("contract", "a" * 64)
    assert passed is not None
    assert passed.reuse_message() == (
        f"inputs unchanged since it passed at {passed.at:%H:%M} (a1b2c3d) "
        "— not run again; --force runs it"
    )
    assert kept.passed_with("contract", "b" * 64) is None
    assert kept.passed_with("e2e", "a" * 64) is None


def test_going_back_to_earlier_inputs_reuses_their_pass(tmp_path: Path) -> None:
    kept = Results(tmp_path / "results")
    kept.record_pass("contract", "before-edit", "a1b2c3d")
    kept.record_pass("contract", "after-edit", "a1b2c3d")

    assert kept.passed_with("contract", "before-edit") is not None
    for n in range(results.KEPT_STATES):
        kept.record_pass("contract", f"later-{n}", "a1b2c3d")
    assert kept.passed_with("contract", "before-edit") is None  # only the last few are kept


def test_a_failed_run_is_never_reused(tmp_path: Path) -> None:
    kept = Results(tmp_path / "results")
    kept.record_pass("unit", "same", "a1b2c3d")

    kept.record_failure("unit", "same", ["tests/test_x.py::test_y"])

    assert kept.passed_with("unit", "same") is None


def test_failed_then_passed_on_the_same_inputs_is_flaky(tmp_path: Path) -> None:
    kept = Results(tmp_path / "results")
    kept.record_failure("e2e", "inputs-1", ["t::flaky_one", "t::flaky_two"])
    kept.record_failure("e2e", "inputs-2", ["t::fixed_by_an_edit"])

    flaky = kept.record_pass("e2e", "inputs-1", "a1b2c3d")

    assert [f.test for f in flaky] == ["t::flaky_one", "t::flaky_two"]
    assert flaky[0].line().startswith("flaky: t::flaky_one failed at ")
    assert kept.record_pass("e2e", "inputs-1", "a1b2c3d") == []  # reported once
    assert kept.record_pass("e2e", "inputs-3", "a1b2c3d") == []


@pytest.mark.tools  # runs pytest as a subprocess
def test_failed_tests_are_read_from_a_real_junit_report(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n"
        "def test_passes(): pass\n"
        "def test_fails(): assert False\n"
        "def test_errors(broken): pass\n"
        "@pytest.fixture\ndef broken(): raise RuntimeError\n"
        "@pytest.mark.skip\ndef test_skipped(): pass\n"
    )
    reports = tmp_path / "reports"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"--junitxml={reports / 'pytest.xml'}", str(tmp_path / "test_sample.py")],
        cwd=tmp_path, capture_output=True, check=False,
    )  # fmt: skip

    assert results.failed_tests(reports) == ["test_sample::test_errors", "test_sample::test_fails"]


@pytest.mark.parametrize(
    ("environ", "posargs", "expected"),
    [
        ({}, [], True),
        ({"CI": "true"}, [], False),
        ({"CI": "false"}, [], True),
        ({"NOX_FORCE": "1"}, [], False),
        ({}, ["-k", "x", "--force"], False),
    ],
)
def test_kept_results_are_on_locally_and_off_in_ci_or_when_forced(
    environ: dict[str, str], posargs: list[str], expected: bool
) -> None:
    assert results.enabled(environ, posargs) is expected


def test_the_record_names_the_commit_and_the_time(tree: Path, tmp_path: Path) -> None:
    kept = Results(tmp_path / "results")
    kept.record_pass("lint", "x", results.commit(tree))

    passed = kept.passed_with("lint", "x")
    assert passed is not None
    assert passed.commit == "no commit"  # a repository without commits yet
    assert (datetime.now() - passed.at).total_seconds() < 60
