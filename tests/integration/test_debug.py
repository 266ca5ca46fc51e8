"""`inv run --debug` with the real debuggers: the platform answers through the gateway while
Delve's JSON-RPC API sees the monolith's process and debugpy answers a DAP `initialize`; a
reload under `--watch` starts the new binary under Delve again; a busy debug port is one line
naming its holder, and nothing starts."""

from __future__ import annotations

import io
import json
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from devenv import build, debug, ports, settings
from devenv.proc import reload
from devenv.proc.readiness import Http
from devenv.proc.supervisor import ProcessSpec, Supervisor
from devenv.stack import free_ports
from tests.support.running import get, running
from tests.support.stack import Stack
from tests.support.wait import eventually

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed"),
]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APP_PORTS = ("INGESTION_PORT", "QUERY_PORT", "ACTIONS_PORT", "AI_INFERENCE_PORT")


def test_run_debug_serves_and_delve_and_debugpy_see_the_apps(stack: Stack) -> None:
    started = stack.inv("run", "--debug", "--detach", timeout=600)
    delve_port, debugpy_port = stack.port("DELVE_PORT"), stack.port("DEBUGPY_PORT")
    assert f"app: Delve on 127.0.0.1:{delve_port}" in started.stdout
    assert f"ai: debugpy on 127.0.0.1:{debugpy_port}" in started.stdout
    gateway = f"http://127.0.0.1:{stack.port('GATEWAY_PORT')}"
    assert requests.get(f"{gateway}/query/v1/devices", timeout=10).status_code == 200
    healthz = f"http://127.0.0.1:{stack.port('INGESTION_PORT')}/healthz"
    served_by = requests.get(healthz, timeout=10).json()

    with delve(delve_port) as dlv:
        state = dlv.call("RPCServer.Command", {"name": "halt"})["State"]
        assert state["Pid"] == served_by["pid"]
        found = dlv.call("RPCServer.ListFunctions", {"Filter": r"^platform/internal/app\.Serve$"})
        assert found["Funcs"] == ["platform/internal/app.Serve"]
        dlv.send("RPCServer.Command", {"name": "continue"})  # answered at the next stop: none
    assert requests.get(f"{gateway}/query/v1/devices", timeout=10).status_code == 200

    response = dap_initialize(debugpy_port)
    assert response["success"] is True and response["command"] == "initialize"
    assert response["body"]["supportsConfigurationDoneRequest"] is True

    stack.inv("down", "-c", "app")
    for key in (*APP_PORTS, "DELVE_PORT", "DEBUGPY_PORT"):
        assert ports.is_free(stack.port(key)), f"{key} still held after `inv down -c app`"


def test_a_busy_debug_port_is_one_line_naming_its_holder_and_nothing_starts(stack: Stack) -> None:
    with socket.create_server(("127.0.0.1", stack.port("DELVE_PORT"))):
        result = stack.inv("run", "--debug", "app", "--detach", check=False)
    assert result.returncode == 1
    holder = psutil.Process().name()
    assert result.stderr.strip().splitlines() == [
        f"error: port {stack.port('DELVE_PORT')} is in use by {holder} (pid {psutil.Process().pid})"
        ": stop it or set DELVE_PORT in .env"
    ]
    assert not (stack.state_dir / "apps" / "status.json").exists()
    assert stack.our_processes() == []


def test_a_reload_starts_the_new_binary_under_delve_again(tmp_path: Path) -> None:
    module = tmp_path / "goapp"
    shutil.copytree(FIXTURES / "goapp", module)
    binary = tmp_path / "bin" / "goapp"
    build.go_build(module, ".", binary, ldflags_vars={}, gcflags=debug.GCFLAGS, echo=None)
    http_port, delve_port = free_ports(2)
    current = settings.load(overrides={"DELVE_PORT": str(delve_port)})
    plain = ProcessSpec(
        name="app",
        argv=(str(binary), "-addr", f"127.0.0.1:{http_port}"),
        log_file=tmp_path / "app.log",
        ready=(Http(f"http://127.0.0.1:{http_port}/readyz"),),
    )
    supervisor = Supervisor([debug.under_delve(plain, current)], out=io.StringIO(), color=False)
    target = debug.go_reload(reload.GoReload("app", module, ".", tmp_path / "reload"))
    reloader = reload.Reloader(supervisor, [target])
    with running(supervisor) as run:
        assert run.ready.wait(60), (tmp_path / "app.log").read_text()
        reloader.start()
        try:
            assert get(f"http://127.0.0.1:{http_port}/") == "hello v1"
            (module / "message.go").write_text('package main\n\nconst message = "hello v2"\n')
            eventually(lambda: get(f"http://127.0.0.1:{http_port}/") == "hello v2", 90, "v2")
            eventually(lambda: bool(reloader.history), 5, "the reload recorded")
            assert reloader.history[0].ok, reloader.history
            argv = supervisor.spec("app").argv
            assert argv[0] == debug.delve() and argv[1] == "exec"
            reloaded = argv[debug.BINARY_ARG]
            assert Path(reloaded).parent == tmp_path / "reload"
            with delve(delve_port) as dlv:
                state = dlv.call("RPCServer.Command", {"name": "halt"})["State"]
                assert psutil.Process(state["Pid"]).exe() == reloaded
                assert psutil.Process(state["Pid"]).ppid() == supervisor.pid("app")
                dlv.send("RPCServer.Command", {"name": "continue"})
            assert get(f"http://127.0.0.1:{http_port}/") == "hello v2"
        finally:
            reloader.close()


class DelveClient:
    """Delve's JSON-RPC API (what `dlv connect` and GoLand speak), one call at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.answers = sock.makefile("rb")
        self.calls = 0

    def send(self, method: str, params: dict[str, Any]) -> None:
        self.calls += 1
        message = {"method": method, "params": [params], "id": self.calls}
        self.sock.sendall(json.dumps(message).encode())

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.send(method, params)
        answer = json.loads(self.answers.readline())
        assert answer["id"] == self.calls and answer["error"] is None, answer
        return dict(answer["result"])


@contextmanager
def delve(port: int) -> Iterator[DelveClient]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        yield DelveClient(sock)


def dap_initialize(port: int) -> dict[str, Any]:
    """Send a DAP `initialize` request and return its response (events before it skipped)."""
    request = {
        "seq": 1,
        "type": "request",
        "command": "initialize",
        "arguments": {"clientID": "devenv-test", "adapterID": "debugpy", "pathFormat": "path"},
    }
    body = json.dumps(request).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"Content-Length: %d\r\n\r\n%b" % (len(body), body))
        stream = sock.makefile("rb")
        while True:
            length = 0
            while (line := stream.readline().strip()) != b"":
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            message: dict[str, Any] = json.loads(stream.read(length))
            if message["type"] == "response" and message.get("request_seq") == 1:
                return message
