"""What `inv run --debug` and `inv db.*` decide before they run anything: which app is
debugged, the command lines (no password on one, ever), snapshot names, the tool versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv import apps, database, debug, settings
from devenv.database import SnapshotError, Tools
from devenv.proc import reload


def test_debug_choices() -> None:
    assert debug.chosen("") == () and debug.chosen(False) == ()
    assert debug.chosen(True) == ("app", "ai")
    assert debug.chosen("app") == ("app",) and debug.chosen("ai") == ("ai",)
    with pytest.raises(debug.DebugChoiceError, match=r"--debug web: debug `app`.*`ai`"):
        debug.chosen("web")


def test_the_monolith_runs_under_delve_on_the_debug_build_and_a_reload_swaps_that(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(debug, "delve", lambda: "/cache/dlv")  # not installed by a unit test
    environ = {"DELVE_PORT": "4242", "INFRA_BACKEND": "native", "STATE_DIR": str(tmp_path)}
    current = settings.load(environ=environ, env_file=Path("/nonexistent"))
    app, ai = debug.specs(current, ["app"])
    assert app.argv[:2] == ("/cache/dlv", "exec")
    assert app.argv[debug.BINARY_ARG] == str(debug.GO_TARGET.output)
    assert app.argv[3:] == ("--headless", "--listen=127.0.0.1:4242", "--api-version=2",
                            "--accept-multiclient", "--continue", "--", "serve")  # fmt: skip
    assert ai == apps.specs(current)[1]  # not debugged: as `inv run` runs it
    assert debug.GO_TARGET.gcflags == "all=-N -l" and debug.go_target([]) == apps.GO_TARGET
    target = debug.go_reload(reload.GoReload("app", apps.GO_MODULE, apps.GO_PACKAGE, Path("b")))
    assert (target.strip, target.gcflags, target.binary_arg) == (False, "all=-N -l", 2)


def test_pg_tools_never_carry_the_password_on_their_command_line() -> None:
    host = Tools(where="here", bin_dir=Path("/usr/lib/postgresql/15/bin"))
    assert host.argv("pg_dump", "--format=custom", dbname="platform") == [
        "/usr/lib/postgresql/15/bin/pg_dump", "--format=custom", "--dbname=platform"
    ]  # fmt: skip
    inside = Tools(where="there", container="abc123")
    assert inside.argv("pg_restore", "--list") == [
        "docker", "exec", "-i", "-e", "PGUSER", "-e", "PGPASSWORD", "abc123", "pg_restore", "--list"
    ]  # fmt: skip
    assert inside.argv("pg_dump", dbname="platform")[-3:] == [
        "--host=127.0.0.1", "--port=5432", "--dbname=platform"
    ]  # fmt: skip
    env = database.client_env(settings.load(environ={}, env_file=Path("/nonexistent")))
    assert env["PGPASSWORD"] == "platform" and env["PGPORT"] == "5432"


def test_snapshot_names(tmp_path: Path) -> None:
    current = settings.load(environ={"STATE_DIR": str(tmp_path)}, env_file=Path("/nonexistent"))
    path = database.snapshot_path(current, "before-migration_2.1")
    assert path == tmp_path / "snapshots" / "before-migration_2.1.dump"
    for bad in ("../up", "a b", "", ".hidden", "x" * 101):
        with pytest.raises(SnapshotError, match="is not a snapshot name"):
            database.snapshot_path(current, bad)
    with pytest.raises(SnapshotError, match=r"no snapshot 'x' .*there is none yet"):
        database.existing(current, "x")


def test_tool_major_reads_the_version_line(tmp_path: Path) -> None:
    tool = tmp_path / "pg_dump"
    tool.write_text('#!/bin/sh\necho "pg_dump (PostgreSQL) 16.4 (Debian 16.4-1.pgdg120+1)"\n')
    tool.chmod(0o755)
    assert database.tool_major(tool) == 16
    assert database.tool_major(tmp_path / "missing") == 0
