"""kill -9 of the bus and of the database during HTTP and MQTT ingest (`docker kill` of their
containers on the docker backend), then `inv up`: every acknowledged reading is queryable
exactly once, and the apps recover without a restart."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support import delivery, faults
from tests.support.clients import Platform, device_id, readings
from tests.support.delivery import Outcome, Publisher
from tests.support.wait import eventually

pytestmark = pytest.mark.faults

DEVICES, PER_DEVICE, BATCH = 10, 100, 20


def ingest_under_fault(stack: Platform, publisher: Publisher, role: str) -> None:
    """Half the devices over HTTP (retrying as a client would), half over MQTT; the role's
    process group is killed once a third of the HTTP batches went through, then brought back
    with `inv up`. The monolith must be the same process afterwards."""
    http = {
        d: readings(d, PER_DEVICE) for d in (device_id(f"h{role}") for _ in range(DEVICES // 2))
    }
    over_mqtt = {
        d: readings(d, PER_DEVICE) for d in (device_id(f"m{role}") for _ in range(DEVICES // 2))
    }
    app_before = faults.app_pid(stack.settings)
    batches = [rows[i : i + BATCH] for rows in http.values() for i in range(0, PER_DEVICE, BATCH)]
    sent_enough = threading.Event()

    def send_http() -> None:
        for n, batch in enumerate(batches):
            delivery.post_until_accepted(stack, batch)
            if n == len(batches) // 3:
                sent_enough.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        http_done = pool.submit(send_http)
        mqtt_done = pool.submit(publisher.publish_all, delivery.mqtt_messages(over_mqtt))
        eventually(sent_enough.is_set, 60, "a third of the HTTP batches accepted")
        faults.kill9_component(stack.settings, role)
        killed_at = time.monotonic()
        faults.restart_component(stack.settings, role, say=lambda _line: None)
        http_done.result()
        mqtt_done.result()
    plan: dict[str, list[dict[str, Any]]] = {**http, **over_mqtt}
    duplicates = delivery.wait_all_stored(stack, plan, f"after kill -9 of the {role}")
    recovered = time.monotonic() - killed_at
    assert duplicates == 0, f"{duplicates} readings stored twice"
    assert faults.app_pid(stack.settings) == app_before, "the app recovered without a restart"
    sent = DEVICES * PER_DEVICE
    kill = "docker kill" if faults.BACKEND == "docker" else "kill -9"
    delivery.record(
        Outcome(f"{kill} {role} during HTTP+MQTT ingest, inv up", sent, sent, duplicates, recovered)
    )


def test_kill9_of_the_bus_during_ingest(stack: Platform, publisher: Publisher) -> None:
    ingest_under_fault(stack, publisher, "bus")


def test_kill9_of_the_database_during_ingest(stack: Platform, publisher: Publisher) -> None:
    ingest_under_fault(stack, publisher, "db")
