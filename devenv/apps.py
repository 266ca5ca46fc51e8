"""The platform's own processes, run natively (ADR-0007): the Go monolith and the AI inference
service. What to build, how to start them, and when they count as ready."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from devenv import backends, build, declared, ports, state
from devenv.backends.base import ComponentStatus, InfraError, Say
from devenv.proc import detached
from devenv.proc import status as recorded_status
from devenv.proc.readiness import Http
from devenv.proc.record import Lock
from devenv.proc.supervisor import ProcessSpec, lock_for
from devenv.settings import REPO_ROOT, Settings

GO_MODULE = REPO_ROOT / "services" / "platform"
GO_PACKAGE = "./cmd/platform"
AI_SERVICE = REPO_ROOT / "services" / "ai-inference"
BINARY = REPO_ROOT / "bin" / "platform"
AI_VENV = AI_SERVICE / ".venv"

# Every port an app listens on: the monolith's servers (each port setting marked `x-server` in
# the settings schema) and the AI service.
SERVER_PORT_KEYS = declared.server_ports()
APP_PORT_KEYS = (*SERVER_PORT_KEYS, "AI_INFERENCE_PORT")
EXTRA_BIND_HOSTS = "APP_EXTRA_BIND_HOSTS"
# What the monolith needs before it can start (it migrates the database) and serve: as the ECS
# task's `dependsOn` HEALTHY says too (deploy/aws.yaml; held by a unit test).
INFRASTRUCTURE_NEEDED = ("db", "bus", "mqtt")

GO_TARGET = build.GoTarget(GO_MODULE, GO_PACKAGE, BINARY)
AI_TARGET = build.VenvTarget(AI_SERVICE, AI_VENV)


def build_all(go: build.GoTarget = GO_TARGET) -> list[str]:
    """Build what is stale; one line per artefact saying what happened and how long it took.
    `go`: the monolith's build (`inv run --debug` has its own)."""
    return build.build_all([go], [AI_TARGET], repo=REPO_ROOT)


def stale() -> list[str]:
    return build.stale([GO_TARGET], [AI_TARGET])


def migrate(settings: Settings) -> None:
    """Apply the monolith's embedded migrations (idempotent), with the stack's settings."""
    result = subprocess.run(
        [str(BINARY), "migrate"],
        env={**os.environ, **settings.as_env()},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise InfraError(f"migrations failed: {(result.stderr or result.stdout).strip()}")


def trace_export_url(settings: Settings) -> str:
    """Where the apps send their spans: TRACE_EXPORT_URL when set; else, with TRACING on,
    the local viewer's spans API; with TRACING off nowhere (empty: no exporter starts)."""
    if settings.TRACING == "off":
        return ""
    given = settings.value("TRACE_EXPORT_URL")
    return given or f"http://127.0.0.1:{settings.ZIPKIN_PORT}/api/v2/spans"


def specs(settings: Settings) -> list[ProcessSpec]:
    env = {**settings.as_env(), "TRACE_EXPORT_URL": trace_export_url(settings)}
    logs = log_files(settings)
    return [
        ProcessSpec(
            name="app",
            argv=(str(BINARY), "serve"),
            log_file=logs["app"],
            env={**env, EXTRA_BIND_HOSTS: ",".join(listen_hosts(settings))},
            # One process, one server per port, each answering with the pid that proves it is
            # this process and not another on the port. Ingestion's /readyz checks PostgreSQL,
            # Kafka and MQTT; the others' /healthz, not /readyz: query's checks the AI service, a
            # process of its own whose slow start must not count as the monolith's failure.
            ready=(
                Http(f"http://127.0.0.1:{settings.INGESTION_PORT}/readyz", answers_pid=True),
                *(
                    Http(f"http://127.0.0.1:{getattr(settings, key)}/healthz", answers_pid=True)
                    for key in SERVER_PORT_KEYS
                    if key != "INGESTION_PORT"
                ),
            ),
            ready_timeout=60,
            # Infrastructure roles: `inv run` brings them up before it starts the apps.
            depends_on=INFRASTRUCTURE_NEEDED,
        ),
        ProcessSpec(
            name="ai",
            argv=(str(AI_VENV / "bin" / "python"), "-m", "ai_inference"),
            log_file=logs["ai"],
            cwd=AI_SERVICE,
            env=env,
            ready=(
                Http(f"http://127.0.0.1:{settings.AI_INFERENCE_PORT}/healthz", answers_pid=True),
            ),
            ready_timeout=60,
        ),
    ]


def listen_hosts(settings: Settings) -> list[str]:
    """The monolith's APP_EXTRA_BIND_HOSTS: the setting's, then the addresses where the
    backend's gateway sends to the apps (on a Linux Docker engine, its bridge's)."""
    given = [host for host in settings.value(EXTRA_BIND_HOSTS).split(",") if host]
    reached = backends.select(settings, say=lambda _line: None).upstream_hosts()
    return list(dict.fromkeys([*given, *reached]))


def supervisor_dir(settings: Settings) -> Path:
    return settings.state_dir / "apps"


def gateway_urls(settings: Settings) -> list[str]:
    base = f"http://127.0.0.1:{settings.GATEWAY_PORT}"
    return [
        f"{base}/ingest/v1/telemetry     POST a batch of readings",
        f"{base}/query/v1/devices        devices, latest, readings, events",
        f"{base}/actions/v1/devices/{{id}}/commands   POST a command",
        f"http://127.0.0.1:{settings.GATEWAY_DASHBOARD_PORT}/dashboard/   gateway dashboard",
        f"mqtt://127.0.0.1:{settings.MQTT_PORT}  devices/{{id}}/telemetry, devices/{{id}}/commands",
    ]


def status(settings: Settings) -> list[ComponentStatus]:
    """The apps the detached supervisor runs, as `inv status` lines (none when not running)."""
    running = detached.status(supervisor_dir(settings))
    if running is None:
        return []
    addresses = {
        "app": "127.0.0.1:" + ",".join(str(getattr(settings, key)) for key in SERVER_PORT_KEYS),
        "ai": f"127.0.0.1:{settings.AI_INFERENCE_PORT}",
    }
    return [
        ComponentStatus(
            service=app.name,
            role="app",
            backend="native",
            state="running" if app.pid else "restarting",
            healthy=app.ready,
            address=addresses.get(app.name, "-"),
            ident=f"pid {app.pid}" if app.pid else "-",
            uptime=app.uptime,
            pid=app.pid,
            restarts=app.restarts,
            last_exit=str(app.last_exit) if app.last_exit else None,
        )
        for app in running.apps
    ]


@contextlib.contextmanager
def claim(settings: Settings, say: Say = print) -> Iterator[Lock]:
    """Everything `inv run` checks before it starts or builds anything: the supervisor's lock
    (so a second run is refused at once, not after building over the binary of the first;
    the supervisor keeps it, a detached one inherits it), the apps a killed supervisor left
    behind stopped, then every app port free. One error line names what is in the way."""
    where = supervisor_dir(settings)
    state.claim(settings.state_dir)
    lock = lock_for(where)
    with lock.held(wait=False):
        for line in recorded_status.stop_orphans(where, settings.STOP_TIMEOUT):
            say(line)
        ports.check_free({getattr(settings, key): key for key in APP_PORT_KEYS})
        yield lock


def stop(settings: Settings) -> bool:
    """Stop the detached apps, if any; True when something ran."""
    return detached.stop(supervisor_dir(settings))


def log_files(settings: Settings) -> dict[str, Path]:
    return {name: supervisor_dir(settings) / f"{name}.log" for name in ("app", "ai")}
