"""The supervisor with real processes: output, crashes, signals to itself, detached mode."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devenv.proc import detached, probe
from devenv.proc.readiness import Http
from devenv.proc.record import AlreadyRunning
from devenv.proc.supervisor import ProcessSpec, RestartPolicy, Supervisor
from devenv.stack import free_ports
from tests.support.running import PYAPP, get, gone, pyapp, running
from tests.support.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

REPO = Path(__file__).resolve().parents[2]


def test_lines_are_prefixed_aligned_coloured_and_written_to_log_files(tmp_path: Path) -> None:
    app_port, ai_port = free_ports(2)
    out = io.StringIO()
    specs = [pyapp("app", app_port, tmp_path), pyapp("ai", ai_port, tmp_path)]
    with running(Supervisor(specs, out=out, color=True)) as run:
        assert run.ready.wait(20)
        assert get(f"http://127.0.0.1:{ai_port}/hello") == "hello"
        eventually(lambda: "request /hello" in out.getvalue(), 5, "the request line echoed")
        run.supervisor.request_stop()
        assert run.finished(15) == 0

    shown = out.getvalue()
    assert re.search(r"\033\[36mapp \|\033\[0m pyapp start 1 pid \d+", shown)
    assert re.search(r"\033\[35mai  \|\033\[0m listening on \d+", shown)
    assert "\033[35mai  |\033[0m request /hello" in shown
    assert "request /hello" in (tmp_path / "ai.log").read_text()
    assert (tmp_path / "app.log").read_text().startswith("pyapp start 1")
    assert "|" not in (tmp_path / "app.log").read_text()


def test_no_colour_unless_a_tty_or_forced(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    out = io.StringIO()
    with running(Supervisor([pyapp("app", port, tmp_path)], out=out)) as run:
        assert run.ready.wait(20)
        eventually(lambda: "app | listening on" in out.getvalue(), 5, "the listening line")
    assert "\033[" not in out.getvalue()


def counted_app(tmp_path: Path, *args: str) -> tuple[ProcessSpec, int, Callable[[], int]]:
    """An app on a free port that counts its starts: (spec, port, starts so far)."""
    (port,) = free_ports(1)
    counter = tmp_path / "starts"
    spec = pyapp("app", port, tmp_path, *args, "--counter", str(counter))
    return spec, port, lambda: int(counter.read_text()) if counter.exists() else 0


def test_a_crash_is_shown_and_restarted_with_doubling_backoff(tmp_path: Path) -> None:
    crashy, port, starts = counted_app(tmp_path, "--crash-after", "0.3", "--crash-times", "2")
    out = io.StringIO()
    with running(Supervisor([crashy], out=out, color=False)) as run:
        assert run.ready.wait(20)
        eventually(lambda: starts() == 3, 15, "a third start")
        eventually(lambda: get(f"http://127.0.0.1:{port}/") == "hello", 10, "the third to serve")

    shown = out.getvalue()
    first, second = re.findall(r"app \(pid \d+\) exited with code 3 after running; (.*)", shown)
    assert first == "restarting in 1.0s. Last lines of " + str(tmp_path / "app.log") + ":"
    assert second.startswith("restarting in 2.0s.")
    assert "\n    crashing after 0.3s" in shown
    starts = [
        float(t) for t in re.findall(r"^app \| pyapp start \d pid \d+ at ([\d.]+)", shown, re.M)
    ]
    assert len(starts) >= 3
    assert starts[1] - starts[0] >= 0.3 + 1.0
    assert starts[2] - starts[1] >= 0.3 + 2.0


def test_gives_up_after_n_crashes_at_start_and_stops_everything(tmp_path: Path) -> None:
    app_port, ai_port = free_ports(2)
    policy = RestartPolicy(initial=0.2, longest=1.0, give_up_after=3)
    broken = pyapp("app", app_port, tmp_path, "--crash-at-start", "7", restart=policy)
    healthy = pyapp("ai", ai_port, tmp_path)
    out = io.StringIO()
    supervisor = Supervisor([broken, healthy], out=out, color=False)
    with running(supervisor) as run:
        assert run.finished(30) == 1

    assert supervisor.failure is not None
    assert supervisor.failure.startswith(
        "app failed 3 starts in a row (last: exited with code 7); stopping everything."
    )
    assert "boom: cannot start" in supervisor.failure
    assert out.getvalue().count("exited with code 7 while starting; restarting in") == 2
    assert out.getvalue().rstrip().endswith("boom: cannot start")
    assert get(f"http://127.0.0.1:{ai_port}/healthz") is None


def test_once_it_has_served_a_crash_loop_is_retried_not_given_up(tmp_path: Path) -> None:
    spec, _, starts = counted_app(
        tmp_path, "--crash-after", "0.3", "--crash-at-start", "4", "--crash-at-start-from", "2"
    )
    spec = dataclasses.replace(spec, restart=RestartPolicy(0.1, 0.4, give_up_after=2))
    out = io.StringIO()
    supervisor = Supervisor([spec], out=out)
    with running(supervisor) as run:
        assert run.ready.wait(20)
        eventually(lambda: starts() >= 6, 20, "6 starts")
        assert supervisor.failure is None
        assert run.thread is not None and run.thread.is_alive()
    delays = re.findall(r"restarting in ([\d.]+)s", out.getvalue())
    assert delays[:5] == ["0.1", "0.2", "0.4", "0.4", "0.4"]  # doubling, capped
    assert "exited with code 4 while starting; restarting in 0.4s" in out.getvalue()


def test_a_callable_probe_is_polled_but_cannot_go_detached(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    checked: list[bool] = []

    def tcp_probe() -> bool:
        with socket.socket() as sock:
            checked.append(sock.connect_ex(("127.0.0.1", port)) == 0)
        return checked[-1]

    spec = dataclasses.replace(pyapp("app", port, tmp_path), ready=(), ready_check=tcp_probe)
    with running(Supervisor([spec], out=io.StringIO())) as run:
        assert run.ready.wait(20)
    assert checked[-1] is True
    with pytest.raises(ValueError, match="a callable probe cannot run detached; use ready"):
        detached.start([spec], tmp_path / "state")


def test_not_ready_by_the_deadline_counts_as_a_failed_start(tmp_path: Path) -> None:
    port, wrong = free_ports(2)
    deaf = pyapp("app", port, tmp_path, ready_timeout=0.5, restart=RestartPolicy(0.1, 1.0, 2))
    deaf = dataclasses.replace(deaf, ready=(Http(f"http://127.0.0.1:{wrong}/healthz"),))
    supervisor = Supervisor([deaf], out=io.StringIO(), stop_timeout=1)
    with running(supervisor) as run:
        assert run.finished(30) == 1
    assert supervisor.failure is not None
    assert "app failed 2 starts in a row (last: not ready after 0.5s)" in supervisor.failure


def test_another_process_answering_the_probe_is_not_ready(
    tmp_path: Path, reaper: list[int]
) -> None:
    """A foreign server answers the ready URL with 200: not the process started, not ready."""
    port, foreign_port = free_ports(2)
    foreign = subprocess.Popen([sys.executable, str(PYAPP), "--port", str(foreign_port)])
    reaper.append(foreign.pid)
    url = f"http://127.0.0.1:{foreign_port}/healthz"
    eventually(lambda: get(url) is not None, 10, "the foreign server")
    started = pyapp("app", port, tmp_path, ready_timeout=0.5, restart=RestartPolicy(0.1, 1.0, 2))
    fooled = dataclasses.replace(started, ready=(Http(url, answers_pid=True),))
    supervisor = Supervisor([fooled], out=io.StringIO(), stop_timeout=1)
    with running(supervisor) as run:
        assert run.finished(30) == 1
    assert "app failed 2 starts in a row (last: not ready after 0.5s)" in str(supervisor.failure)
    # The same URL counts for the process that answers it, and for its parent (a launcher).
    assert probe.http(url, started=foreign.pid)()
    assert probe.http(url, started=os.getpid())()
    sibling = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    reaper.append(sibling.pid)
    assert not probe.http(url, started=sibling.pid)()


def test_a_process_starts_once_what_it_depends_on_is_ready(tmp_path: Path) -> None:
    db_port, app_port = free_ports(2)
    gate = threading.Event()
    serves = probe.http(f"http://127.0.0.1:{db_port}/healthz")
    db = dataclasses.replace(
        pyapp("db", db_port, tmp_path), ready=(), ready_check=lambda: gate.is_set() and serves()
    )
    app = pyapp("app", app_port, tmp_path, depends_on=("db",))
    out = io.StringIO()
    with running(Supervisor([app, db], out=out, color=False)) as run:
        eventually(serves, 20, "db serving, not ready yet")
        assert run.supervisor.pid("app") is None, "started before what it depends on was ready"
        gate.set()
        assert run.ready.wait(20)
    shown = out.getvalue()
    assert shown.index("db ready in") < shown.index("app | pyapp start")


def test_swap_replaces_the_process_and_waits_until_it_is_ready(tmp_path: Path) -> None:
    (port,) = free_ports(1)
    spec = pyapp("app", port, tmp_path, "--message", "old")
    with running(Supervisor([spec], out=io.StringIO())) as run:
        assert run.ready.wait(20)
        assert get(f"http://127.0.0.1:{port}/") == "old"

        new = pyapp("app", port, tmp_path, "--message", "new")
        assert run.supervisor.swap("app", new)

        assert get(f"http://127.0.0.1:{port}/") == "new"
        assert run.supervisor.spec("app") == new


# --- the supervisor process itself, signalled, and detached -------------------------------


def _spec_json(specs: list[ProcessSpec]) -> bytes:
    return json.dumps({"apps": [s.to_json() for s in specs]}).encode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_to_the_supervisor_leaves_no_child_or_grandchild(
    tmp_path: Path, sig: signal.Signals, reaper: list[int]
) -> None:
    app_port, ai_port = free_ports(2)
    state = tmp_path / "state"
    grandchild_file = tmp_path / "grandchild.pid"
    specs = [
        pyapp("app", app_port, tmp_path, "--grandchild", str(grandchild_file), "--ignore-term"),
        pyapp("ai", ai_port, tmp_path),
    ]
    argv = [sys.executable, "-m", "devenv.proc.detached", "--echo", "--state-dir", str(state)]
    log = tmp_path / "supervisor.out"
    with log.open("wb") as out:
        sup = subprocess.Popen(
            argv, cwd=REPO, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
        )
    reaper.append(sup.pid)
    assert sup.stdin is not None
    with sup.stdin:
        sup.stdin.write(_spec_json(specs))
    eventually(lambda: _all_ready(state), 20, "both apps ready")
    apps = json.loads((state / "status.json").read_text())["apps"]
    children = [apps["app"]["identity"]["pid"], apps["ai"]["identity"]["pid"]]
    grandchild = int(grandchild_file.read_text())
    reaper.extend([*children, grandchild])

    started = time.monotonic()
    sup.send_signal(sig)
    assert sup.wait(20) == 0
    took = time.monotonic() - started

    assert [pid for pid in [*children, grandchild] if not gone(pid)] == []
    # The stubborn app ignores SIGTERM: SIGKILL came after the 5 s grace, not sooner.
    assert took >= 5.0
    assert not (state / "status.json").exists()
    assert "app | listening on" in log.read_text()


def _all_ready(state: Path) -> bool:
    try:
        apps = json.loads((state / "status.json").read_text())["apps"]
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return all(app["ready"] for app in apps.values())


def _in_new_shell(code: str) -> str:
    """Run `code` in a separate Python process, as `inv status` in another terminal would."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


STATUS = """
import json, sys
from pathlib import Path
from devenv.proc import detached as d
s = d.status(Path(sys.argv[1] if len(sys.argv) > 1 else {state!r}))
print(json.dumps(None if s is None else {{"pid": s.pid, "apps": [
    {{"name": a.name, "pid": a.pid, "ready": a.ready, "uptime": a.uptime,
      "log": str(a.log_file)}} for a in s.apps]}}))
"""


def test_detached_status_logs_and_stop_from_another_shell(
    tmp_path: Path, reaper: list[int]
) -> None:
    app_port, ai_port = free_ports(2)
    state = tmp_path / "state"
    specs = [
        pyapp("app", app_port, tmp_path / "logs", "--grandchild", str(tmp_path / "gc.pid")),
        pyapp("ai", ai_port, tmp_path / "logs"),
    ]
    started = detached.start(specs, state, timeout=30)
    reaper.append(started.pid)
    reaper.extend(app.pid for app in started.apps if app.pid)

    shown = json.loads(_in_new_shell(STATUS.format(state=str(state))))
    assert shown["pid"] == started.pid
    assert [(a["name"], a["ready"]) for a in shown["apps"]] == [("app", True), ("ai", True)]
    assert all(a["pid"] and a["uptime"] >= 0 for a in shown["apps"])
    assert get(f"http://127.0.0.1:{app_port}/") == "hello"
    app_log = Path(shown["apps"][0]["log"])
    eventually(lambda: "request /" in app_log.read_text(), 5, "the request in the app's log")

    with pytest.raises(AlreadyRunning, match=f"already running \\(supervisor pid {started.pid}\\)"):
        detached.start(specs, state)
    with pytest.raises(AlreadyRunning, match=f"already running \\(pid {started.pid}\\)"):
        Supervisor(specs, state_dir=state).run()

    grandchild = int((tmp_path / "gc.pid").read_text())
    _in_new_shell(
        f"from pathlib import Path; from devenv.proc import detached as d; "
        f"assert d.stop(Path({str(state)!r}))"
    )

    assert json.loads(_in_new_shell(STATUS.format(state=str(state)))) is None
    pids = [started.pid, grandchild, *(a["pid"] for a in shown["apps"])]
    eventually(lambda: all(gone(pid) for pid in pids), 10, "every process gone")
    assert get(f"http://127.0.0.1:{app_port}/healthz") is None


def test_detached_start_that_gives_up_says_why(tmp_path: Path, reaper: list[int]) -> None:
    (port,) = free_ports(1)
    broken = pyapp("app", port, tmp_path, "--crash-at-start", "5", restart=RestartPolicy(0.1, 0.5))

    with pytest.raises(detached.DetachedError) as failure:
        detached.start([broken], tmp_path / "state", timeout=30)

    assert "app failed 3 starts in a row (last: exited with code 5)" in str(failure.value)
    assert detached.status(tmp_path / "state") is None


def test_stop_cleans_up_after_a_supervisor_killed_with_sigkill(
    tmp_path: Path, reaper: list[int]
) -> None:
    (port,) = free_ports(1)
    state = tmp_path / "state"
    started = detached.start([pyapp("app", port, tmp_path)], state, timeout=30)
    app_pid = started.apps[0].pid
    assert app_pid is not None
    reaper.extend([started.pid, app_pid])

    os.kill(started.pid, signal.SIGKILL)
    eventually(lambda: gone(started.pid), 5, "the supervisor killed")
    assert not gone(app_pid)  # orphaned, still serving

    assert detached.stop(state) is False
    eventually(lambda: gone(app_pid), 10, "the orphan stopped")


def test_a_process_refusing_its_settings_stops_everything_at_its_first_start(
    tmp_path: Path,
) -> None:
    app_port, ai_port = free_ports(2)
    refusing = pyapp("app", app_port, tmp_path, "--crash-at-start", "78")  # EX_CONFIG
    healthy = pyapp("ai", ai_port, tmp_path)
    out = io.StringIO()
    supervisor = Supervisor([refusing, healthy], out=out, color=False)
    with running(supervisor) as run:
        assert run.finished(30) == 1

    assert supervisor.failure is not None
    assert supervisor.failure.startswith("app refused its settings (exit 78); stopping everything.")
    assert "boom: cannot start" in supervisor.failure
    assert "restarting" not in out.getvalue()
    assert len(re.findall(r"^app \| pyapp start", out.getvalue(), re.M)) == 1
    assert get(f"http://127.0.0.1:{ai_port}/healthz") is None


def test_a_server_cut_off_mid_answer_is_not_ready() -> None:
    """A server that dies while it answers (a restart, a crash) is not ready: the probe
    says so and never raises into the supervisor."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def answer_half() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{"pid": 1')

        threading.Thread(target=answer_half, daemon=True).start()
        url = f"http://127.0.0.1:{server.getsockname()[1]}/healthz"
        assert probe.http(url, started=os.getpid())() is False
