"""Faults: the running private stack (`nox -s faults` starts one), driven from outside while
real faults hit the real processes. Each test asserts zero lost and zero duplicated effects
and records one summary line (sent, stored, duplicates, time to recover), printed at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import faults
from devenv.settings import Settings, load
from devenv.stack import isolated_env, platform_running
from tests.e2e.conftest import Stack, eventually

# How long the monolith stays paused (SIGSTOP) under MQTT load; CI may shorten it.
PAUSE_SECONDS = float(os.environ.get("FAULTS_PAUSE_SECONDS", "30"))
RECOVERY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Outcome:
    fault: str
    sent: int
    stored: int
    duplicates: int
    recovered_s: float

    def line(self) -> str:
        return (
            f"{self.fault:<48} sent {self.sent:>5}  stored {self.stored:>5}  "
            f"duplicates {self.duplicates:>2}  recovered in {self.recovered_s:6.1f}s"
        )


OUTCOMES: list[Outcome] = []


BACKEND = os.environ.get("FAULTS_BACKEND", "native")  # `nox -s "faults(docker)"`: docker
STATE = Path(f".state/faults-{BACKEND}").resolve()  # every component's log after a run


@pytest.fixture(scope="session", name="stack")
def private_stack() -> Iterator[Stack]:
    """A fresh private stack on free ports, started by this process (so it can reap what a
    fault kills), stopped at the end even on failure (a docker one in its Compose project,
    COMPOSE_PROJECT_NAME)."""
    shutil.rmtree(STATE, ignore_errors=True)
    env = {**isolated_env(STATE), "INFRA_BACKEND": BACKEND}
    settings = load(environ={**os.environ, **env})
    with platform_running(settings, say=lambda line: print(line, flush=True)):
        yield Stack(settings)


def record(outcome: Outcome) -> None:
    OUTCOMES.append(outcome)
    print(outcome.line())


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if OUTCOMES:
        terminalreporter.section("faults: one line per fault")
        for outcome in OUTCOMES:
            terminalreporter.write_line(outcome.line())


def event_ids(stack: Stack, device: str) -> Counter[str]:
    """Every reading of `device` the query API lists, counted by event id (a count of 2
    is a duplicated effect)."""
    ids: Counter[str] = Counter()
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        response = stack.get(f"/query/v1/devices/{device}/readings", **params)
        if response.status_code == 404:
            return ids
        response.raise_for_status()
        page = response.json()
        ids.update(r["event_id"] for r in page["readings"])
        cursor = page["next_cursor"]
        if not cursor:
            return ids


def tally(stack: Stack, plan: dict[str, list[dict[str, Any]]]) -> tuple[int, int, int]:
    """(stored, duplicates, missing) over the planned readings of every device."""
    stored = duplicates = missing = 0
    for device, rows in plan.items():
        got = event_ids(stack, device)
        stored += sum(1 for r in rows if got[r["event_id"]] >= 1)
        duplicates += sum(n - 1 for n in got.values() if n > 1)
        missing += sum(1 for r in rows if got[r["event_id"]] == 0)
    return stored, duplicates, missing


def wait_all_stored(stack: Stack, plan: dict[str, list[dict[str, Any]]], what: str) -> int:
    """Wait until every planned reading is queryable; return the duplicates seen."""
    sent = sum(len(rows) for rows in plan.values())
    deadline = time.monotonic() + RECOVERY_TIMEOUT
    while True:
        stored, duplicates, missing = tally(stack, plan)
        if stored == sent:
            return duplicates
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {missing} of {sent} readings not queryable after "
                        f"{RECOVERY_TIMEOUT:.0f}s ({duplicates} duplicates)")  # fmt: skip
        time.sleep(0.5)


def post_until_accepted(stack: Stack, batch: list[dict[str, Any]], timeout: float = 120) -> None:
    """POST a batch as a client that retries with the same event ids until it gets 2xx (a
    database or bus outage answers 5xx or drops the connection)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = stack.post("/ingest/v1/telemetry", {"readings": batch})
            if response.status_code in (200, 202):
                return
            if response.status_code < 500:
                pytest.fail(f"ingest refused a valid batch: {response.status_code} {response.text}")
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"ingest did not accept a batch within {timeout:.0f}s")
        time.sleep(0.2)


class Publisher:
    """A device fleet's MQTT connection: QoS 1 publishes, each waited for until the broker
    acknowledged it (PUBACK) — "acknowledged" is what the platform must not lose."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"faults-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.connected = threading.Event()
        self.client.on_connect = lambda *_args: self.connected.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.connected.wait(10):
            pytest.fail("the fault test's MQTT client could not connect")

    def publish_all(self, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        infos = [self.client.publish(t, json.dumps(p), qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(RECOVERY_TIMEOUT)
            assert info.is_published(), "a publish was not acknowledged by the broker"
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(stack: Stack) -> Iterator[Publisher]:
    pub = Publisher(stack.settings.MQTT_PORT)
    yield pub
    pub.close()


def mqtt_messages(plan: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The plan as device publishes, interleaved across devices, in ts order per device."""
    rows = max((len(r) for r in plan.values()), default=0)
    return [
        (f"devices/{device}/telemetry", {k: readings[i][k] for k in ("event_id", "ts", "metrics")})
        for i in range(rows)
        for device, readings in plan.items()
        if i < len(readings)
    ]


@contextlib.contextmanager
def app_paused(settings: Settings) -> Iterator[int]:
    """The monolith stopped (SIGSTOP) for the block, resumed after it even on failure."""
    pid = faults.app_pid(settings)
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
