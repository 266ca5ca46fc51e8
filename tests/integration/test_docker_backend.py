"""The docker backend's tasks as a user runs them, on a real engine (`nox -s
"integration(docker)"`): `inv up [-c NAME] [--dry-run]`, `status`, `logs`, `doctor`, `down`,
`clean --yes`. Compose runs without the CLI plugin (DOCKER_CONFIG points at an empty folder).
The tests share one private project, in file order; the last one deletes it."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from devenv import database
from devenv.backends.docker import DockerBackend
from devenv.settings import load
from tests.support.stack import INV, Stack
from tests.support.status import status_rows
from tests.support.terminal import CTRL_C, Terminal
from tests.support.usage import HELD_PER_BACKEND, backends_holding_memory, shown_size

pytestmark = pytest.mark.docker
SERVICES = ("postgres", "redpanda", "emqx", "traefik")
STARTED = time.time()  # nothing of this module's project is older


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("docker")
    (root / "docker-config").mkdir()  # no CLI plugins: Compose must not need one
    s = Stack(root / "state")
    s.env.update(
        INFRA_BACKEND="docker",
        COMPOSE_PROJECT_NAME=f"platform-test-{uuid.uuid4().hex[:8]}",
        DOCKER_CONFIG=str(root / "docker-config"),
    )
    try:
        yield s
    finally:
        s.inv("clean", "--yes", check=False)
        assert project_containers(s) == [] and project_volumes(s) == []


def docker(s: Stack, *args: str) -> list[str]:
    done = subprocess.run(["docker", *args], env=s.env, capture_output=True, text=True, check=True)
    return done.stdout.split()


def project_containers(s: Stack, *args: str) -> list[str]:
    label = f"label=com.docker.compose.project={s.env['COMPOSE_PROJECT_NAME']}"
    return docker(
        s, "ps", "--filter", label, "--format", '{{.Label "com.docker.compose.service"}}', *args
    )


def project_volumes(s: Stack) -> list[str]:
    label = f"label=com.docker.compose.project={s.env['COMPOSE_PROJECT_NAME']}"
    return docker(s, "volume", "ls", "--quiet", "--filter", label)


def status(s: Stack) -> dict[str, list[str]]:
    """`inv status` rows by service: state, health, uptime."""
    rows = status_rows(s.inv("status").stdout)
    return {r.service: [r.state, r.health, r.uptime] for r in rows if r.service in SERVICES}


def seconds(shown: str) -> int:
    """`inv status`'s uptime (42s, 3m07s, 1h02m) in seconds."""
    parts = dict((unit, int(n)) for n, unit in re.findall(r"(\d+)([hms])", shown))
    return parts.get("h", 0) * 3600 + parts.get("m", 0) * 60 + parts.get("s", 0)


def test_up_runs_what_its_dry_run_prints_and_a_second_up_is_a_no_op(stack: Stack) -> None:
    shown = stack.inv("up", "--dry-run").stdout.splitlines()[1:]
    planned = [line for line in shown if not line.startswith("# ")]  # INFRA_IMAGES=local's
    t0 = time.monotonic()
    done = stack.inv("up")
    cold = time.monotonic() - t0
    ran = [line[2:] for line in done.stdout.splitlines() if line.startswith("$ ")]
    assert ran == planned
    assert sorted(project_containers(stack)) == sorted(SERVICES)
    t0 = time.monotonic()
    again = stack.inv("up")
    print(f"inv up on docker: cold {cold:.1f}s, warm (all up) {time.monotonic() - t0:.1f}s")
    assert "already up: postgres, redpanda, emqx, traefik (docker)" in again.stdout


def test_status_counts_uptime_from_the_containers_start_in_utc(stack: Stack) -> None:
    stack.env["TZ"] = "Asia/Kolkata"  # +05:30: a time read as local would be 5.5 h off
    try:
        docker(stack, "kill", status_ident(stack, "redpanda"))
        stack.inv("up", "-c", "kafka")
        rows = status(stack)
    finally:
        del stack.env["TZ"]
    assert all(rows[s][:2] == ["running", "healthy"] for s in SERVICES), rows
    since_module = time.time() - STARTED
    assert all(seconds(rows[s][2]) <= since_module + 2 for s in SERVICES), rows
    # Started again after the kill, not created again: its uptime counts from that start.
    assert seconds(rows["redpanda"][2]) < seconds(rows["postgres"][2]), rows


def test_status_shows_what_each_container_costs(stack: Stack) -> None:
    def usage() -> dict[str, tuple[str, str]]:
        """CPU and MEM of each service."""
        rows = status_rows(stack.inv("status").stdout)
        return {r.service: (r.cpu, r.memory) for r in rows if r.service in SERVICES}

    before = usage()
    with backends_holding_memory(stack, 2):
        during = usage()
    for shown in (before, during):
        assert all(re.fullmatch(r"\d+\.\d+%", cpu) for cpu, _ in shown.values()), shown
        assert all(shown_size(memory) > 0 for _, memory in shown.values()), shown
    # The engine counts the container's every process: the backends' memory too.
    grown = shown_size(during["postgres"][1]) - shown_size(before["postgres"][1])
    assert grown >= 2 * HELD_PER_BACKEND, (before, during)


def test_watch_on_a_terminal_stops_everything_it_ran_on_ctrl_c(stack: Stack) -> None:
    term = Terminal([*INV, "status", "--watch", "--interval", "0.5"], stack.env)
    try:
        # A frame asks Compose and `docker stats`: stopped on Ctrl-C, whichever is running.
        assert term.read_until(lambda out: out.count(b"(Ctrl-C stops)") >= 3, 120), term.output
        term.type(CTRL_C)
        code = term.wait(30)
    finally:
        term.close()
    assert code == 0 and b"Traceback" not in term.output, term.output
    assert term.left_running() == []
    roles = ("db ", "bus ", "mqtt ", "gateway ")
    screen = [line for line in term.screen() if line.startswith(roles)]
    assert len(screen) == 4 and all(" docker  running " in line for line in screen), screen


def status_ident(s: Stack, service: str) -> str:
    line = next(x for x in s.inv("status").stdout.splitlines() if f" {service} " in x)
    return line.split()[6]


@pytest.mark.parametrize(
    ("name", "service"),
    [("kafka", "redpanda"), ("postgresql", "postgres"), ("mosquitto", "emqx"), (None, None)],
)
def test_logs_of_a_component_by_its_native_name_or_of_all(
    stack: Stack, name: str | None, service: str | None
) -> None:
    shown = stack.inv("logs", *(["-c", name] if name else []), "--lines", "3").stdout
    services = [service] if service else SERVICES
    assert shown.splitlines()[0].endswith(f"logs --tail 3 {' '.join(services)}"), shown
    prefixes = {line.split(" ", 1)[0] for line in shown.splitlines() if " | " in line}
    # Mosquitto (emqx's stand-in) logs nothing at its levels until a client misbehaves: its
    # saves, once a second, are the `information` level it leaves out.
    talkative = {f"{s}-1" for s in services if s != "emqx"}
    assert talkative <= prefixes <= {f"{s}-1" for s in services}, shown


def test_doctor_finds_no_problem_with_the_running_stack(stack: Stack) -> None:
    report = stack.inv("doctor").stdout  # exit 0: no port counted as someone else's
    hosts = DockerBackend(load(environ=stack.env)).upstream_hosts()
    assert "docker (the running stack's; docker engine answers)" in report
    assert f"the gateway reaches the apps on {' and '.join(['127.0.0.1', *hosts])}" in report


def test_down_of_one_component_stops_only_it(stack: Stack) -> None:
    stack.inv("down", "-c", "mosquitto")
    assert sorted(project_containers(stack)) == sorted(set(SERVICES) - {"emqx"})
    assert status(stack)["emqx"][0] == "stopped"
    stack.inv("up", "-c", "mqtt")
    assert status(stack)["emqx"][:2] == ["running", "healthy"]


def test_db_shell_and_snapshots_by_the_hosts_tools_or_the_containers(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psql reaches the container through its host port; a snapshot is taken and restored by
    this host's pg_dump when it serves the server's version (the stand-in's PostgreSQL 15), and
    by the container's own otherwise (as the official image's PostgreSQL 16 needs here)."""
    assert stack.inv("db.shell", "-c", "SELECT 6 * 7 AS answer").stdout.split()[2] == "42"
    with stack.pg() as db:
        db.execute("CREATE TABLE snapshot_kept (n int)")
        db.execute("INSERT INTO snapshot_kept VALUES (1)")
    assert "pg_dump: this host's (PostgreSQL 15" in stack.inv("db.snapshot", "by-host").stdout
    for key, value in stack.env.items():  # the same settings, in this process
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(database, "host_tools", lambda server: None)
    said: list[str] = []
    database.take(load(), "by-container", say=said.append)
    assert said[0].startswith("pg_dump: the database container's ("), said
    assert said[1].startswith("$ docker exec -i -e PGUSER -e PGPASSWORD "), said
    with stack.pg() as db:
        db.execute("INSERT INTO snapshot_kept VALUES (2)")
    database.restore(load(), "by-container", say=said.append)
    assert any(line.startswith("pg_restore: the database container's (") for line in said)
    with stack.pg() as db:
        assert db.execute("SELECT array_agg(n) FROM snapshot_kept").fetchone() == ([1],)
        db.execute("INSERT INTO snapshot_kept VALUES (3)")
    monkeypatch.undo()
    stack.inv("db.restore", "by-host", timeout=300)
    with stack.pg() as db:
        assert db.execute("SELECT array_agg(n) FROM snapshot_kept").fetchone() == ([1],)


def test_down_keeps_the_data_and_clean_starts_afresh(stack: Stack) -> None:
    with stack.pg() as db:
        db.execute("CREATE TABLE kept_across_down (n int)")
    stack.inv("down")
    assert project_containers(stack, "--all") == []
    assert len(project_volumes(stack)) == 3
    stack.inv("up", "-c", "postgresql")
    with stack.pg() as db:
        assert db.execute("SELECT count(*) FROM kept_across_down").fetchone() == (0,)
    stack.inv("clean", "--yes")
    assert project_containers(stack, "--all") == [] and project_volumes(stack) == []
    assert not Path(stack.env["STATE_DIR"]).exists()
    stack.inv("up", "-c", "db")
    with stack.pg() as db, pytest.raises(psycopg.errors.UndefinedTable):
        db.execute("SELECT count(*) FROM kept_across_down")
