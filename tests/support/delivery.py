"""Readings sent as clients and devices send them, and counted where users read them: what
the fault tests hold to zero lost and zero duplicated effects, one summary line per fault."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import poll
from devenv.settings import Settings
from tests.support import traced
from tests.support.clients import Platform

RECOVERY_TIMEOUT = 120.0
Plan = dict[str, list[dict[str, Any]]]  # device -> the readings it sends


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


OUTCOMES: list[Outcome] = []  # printed at the end of the session (tests/faults/conftest.py)


def record(outcome: Outcome) -> None:
    OUTCOMES.append(outcome)
    print(outcome.line())


def event_ids(stack: Platform, device: str) -> Counter[str]:
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


def tally(stack: Platform, plan: Plan) -> tuple[int, int, int]:
    """(stored, duplicates, missing) over the planned readings of every device."""
    stored = duplicates = missing = 0
    for device, rows in plan.items():
        got = event_ids(stack, device)
        stored += sum(1 for r in rows if got[r["event_id"]] >= 1)
        duplicates += sum(n - 1 for n in got.values() if n > 1)
        missing += sum(1 for r in rows if got[r["event_id"]] == 0)
    return stored, duplicates, missing


def wait_all_stored(stack: Platform, plan: Plan, what: str) -> int:
    """Wait until every planned reading is queryable; return the duplicates seen."""
    sent = sum(len(rows) for rows in plan.values())
    counted = (0, 0, sent)

    def all_stored() -> bool:
        nonlocal counted
        counted = tally(stack, plan)
        return counted[0] == sent

    if not poll.until(all_stored, RECOVERY_TIMEOUT, interval=0.5):
        _, duplicates, missing = counted
        pytest.fail(f"{what}: {missing} of {sent} readings not queryable after "
                    f"{RECOVERY_TIMEOUT:.0f}s ({duplicates} duplicates)")  # fmt: skip
    return counted[1]


def post_until_accepted(stack: Platform, batch: list[dict[str, Any]], timeout: float = 120) -> None:
    """POST a batch as a client that retries with the same event ids until it gets 2xx (a
    database or bus outage answers 5xx or drops the connection)."""

    def accepted() -> bool:
        try:
            response = stack.post("/ingest/v1/telemetry", {"readings": batch})
        except requests.RequestException:
            return False
        if response.status_code not in (200, 202) and response.status_code < 500:
            pytest.fail(f"ingest refused a valid batch: {response.status_code} {response.text}")
        return response.status_code in (200, 202)

    if not poll.until(accepted, timeout, interval=0.2):
        pytest.fail(f"ingest did not accept a batch within {timeout:.0f}s")


class Publisher:
    """A device fleet's MQTT connection: QoS 1 publishes, each waited for until the broker
    acknowledged it (PUBACK) — "acknowledged" is what the platform must not lose."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"faults-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self.connected = threading.Event()
        self.client.on_connect = lambda *_args: self.connected.set()
        self.client.connect("127.0.0.1", settings.MQTT_PORT)
        self.client.loop_start()
        if not self.connected.wait(10):
            pytest.fail("the fault test's MQTT client could not connect")

    def publish_all(self, messages: Iterable[tuple[str, dict[str, Any]]]) -> int:
        messages = list(messages)
        traced.sent(self.settings, [payload for _, payload in messages])
        infos = [self.client.publish(t, json.dumps(p), qos=1) for t, p in messages]
        for info in infos:
            info.wait_for_publish(RECOVERY_TIMEOUT)
            assert info.is_published(), "a publish was not acknowledged by the broker"
        return len(infos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mqtt_messages(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    """The plan as device publishes, interleaved across devices, in ts order per device."""
    rows = max((len(r) for r in plan.values()), default=0)
    return [
        (f"devices/{device}/telemetry", {k: readings[i][k] for k in ("event_id", "ts", "metrics")})
        for i in range(rows)
        for device, readings in plan.items()
        if i < len(readings)
    ]
