"""Fault injection against a running private stack (`nox -s faults`): kill an infrastructure
component (`docker kill` of its container, SIGKILL of its process group natively), or pause
it (SIGSTOP, natively); pause and kill the monolith, run it with failpoints or as a second
instance; wait for the broker's next save. Processes are started and stopped through the same
helpers as `inv run` (the backend, the detached supervisor)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import apps, backends, poll
from devenv.backends.base import ComponentStatus, InfraError, Say
from devenv.proc import detached, group
from devenv.proc.spec import ProcessSpec
from devenv.settings import Settings
from tests.support.wait import eventually

FAILPOINTS_ENV = "PLATFORM_FAILPOINTS"  # read by services/platform/internal/failpoint
BACKEND = os.environ.get("FAULTS_BACKEND", "native")  # `nox -s "faults(docker)"`: docker
# How long the monolith stays paused (SIGSTOP) under MQTT load; CI may shorten it.
PAUSE_SECONDS = float(os.environ.get("FAULTS_PAUSE_SECONDS", "30"))


def component(settings: Settings, role: str) -> ComponentStatus:
    """A running infrastructure component, as `inv status` shows it."""
    for row in backends.select(settings, lambda _line: None).status():
        if row.role == role and row.state == "running":
            return row
    raise InfraError(f"{role} is not running")


def component_pid(settings: Settings, role: str) -> int:
    """The pid (process group leader) of a component that runs natively."""
    pid = component(settings, role).pid
    if pid is None:
        raise InfraError(f"{role} is not running natively; this fault needs the native backend")
    return pid


def kill9_component(settings: Settings, role: str) -> None:
    """SIGKILL every process of the component and wait until they are gone: `docker kill`
    of its container, or of its process group when it runs natively. The caller started a
    native stack, so it reaps the leader: a zombie would still hold its pid (PostgreSQL's
    lock file names it) until our exit."""
    row = component(settings, role)
    if row.backend == "docker":
        subprocess.run(["docker", "kill", row.ident], capture_output=True, check=True)
        if not poll.until(lambda: component_state(settings, role) != "running", 30):
            raise InfraError(f"the {role} container still runs 30s after `docker kill`")
        return
    pid = component_pid(settings, role)
    group.stop_group(pid, 5, first_signal=signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def component_state(settings: Settings, role: str) -> str:
    rows = backends.select(settings, lambda _line: None).status()
    return next(row.state for row in rows if row.role == role)


@contextlib.contextmanager
def paused_component(settings: Settings, role: str) -> Iterator[None]:
    """SIGSTOP every process of the component for the duration (a stalled server: its
    sockets stay open, nothing answers), SIGCONT on exit, even on failure or Ctrl-C."""
    pid = component_pid(settings, role)
    try:
        group.signal_group(pid, signal.SIGSTOP)
        yield
    finally:
        group.signal_group(pid, signal.SIGCONT)


def stop_component(settings: Settings, role: str, say: Say = print) -> None:
    """`inv down -c <role>`: a clean stop; the component's data stays."""
    backends.select(settings, say).down([role])


def restart_component(settings: Settings, role: str, say: Say = print) -> None:
    """`inv up <role>`: the backend starts what is not running and waits until healthy."""
    backends.select(settings, say).up([role])


def app_pid(settings: Settings, state_dir: Path | None = None) -> int | None:
    """The monolith's pid under the detached supervisor (None while it restarts)."""
    running = detached.status(state_dir or apps.supervisor_dir(settings))
    if running is None:
        return None
    return next((a.pid for a in running.apps if a.name == "app"), None)


def app_spec(settings: Settings, **extra_env: str) -> ProcessSpec:
    spec = next(s for s in apps.specs(settings) if s.name == "app")
    return dataclasses.replace(spec, env={**spec.env, **extra_env})


@contextlib.contextmanager
def apps_with_failpoints(settings: Settings, *names: str) -> Iterator[ProcessSpec]:
    """Restart the stack's apps with failpoints enabled in the monolith; on exit, restart
    them without (as `inv run` would after the crash)."""
    others = [s for s in apps.specs(settings) if s.name != "app"]
    spec = app_spec(settings, **{FAILPOINTS_ENV: ",".join(names)})
    apps.stop(settings)
    try:
        detached.start([spec, *others], apps.supervisor_dir(settings))
        yield spec
    finally:
        apps.stop(settings)
        detached.start(apps.specs(settings), apps.supervisor_dir(settings))


@contextlib.contextmanager
def second_instance(settings: Settings, ports: list[int]) -> Iterator[ProcessSpec]:
    """Another monolith on the same infrastructure: its own three HTTP ports (so its own
    default MQTT client id), its own log and supervisor folder. It leaves for good at the
    end, so its broker session is forgotten too (see forget_mqtt_session)."""
    ingestion, query, actions = ports
    other = settings.model_copy(
        update={"INGESTION_PORT": ingestion, "QUERY_PORT": query, "ACTIONS_PORT": actions}
    )
    state = settings.state_dir / "apps-2"
    spec = dataclasses.replace(app_spec(other), log_file=state / "app.log")
    detached.start([spec], state)
    try:
        yield spec
    finally:
        detached.stop(state)
        for client_id in mqtt_client_ids(spec.log_file):
            forget_mqtt_session(settings, client_id)


def mqtt_client_ids(app_log: Path) -> set[str]:
    """The MQTT client ids an app logged on connecting."""
    ids = set()
    for line in app_log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("msg") == "mqtt connected":
                ids.add(entry["client_id"])
    return ids


def forget_mqtt_session(settings: Settings, client_id: str) -> None:
    """End the persistent session of an instance that is gone for good: the broker keeps
    queueing every reading for it (each instance's own subscription, docs/mqtt-sizing.md)
    until the session's queue is full."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect("127.0.0.1", settings.MQTT_PORT)
    client.loop_start()
    try:
        if not poll.until(client.is_connected, 10, interval=0.05):
            raise InfraError(f"could not connect as {client_id} to end its MQTT session")
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.contextmanager
def app_paused(settings: Settings) -> Iterator[int]:
    """The monolith stopped (SIGSTOP) for the block, resumed after it even on failure."""
    pid = app_pid(settings)
    assert pid, "the app runs"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def mosquitto_saved(settings: Settings) -> None:
    """Wait until the stack's Mosquitto wrote its state file again. Its one thread sends a
    PUBACK before it starts a save, so a save that ends after this call began holds every
    message acknowledged before it."""
    state = settings.state_dir / "native" / "emqx" / "data" / "mosquitto.db"

    def version() -> tuple[int, int] | None:
        with contextlib.suppress(FileNotFoundError):
            saved = state.stat()
            return saved.st_ino, saved.st_mtime_ns
        return None

    first = version()
    eventually(lambda: version() not in (None, first), 30, f"Mosquitto's next save of {state}")
