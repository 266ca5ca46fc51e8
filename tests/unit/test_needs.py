"""The native recipes declare what they need; `inv doctor` and scripts/bootstrap ask them.

PostgreSQL is found where the backend runs it from, whatever its major version (doctor used
to look in version 15's folder only), and doctor checks the backend the running stack
recorded, not only the configured one."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from devenv import compose, doctor, settings, state
from devenv.backends.native import RECIPES
from devenv.backends.native.needs import JAVA, MAVEN, NATIVE, POSTGRES, Need
from devenv.backends.native.postgres import Postgres

NEEDS_SCRIPT = Path(__file__).resolve().parents[2] / "devenv" / "backends" / "native" / "needs.py"


def stand_in(folder: Path, program: str, says: str) -> Path:
    """An executable that answers its version question as the real program does."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / program
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)
    return path


def postgres_in(root: Path, *majors: int) -> Need:
    """Debian's layout under `root`: one /usr/lib/postgresql/<major>/bin per major; the
    PostgreSQL need searching there instead of the machine's /usr/lib/postgresql."""
    for major in majors:
        bin_dir = root / "usr" / "lib" / "postgresql" / str(major) / "bin"
        stand_in(bin_dir, "postgres", f"postgres (PostgreSQL) {major}.4 (Debian {major}.4-1)")
        stand_in(bin_dir, "initdb", f"initdb (PostgreSQL) {major}.4")
    return dataclasses.replace(POSTGRES, prefer=(f"{root}/usr/lib/postgresql/*/bin",))


def recipe_needing(need: Need, tmp_path: Path) -> Postgres:
    """The PostgreSQL recipe, declaring `need` as what it runs."""

    class PostgresThere(Postgres):
        needs = (need,)

    current = settings.load(env_file=tmp_path / "no.env", environ={})
    (component,) = [c for c in compose.components(current.as_env()) if c.service == "postgres"]
    return PostgresThere(current, component, tmp_path / "home", tmp_path / "cache")


def test_postgresql_17_alone_is_found_by_doctor_where_the_backend_runs_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need = postgres_in(tmp_path, 17)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # not on PATH, as on Debian
    recipe = recipe_needing(need, tmp_path)

    asked = doctor.needs([type(recipe)])  # what doctor checks: the recipe's needs, then Go
    assert asked == [need, *doctor.APP_NEEDS]
    healthy, line = doctor.check(need)

    bin_dir = tmp_path / "usr" / "lib" / "postgresql" / "17" / "bin"
    assert healthy, line
    assert line == f"postgres 17.4 ({bin_dir / 'postgres'}, the newest of {need.prefer[0]})"
    assert recipe.bin_dir == bin_dir


def test_the_newest_major_is_the_one_doctor_checks_and_the_backend_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need = postgres_in(tmp_path, 9, 15, 17, 16)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    recipe = recipe_needing(need, tmp_path)

    _, line = doctor.check(need)

    assert line.startswith("postgres 17.4 ")
    assert recipe.bin_dir.parent.name == "17"


def test_a_postgresql_too_old_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert doctor.check(postgres_in(tmp_path, 13)) == (
        False,
        "postgres 13.4 is older than 14: install postgresql",
    )


def test_no_postgresql_is_one_line_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    need = postgres_in(tmp_path)  # no major installed
    assert doctor.check(need) == (
        False,
        "postgres not found: install it with `apt-get install postgresql` "
        "(./scripts/bootstrap does it for you)",
    )


def test_bootstrap_installs_what_the_recipes_need() -> None:
    """NATIVE, the list bootstrap reads, is every need of every recipe: a need a recipe adds
    without it would be checked by doctor but never installed."""
    declared = {need for recipe in RECIPES.values() for need in recipe.needs}
    assert set(NATIVE) == declared
    assert [n for n in doctor.needs(RECIPES.values()) if n not in NATIVE] == list(doctor.APP_NEEDS)


def test_bootstraps_list_runs_on_the_standard_library_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scripts/bootstrap runs the declaration with the system's Python before .venv exists:
    `-I -S` leaves out every installed package and this checkout's import path."""
    stand_in(tmp_path / "bin", "mvn", "Apache Maven 3.8.7")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(NEEDS_SCRIPT)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip

    packages = done.stdout.split()
    assert JAVA.package in packages and MAVEN.package not in packages
    assert packages == [n.package for n in NATIVE if n.apt and n.locate() is None]


def doctor_report(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, list[str]]:
    """`inv doctor`'s lines by section (python, settings, backend, tools, ports)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sections: dict[str, list[str]] = {}

    def out(line: str) -> None:
        if line.startswith(" "):
            sections[next(reversed(sections))].append(line)
        else:
            sections[line] = []

    doctor.run(out)
    return sections


def test_doctor_checks_the_backend_the_running_stack_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack started natively stays native until `inv down`, whatever INFRA_BACKEND says
    now: doctor checks its tools, and the configured backend for the `inv up` after that."""
    state_dir = tmp_path / "state"
    state.record_backend(state.claim(state_dir), "native")
    no_engine = f"unix://{tmp_path / 'no-engine.sock'}"
    every_need = [need.program for need in doctor.needs(RECIPES.values())]

    report = doctor_report(monkeypatch, STATE_DIR=str(state_dir), DOCKER_HOST=no_engine)

    assert report["backend"] == ["  ✓ native (the running stack's; docker engine not reachable)"]
    assert [line.split()[1] for line in report["tools"]] == every_need

    monkeypatch.setenv("INFRA_BACKEND", "docker")
    report = doctor_report(monkeypatch)

    assert report["backend"][:2] == [
        "  ✓ native (the running stack's; docker engine not reachable)",
        "    after `inv down`: docker (INFRA_BACKEND=docker), checked too",
    ]
    assert report["backend"][2].startswith("  ✗ INFRA_BACKEND=docker but no Docker engine")
    assert [line.split()[1] for line in report["tools"]] == every_need

    state.forget_backend(state_dir)  # `inv down`: only the setting decides
    report = doctor_report(monkeypatch)

    assert report["backend"][0] == "  ✓ docker (INFRA_BACKEND=docker; docker engine not reachable)"
    assert report["backend"][1].startswith("  ✗ INFRA_BACKEND=docker but no Docker engine")
    assert [line.split()[1] for line in report["tools"]] == [n.program for n in doctor.APP_NEEDS]
