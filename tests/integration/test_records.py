"""Which processes are ours, proved by breaking it: a supervisor killed with -9, two runs at
once, a clock step, a copied state folder, a full disk. Nothing may be left untracked, nothing
unrelated signalled."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from devenv import state
from devenv.backends.native.needs import MOSQUITTO
from devenv.backends.native.recipe import require
from devenv.proc import detached, group
from devenv.proc.detached import DetachedStatus
from devenv.proc.record import AlreadyRunning, Identity, Record
from devenv.proc.supervisor import Supervisor
from devenv.stack import free_ports
from tests.support.running import get, gone, pyapp
from tests.support.stack import Stack
from tests.support.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_a_run_after_a_killed_supervisor_stops_the_apps_it_left(
    tmp_path: Path, reaper: list[int]
) -> None:
    (port,) = free_ports(1)
    state = tmp_path / "state"
    first = detached.start([pyapp("app", port, tmp_path, "--message", "old")], state, timeout=30)
    old_app = first.apps[0].pid
    assert old_app is not None
    reaper.extend([first.pid, old_app])
    os.kill(first.pid, signal.SIGKILL)
    eventually(lambda: gone(first.pid), 5, "the supervisor killed")
    assert get(f"http://127.0.0.1:{port}/") == "old"  # orphaned, still serving

    second = detached.start([pyapp("app", port, tmp_path, "--message", "new")], state, timeout=30)
    reaper.extend([second.pid, *(a.pid for a in second.apps if a.pid)])

    assert gone(old_app)
    assert get(f"http://127.0.0.1:{port}/") == "new"
    assert second.apps[0].pid not in (None, old_app)
    log = (state / detached.LOG_FILE).read_text()
    assert f"stopped app (pid {old_app}), left running by a killed supervisor" in log
    assert detached.stop(state)
    eventually(lambda: get(f"http://127.0.0.1:{port}/healthz") is None, 10, "the app stopped")


@pytest.mark.parametrize("attempt", range(3))
def test_two_runs_at_once_one_runs_the_other_is_refused(
    tmp_path: Path, reaper: list[int], attempt: int
) -> None:
    state = tmp_path / "state"
    ports = free_ports(2)
    barrier = threading.Barrier(2)
    results: list[DetachedStatus | AlreadyRunning] = []

    def start(port: int) -> None:
        spec = pyapp("app", port, tmp_path / str(port))
        barrier.wait()
        try:
            results.append(detached.start([spec], state, timeout=30))
        except AlreadyRunning as exc:
            results.append(exc)

    threads = [threading.Thread(target=start, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for result in results:
        if isinstance(result, DetachedStatus):
            reaper.extend([result.pid, *(a.pid for a in result.apps if a.pid)])
    assert sorted(type(r).__name__ for r in results) == ["AlreadyRunning", "DetachedStatus"]

    assert detached.stop(state)
    for port in ports:
        eventually(lambda p=port: get(f"http://127.0.0.1:{p}/healthz") is None, 10, "apps gone")


def test_a_clock_step_does_not_make_a_live_server_look_stale(stack: Stack) -> None:
    stack.inv("up", "-c", "mqtt")
    # The broker's supervisor records itself and the broker (earlier: the broker's own file).
    record = stack.state_dir / "native" / "emqx" / "status.json"
    recorded = json.loads(record.read_text())
    pids = [recorded["supervisor"]["pid"], recorded["apps"]["mosquitto"]["identity"]["pid"]]
    assert sorted(p.pid for p in stack.our_processes()) == sorted(pids)
    # The wall clock jumped: the record now looks written an hour before the server started.
    an_hour_ago = time.time() - 3600
    os.utime(record, (an_hour_ago, an_hour_ago))
    row = next(line for line in stack.inv("status").stdout.splitlines() if line.startswith("mqtt"))
    assert row.split()[3] == "running", row
    stack.inv("down")
    assert all(gone(pid) for pid in pids)


@pytest.mark.parametrize("copied", ["pid only", "another process's start", "status file"])
def test_a_record_naming_an_unrelated_process_never_signals_it(stack: Stack, copied: str) -> None:
    stranger = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    try:
        home = stack.state_dir / "native" / "emqx"
        stack.inv("up", "-c", "mqtt")
        stack.inv("down")
        # A state folder copied from elsewhere, or a pid recycled: the record names a live
        # process that this project never started. The first two are records of the versions
        # before the supervisor (a bare pid, then an identity), read after an upgrade.
        elsewhere = f'{{"pid": {stranger.pid}, "start": 1, "boot": "elsewhere"}}'
        if copied == "pid only":
            (home / "emqx.pid").write_text(f"{stranger.pid}\n")
        elif copied == "another process's start":
            (home / "emqx.pid").write_text(elsewhere)
        else:
            (home / "status.json").write_text(
                f'{{"supervisor": {elsewhere}, "apps": {{"mosquitto": {{"identity": {elsewhere},'
                f' "log_file": "{home / "emqx.log"}"}}}}}}'
            )
        result = stack.inv("down")
        assert "nothing running" in result.stdout
        assert stranger.poll() is None, "an unrelated process was signalled"
    finally:
        stranger.kill()
        stranger.wait()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """A file system with room for `files` files (its root folder counts as one) and not one
    more: the next new file fails with ENOSPC, exactly as on a full disk. The count is what
    the code under test writes before the record it must not lose."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted: list[Path] = []

    def mount(files: int) -> Path:
        point = tmp_path / f"full{len(mounted)}"
        point.mkdir()
        options = f"size=1m,nr_inodes={files},mode=0700"
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], check=True)
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_disk_stops_the_app_it_could_not_record(
    small_disk: Callable[[int], Path], tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    out = io.StringIO()
    # Room for the lock and the first status file: the status naming the app fails.
    state = small_disk(3)
    supervisor = Supervisor([pyapp("app", port, tmp_path)], out=out, state_dir=state)
    code = supervisor.run()
    assert code == 1
    assert supervisor.failure is not None
    assert "could not write" in supervisor.failure and "No space left" in supervisor.failure
    assert "stopping everything" in supervisor.failure
    # The app was started, could not be recorded, and was stopped again: nothing runs.
    assert _processes_with(f"--port {port}") == []
    assert get(f"http://127.0.0.1:{port}/healthz") is None


def test_a_full_disk_stops_the_server_it_could_not_record(
    small_disk: Callable[[int], Path],
) -> None:
    # Room for the marker, lock, backend, native/, emqx/, data/, the config, the supervisor's
    # log, lock and first status file, and the broker's log: the broker starts, the status
    # file naming it cannot be written (it was the broker's own record before its supervisor).
    state = small_disk(12)
    stack = Stack(state)
    result = stack.inv("up", "-c", "mqtt", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: could not write ")
    assert "status.json: No space left on device (free some disk space" in result.stderr
    assert "Traceback" not in result.stderr
    assert stack.our_processes() == []


def _processes_with(text: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if text in " ".join(proc.info["cmdline"] or []) and proc.info["status"] != "zombie":
            found.append(proc.pid)
    return found


def test_detached_apps_leave_no_secret_on_disk(tmp_path: Path, reaper: list[int]) -> None:
    (port,) = free_ports(1)
    state = tmp_path / "state"
    secret = "pw-detached-4b1d-never-written"
    spec = dataclasses.replace(pyapp("app", port, tmp_path), env={"POSTGRES_PASSWORD": secret})
    started = detached.start([spec], state, timeout=30)
    reaper.extend([started.pid, *(a.pid for a in started.apps if a.pid)])
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert written, "the supervisor records its state"
    assert [path for path in written if secret.encode() in path.read_bytes()] == []
    for record in state.glob("*.json"):
        assert record.stat().st_mode & 0o077 == 0, f"{record} is readable by others"
    # The app did get it: through the environment, not a file.
    app = psutil.Process(started.apps[0].pid)
    assert app.environ().get("POSTGRES_PASSWORD") == secret
    assert detached.stop(state)


def test_inv_run_while_the_apps_run_is_refused_before_it_builds(
    stack: Stack, tmp_path: Path, reaper: list[int]
) -> None:
    (port,) = free_ports(1)
    apps_dir = state.claim(stack.state_dir) / "apps"  # as the `inv run` that started them did
    running = detached.start([pyapp("app", port, tmp_path)], apps_dir)
    reaper.extend([running.pid, *(a.pid for a in running.apps if a.pid)])
    result = stack.inv("run", check=False)
    assert result.returncode == 1
    assert f"the supervisor of these apps is already running (pid {running.pid})" in result.stderr
    assert stack.inv("status").stdout.count("stopped") == 4  # nothing was started
    assert detached.stop(apps_dir)


def test_a_server_left_by_a_killed_supervisor_is_shown_and_taken_over_by_up(
    stack: Stack,
) -> None:
    """The broker's supervisor killed with -9: the broker serves on, unwatched. `status` shows
    it as an orphan; `up` stops it (cleanly) and starts it under a new supervisor."""
    stack.inv("up", "-c", "mqtt")
    recorded = json.loads((stack.state_dir / "native" / "emqx" / "status.json").read_text())
    supervisor = recorded["supervisor"]["pid"]
    broker = recorded["apps"]["mosquitto"]["identity"]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    eventually(lambda: gone(supervisor), 5, "the supervisor killed")
    row = _status_row(stack, "mqtt")
    assert row[3:5] == ["orphan", "healthy"] and row[7] == str(broker), row

    result = stack.inv("up", "-c", "mqtt")
    assert f"mosquitto: pid {broker} runs without a supervisor" in result.stdout
    assert "✓ mqtt" in result.stdout
    assert gone(broker)
    row = _status_row(stack, "mqtt")
    assert row[3:5] == ["running", "healthy"] and row[7] != str(broker), row
    stack.inv("down")
    assert stack.our_processes() == []


def test_a_server_an_earlier_version_started_is_still_stopped_by_down(stack: Stack) -> None:
    """The version before the supervisors recorded each server itself, in `<service>.pid`:
    after an upgrade, `status` shows such a server and `down` stops it."""
    stack.inv("up", "-c", "mqtt")
    stack.inv("down")  # the broker's config, as that version wrote it too
    home = stack.state_dir / "native" / "emqx"
    mosquitto = require(MOSQUITTO)
    server = group.spawn([mosquitto, "-c", str(home / "mosquitto.conf")], log_file=home / "x.log")
    try:
        identity = Identity.of(server.pid)
        assert identity is not None
        Record(home / "emqx.pid").write(identity, program="mosquitto")
        row = _status_row(stack, "mqtt")
        assert row[3] == "orphan" and row[7] == str(server.pid), row
        result = stack.inv("down")
        assert "mqtt     mosquitto  stopped" in result.stdout
        assert server.wait(10) == 0  # asked to stop (SIGTERM), not killed
        assert not (home / "emqx.pid").exists()
    finally:
        if server.poll() is None:
            group.stop_group(server.pid, 5)
            server.wait()


def _status_row(stack: Stack, role: str) -> list[str]:
    lines = stack.inv("status").stdout.splitlines()
    return next(line.split() for line in lines if line.startswith(f"{role} "))


def test_a_bare_pid_file_of_an_earlier_version_is_still_ours(tmp_path: Path) -> None:
    """After an upgrade, `inv down` still stops the stack the previous version started and
    recorded as a bare pid (its command line names the component's folder); a pid file older
    than its process, or naming a process that has nothing to do with the folder, is not."""
    home = tmp_path / "postgres"
    home.mkdir()
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(home)])
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ours = Record(home / "postgres.pid")
        ours.path.write_text(f"{server.pid}\n")
        assert ours.running() == Identity.of(server.pid)

        not_ours = Record(home / "kafka.pid")
        not_ours.path.write_text(f"{stranger.pid}\n")
        assert not_ours.running() is None

        ours.path.write_text(f"{server.pid}\n")
        os.utime(ours.path, (time.time() - 3600, time.time() - 3600))
        assert ours.running() is None, "a pid file older than its process"
    finally:
        for proc in (server, stranger):
            proc.kill()
            proc.wait()
