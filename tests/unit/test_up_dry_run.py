"""`inv up --dry-run`: the exact Compose commands, and nothing started."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from invoke.context import Context
from invoke.exceptions import Exit

from devenv import compose
from devenv.settings import REPO_ROOT
from devenv.tasks import infra

COMPOSE = f"{compose.binary()} --project-directory {REPO_ROOT} -f {REPO_ROOT / 'compose.yaml'}"


@pytest.fixture
def nothing_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a dry run ran {args[0]}")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setenv("UP_TIMEOUT", "45")
    monkeypatch.setenv("INFRA_BACKEND", "native")


def test_dry_run_prints_the_probe_and_the_start_of_every_service(
    nothing_runs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    infra.up(Context(), dry_run=True)

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("# `inv up` with INFRA_BACKEND=docker")
    assert "(here: native)" in lines[0]
    assert lines[1:] == [
        f"{COMPOSE} ps --all --format json",
        f"{COMPOSE} up --detach --wait --wait-timeout 45 postgres redpanda emqx traefik zipkin",
    ]


def test_dry_run_with_tracing_off_leaves_the_viewer_out(
    nothing_runs: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRACING", "off")
    infra.up(Context(), dry_run=True)
    assert capsys.readouterr().out.splitlines()[-1].endswith("postgres redpanda emqx traefik")


def test_dry_run_of_named_components_starts_only_their_services(
    nothing_runs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    infra.up(Context(), component=["bus", "postgres"], dry_run=True)

    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{COMPOSE} up --detach --wait --wait-timeout 45 redpanda postgres"
    )


def test_dry_run_of_an_unknown_component_is_one_clear_error(
    nothing_runs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(Exit) as exit_:
        infra.up(Context(), component=["kafak"], dry_run=True)

    assert exit_.value.code == 1
    assert str(exit_.value.message).startswith("error: no component 'kafak': choose one of db")
    assert capsys.readouterr().out == ""


def test_dry_run_takes_the_native_program_names_too(
    nothing_runs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    infra.up(Context(), component=["kafka", "postgresql", "mosquitto", "traefik"], dry_run=True)

    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{COMPOSE} up --detach --wait --wait-timeout 45 redpanda postgres emqx traefik"
    )
