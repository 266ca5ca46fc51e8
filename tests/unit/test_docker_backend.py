"""The docker backend, held to the exact `docker compose` commands it runs."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devenv import backends
from devenv.backends.base import InfraError
from devenv.backends.docker import DockerBackend, parse_ps
from devenv.backends.native import NativeBackend
from devenv.settings import load
from devenv.stack import free_ports


class FakeDocker:
    """Records every command; answers `ps` from a table of running services."""

    def __init__(self, running: dict[str, str] | None = None, fail_up: bool = False):
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.running = running or {}
        self.fail_up = fail_up

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        self.envs.append(kwargs["env"])
        verb = argv[6]
        if verb == "ps":
            rows = [
                {"Service": s, "State": "running", "Health": h, "ID": f"{s}-id", "CreatedAt": ""}
                for s, h in self.running.items()
            ]
            return subprocess.CompletedProcess(argv, 0, "\n".join(map(json.dumps, rows)), "")
        if verb == "up" and self.fail_up:
            return subprocess.CompletedProcess(argv, 1, "", "dependency failed: redpanda unhealthy")
        return subprocess.CompletedProcess(argv, 0, "redpanda | boom", "")

    def verbs(self) -> list[list[str]]:
        return [call[6:] for call in self.calls]


def backend(fake: FakeDocker, tmp_path: Path, **env: str) -> DockerBackend:
    ports = dict(
        zip(
            ["POSTGRES_PORT", "KAFKA_PORT", "MQTT_PORT", "GATEWAY_PORT", "GATEWAY_DASHBOARD_PORT",
             "REDPANDA_ADMIN_PORT", "EMQX_DASHBOARD_PORT"],
            map(str, free_ports(7)),
            strict=True,
        )
    )  # fmt: skip
    settings = load(env_file=tmp_path / "none", environ={**ports, **env})
    return DockerBackend(settings, say=lambda _: None, runner=fake)


def test_up_waits_for_healthchecks_of_every_service(tmp_path: Path) -> None:
    fake = FakeDocker()
    backend(fake, tmp_path, UP_TIMEOUT="45").up([])
    up = fake.calls[-1]
    assert up[:2] == ["docker", "compose"]
    assert up[up.index("-f") + 1].endswith("compose.yaml")
    assert up[6:] == ["up", "--detach", "--wait", "--wait-timeout", "45",
                      "postgres", "redpanda", "emqx", "traefik"]  # fmt: skip


def test_settings_reach_compose_interpolation(tmp_path: Path) -> None:
    fake = FakeDocker()
    backend(fake, tmp_path, POSTGRES_USER="alice").up(["db"])
    assert fake.envs[-1]["POSTGRES_USER"] == "alice"
    assert fake.calls[-1][-1] == "postgres"


def test_up_when_everything_runs_is_a_no_op(tmp_path: Path) -> None:
    fake = FakeDocker(running=dict.fromkeys(["postgres", "redpanda", "emqx", "traefik"], "healthy"))
    backend(fake, tmp_path).up([])
    assert [v[0] for v in fake.verbs()] == ["ps"]


def test_failed_up_stops_what_it_started_and_shows_logs(tmp_path: Path) -> None:
    fake = FakeDocker(running={"postgres": "healthy"}, fail_up=True)
    with pytest.raises(InfraError) as err:
        backend(fake, tmp_path).up([])
    assert "redpanda unhealthy" in str(err.value)
    assert "redpanda | boom" in str(err.value)
    verbs = fake.verbs()
    assert verbs[-1] == ["stop", "redpanda", "emqx", "traefik"]  # not postgres: it ran before
    assert verbs[-2][:3] == ["logs", "--no-color", "--tail"]


def test_down_keeps_volumes_and_clean_removes_them(tmp_path: Path) -> None:
    fake = FakeDocker()
    b = backend(fake, tmp_path)
    b.down([])
    b.clean()
    assert fake.verbs() == [["down", "--remove-orphans"], ["down", "--volumes", "--remove-orphans"]]


def test_status_reports_each_component(tmp_path: Path) -> None:
    fake = FakeDocker(running={"postgres": "healthy", "emqx": "starting"})
    rows = {r.role: r for r in backend(fake, tmp_path).status()}
    assert rows["db"].state == "running" and rows["db"].healthy is True
    assert rows["mqtt"].healthy is False
    assert rows["bus"].state == "stopped" and rows["bus"].healthy is None
    assert rows["db"].backend == "docker"


def test_busy_port_is_refused_before_compose_runs(tmp_path: Path) -> None:
    fake = FakeDocker()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(Exception, match=f"port {port} is in use.*set MQTT_PORT"):
            backend(fake, tmp_path, MQTT_PORT=str(port)).up([])
    assert [v[0] for v in fake.verbs()] == ["ps"]


def test_ps_output_of_old_and_new_compose_versions() -> None:
    rows = [{"Service": "postgres"}, {"Service": "emqx"}]
    assert parse_ps(json.dumps(rows)) == rows
    assert parse_ps("\n".join(json.dumps(r) for r in rows)) == rows
    assert parse_ps("") == []


def test_backend_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    none = tmp_path / "none"

    def select(**environ: str) -> object:
        chosen = backends.select(
            load(env_file=none, environ={"STATE_DIR": str(tmp_path), **environ})
        )
        return chosen.inner  # type: ignore[attr-defined]

    monkeypatch.setattr(backends, "docker_engine_answers", lambda: False)
    assert isinstance(select(), NativeBackend)
    with pytest.raises(InfraError, match="no Docker engine answers: start Docker, or set INFRA_"):
        select(INFRA_BACKEND="docker")
    monkeypatch.setattr(backends, "docker_engine_answers", lambda: True)
    monkeypatch.setattr(backends, "docker_compose_answers", lambda: False)
    with pytest.raises(InfraError, match=r"\(the Compose v2 plugin\) is missing: install it"):
        select(INFRA_BACKEND="docker")
    monkeypatch.setattr(backends, "docker_compose_answers", lambda: True)
    assert isinstance(select(INFRA_BACKEND="docker"), DockerBackend)
    assert isinstance(select(), DockerBackend)
    assert isinstance(select(INFRA_BACKEND="native"), NativeBackend)


def test_the_backend_that_started_the_stack_is_used_until_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backends, "docker_engine_answers", lambda: False)
    settings = load(env_file=tmp_path / "none", environ={"STATE_DIR": str(tmp_path / "s")})
    chosen = backends.select(settings)
    chosen.inner = _NothingToStart()  # type: ignore[attr-defined]
    chosen.up([])
    # Docker starts in between: `down` must still go to the backend that started the stack.
    monkeypatch.setattr(backends, "docker_engine_answers", lambda: True)
    again = backends.select(settings)
    assert isinstance(again.inner, NativeBackend)  # type: ignore[attr-defined]
    again.inner = _NothingToStart()  # type: ignore[attr-defined]
    again.down([])
    assert isinstance(backends.select(settings).inner, DockerBackend)  # type: ignore[attr-defined]


class _NothingToStart:
    name = "native"

    def up(self, names: list[str]) -> None:
        pass

    def down(self, names: list[str]) -> None:
        pass
