"""The platform's own processes, run natively (ADR-0007): the Go monolith and the AI inference
service. What to build, how to start them, and when they count as ready."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from devenv import backends, build
from devenv.backends.base import ComponentStatus, InfraError
from devenv.proc import detached
from devenv.proc.record import AlreadyRunning
from devenv.proc.supervisor import ProcessSpec
from devenv.settings import REPO_ROOT, Settings

GO_MODULE = REPO_ROOT / "services" / "platform"
GO_PACKAGE = "./cmd/platform"
AI_SERVICE = REPO_ROOT / "services" / "ai-inference"
BINARY = REPO_ROOT / "bin" / "platform"
AI_VENV = AI_SERVICE / ".venv"

EXTRA_BIND_HOSTS = "APP_EXTRA_BIND_HOSTS"

GO_TARGET = build.GoTarget(GO_MODULE, GO_PACKAGE, BINARY)
AI_TARGET = build.VenvTarget(AI_SERVICE, AI_VENV)


def build_all() -> list[str]:
    """Build what is stale; one line per artefact saying what happened and how long it took."""
    return build.build_all([GO_TARGET], [AI_TARGET], repo=REPO_ROOT)


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


def specs(settings: Settings) -> list[ProcessSpec]:
    env = settings.as_env()
    logs = log_files(settings)
    return [
        ProcessSpec(
            name="app",
            argv=(str(BINARY), "serve"),
            log_file=logs["app"],
            env={**env, EXTRA_BIND_HOSTS: ",".join(listen_hosts(settings))},
            # One process, three servers bound before any serves; ingestion's /readyz checks
            # PostgreSQL, Kafka and MQTT, the union of the three servers' dependencies.
            ready_url=f"http://127.0.0.1:{settings.INGESTION_PORT}/readyz",
            ready_timeout=60,
        ),
        ProcessSpec(
            name="ai",
            argv=(str(AI_VENV / "bin" / "python"), "-m", "ai_inference"),
            log_file=logs["ai"],
            cwd=AI_SERVICE,
            env=env,
            ready_url=f"http://127.0.0.1:{settings.AI_INFERENCE_PORT}/healthz",
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
        "app": f"127.0.0.1:{settings.INGESTION_PORT}-{settings.ACTIONS_PORT}",
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
        )
        for app in running.apps
    ]


def refuse_if_running(settings: Settings) -> None:
    """Another `inv run` (foreground or detached) already supervises the apps: say so."""
    running = detached.status(supervisor_dir(settings))
    if running is not None:
        raise AlreadyRunning(
            f"the apps already run (supervisor pid {running.pid}): use them, or `inv down` first"
        )


def stop(settings: Settings) -> bool:
    """Stop the detached apps, if any; True when something ran."""
    return detached.stop(supervisor_dir(settings))


def log_files(settings: Settings) -> dict[str, Path]:
    return {name: supervisor_dir(settings) / f"{name}.log" for name in ("app", "ai")}
