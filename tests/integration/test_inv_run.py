"""`inv run` as a user runs it: the whole platform up and answering through the gateway, then
Ctrl-C leaves no app process behind (the infrastructure keeps running until `inv down`)."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest
import requests

from devenv import apps, poll, ports
from devenv.proc import detached
from tests.support.stack import INV, Stack
from tests.support.wait import eventually

pytestmark = pytest.mark.integration


@contextlib.contextmanager
def inv_run(stack: Stack) -> Iterator[tuple[subprocess.Popen[str], IO[str]]]:
    """`inv run` in the foreground with its output to read; Ctrl-C on the way out (the user's
    way to stop it) if it still runs."""
    proc = subprocess.Popen(
        [*INV, "run"], env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    try:
        yield proc, proc.stdout
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)


def test_run_serves_through_the_gateway_and_ctrl_c_stops_every_app(stack: Stack) -> None:
    seen = []
    with inv_run(stack) as (_, output):
        for line in output:
            seen.append(line)
            if "answers through the gateway" in line:
                break
        else:
            pytest.fail("inv run ended before the apps were ready:\n" + "".join(seen[-30:]))
        gateway = f"http://127.0.0.1:{stack.port('GATEWAY_PORT')}"
        assert requests.get(f"{gateway}/query/v1/devices", timeout=10).status_code == 200
        recorded = json.loads((stack.state_dir / "apps" / "status.json").read_text())["apps"]
        pids = [app["identity"]["pid"] for app in recorded.values()]
        assert len(pids) == 2 and all(pids)
        assert any(line.startswith("app") and "|" in line for line in seen), "no prefixed app log"
    poll.until(lambda: not any(psutil.pid_exists(pid) for pid in pids), 5)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []
    for key in ("INGESTION_PORT", "QUERY_PORT", "ACTIONS_PORT", "AI_INFERENCE_PORT"):
        assert ports.is_free(stack.port(key)), f"{key} still held after Ctrl-C"
    # The infrastructure is still up: it is `inv down` that stops it.
    assert stack.inv("status").stdout.count("healthy") == 4


def test_run_with_a_bad_app_setting_fails_with_the_apps_own_line_and_leaves_no_app(
    stack: Stack,
) -> None:
    """devenv passes a setting only the monolith reads through untouched; the monolith refuses
    it as it starts, and `inv run` ends with that line instead of serving half a platform."""
    stack.env["KAFKA_TOPIC_PARTITIONS"] = "0"
    seen = []
    with inv_run(stack) as (proc, output):
        for line in output:
            seen.append(line)
            assert "answers through the gateway" not in line, "served with a bad setting"
        code = proc.wait(timeout=30)
    assert code != 0
    last = seen[-1] if seen else ""
    assert "KAFKA_TOPIC_PARTITIONS" in last and "0" in last, "".join(seen[-10:])
    # Refused at the first start (EX_CONFIG): no restarts that could only say it again.
    assert not any("restarting in" in line for line in seen), "".join(seen)
    assert any("app refused its settings" in line for line in seen), "".join(seen[-10:])
    assert apps_of(stack) == []
    for key in ("INGESTION_PORT", "QUERY_PORT", "ACTIONS_PORT", "AI_INFERENCE_PORT"):
        assert ports.is_free(stack.port(key)), f"{key} still held after the failed run"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=str)
@pytest.mark.parametrize("mode", [[], ["--detach"]], ids=["foreground", "detached"])
def test_sigterm_or_sighup_while_the_apps_start_stops_every_app(
    stack: Stack, mode: list[str], sig: signal.Signals
) -> None:
    """A `kill` or a closed terminal while the apps start stops them, as Ctrl-C does."""
    stack.inv("up")
    # The broker, as its supervisor records it (the broker had a record of its own before).
    supervised = detached.status(stack.state_dir / "native" / "emqx")
    broker = supervised.apps[0] if supervised else None
    assert broker is not None and broker.pid is not None
    # A broker that accepts connections but never answers: the monolith cannot get ready,
    # so however quick the machine, the signal lands while the apps start.
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        proc = subprocess.Popen(
            [*INV, "run", *mode], env=stack.env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            eventually(lambda: recorded_app_pid(stack) is not None, 180, "the monolith started")
            proc.send_signal(sig)
            output = proc.communicate(timeout=60)[0]
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        os.kill(broker.pid, signal.SIGCONT)
    eventually(lambda: apps_of(stack) == [], 10, "no app left")
    for key in ("INGESTION_PORT", "QUERY_PORT", "ACTIONS_PORT", "AI_INFERENCE_PORT"):
        assert ports.is_free(stack.port(key)), f"{key} still held"
    assert proc.returncode != 0, output
    assert "interrupted" in output, output
    assert "answers through the gateway" not in output


def test_a_foreign_server_on_an_app_port_is_named_and_nothing_starts(stack: Stack) -> None:
    """Another project's server answers /healthz with 200 on the ingestion port: `inv run`
    names it and starts nothing, instead of announcing a platform that is not there."""
    port = stack.port("INGESTION_PORT")

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

    with http.server.HTTPServer(("127.0.0.1", port), Healthy) as foreign:
        serving = threading.Thread(target=foreign.serve_forever, daemon=True)
        serving.start()
        try:
            result = stack.inv("run", "--detach", check=False, timeout=60)
        finally:
            foreign.shutdown()
    assert result.returncode != 0
    message = result.stderr.strip()
    assert message.count("\n") == 0, message
    assert f"port {port} is in use by" in message and f"(pid {os.getpid()})" in message
    assert "set INGESTION_PORT in .env" in message
    assert "answers through the gateway" not in result.stdout
    assert apps_of(stack) == []
    assert stack.our_processes() == []  # not even the infrastructure


def test_a_second_run_while_the_first_starts_is_refused_in_one_line_before_it_builds(
    stack: Stack, tmp_path: Path
) -> None:
    # The first run waits in `inv up` for a held broker, before its build: the second comes
    # while the first has not started any app yet, the moment two builds used to race.
    release = tmp_path / "release"
    stack.hold_at_start("mosquitto", release)
    first = subprocess.Popen(
        [*INV, "run"], env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert first.stdout is not None
    try:
        for line in first.stdout:
            if "✓" in line:  # another component is healthy: the first run is in `inv up`
                break
        binary = apps.BINARY.stat().st_mtime_ns if apps.BINARY.exists() else None
        second = stack.inv("run", check=False, timeout=60)
        assert second.returncode != 0
        assert second.stderr.strip().count("\n") == 0, second.stderr
        assert f"already running (pid {first.pid})" in second.stderr
        assert "go build" not in second.stdout, second.stdout
        assert (apps.BINARY.stat().st_mtime_ns if apps.BINARY.exists() else None) == binary
    finally:
        first.send_signal(signal.SIGINT)
        release.touch()
        first.communicate(timeout=60)


def recorded_app_pid(stack: Stack) -> int | None:
    """The monolith's pid as its supervisor recorded it (None before it is spawned)."""
    try:
        recorded = json.loads((stack.state_dir / "apps" / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    identity = recorded["apps"].get("app", {}).get("identity")
    return identity["pid"] if identity else None


def apps_of(stack: Stack) -> list[psutil.Process]:
    """Live app processes of this stack (their environment names its state folder)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "bin/platform" not in cmdline and "ai_inference" not in cmdline:
            continue
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("STATE_DIR") == str(stack.state_dir) and (
                proc.info["status"] != psutil.STATUS_ZOMBIE
            ):
                found.append(proc)
    return found
