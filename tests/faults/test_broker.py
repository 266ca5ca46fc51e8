"""Restarts of the MQTT broker, clean (`inv down -c mqtt`, `inv up -c mqtt`) and crashed
(kill -9, `inv up`), with the app paused across them: every reading the broker acknowledged
is queryable exactly once. The pause makes the readings published after the restart arrive
before the app can resubscribe, as they would with a lagging app or a slow reconnect: the
broker has only the app's restored session to keep them for."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import delivery, faults
from tests.support.clients import Platform, device_id, readings
from tests.support.delivery import Outcome, Publisher

pytestmark = pytest.mark.faults

# Twice what the app takes in flight (compose.yaml's EMQX_MQTT__MAX_INFLIGHT): when the broker
# is killed, half are handed to the paused app and unacknowledged, half queued.
QUEUED_DEVICES, QUEUED_PER_DEVICE = 100, 20
AFTER_DEVICES, AFTER_PER_DEVICE = 10, 10


def plan_of(prefix: str, devices: int, per_device: int) -> dict[str, list[dict[str, Any]]]:
    return {d: readings(d, per_device) for d in (device_id(prefix) for _ in range(devices))}


def publish(stack: Platform, plan: dict[str, list[dict[str, Any]]]) -> int:
    """Publish from a fresh connection (a device reconnecting after the restart)."""
    publisher = Publisher(stack.settings)
    try:
        return publisher.publish_all(delivery.mqtt_messages(plan))
    finally:
        publisher.close()


def test_clean_broker_restart_keeps_what_it_acknowledged(stack: Platform) -> None:
    before = plan_of("mq-clean-before", AFTER_DEVICES, AFTER_PER_DEVICE)
    after = plan_of("mq-clean-after", AFTER_DEVICES, AFTER_PER_DEVICE)
    with faults.app_paused(stack.settings):
        sent = publish(stack, before)  # queued for the paused app's session
        faults.stop_component(stack.settings, "mqtt")  # inv down -c mqtt
        faults.restart_component(stack.settings, "mqtt", say=lambda _line: None)
        restarted_at = time.monotonic()
        sent += publish(stack, after)  # right away: the app is not back yet
    duplicates = delivery.wait_all_stored(
        stack, {**before, **after}, "after a clean broker restart"
    )
    assert duplicates == 0
    delivery.record(Outcome("broker down + up, app paused across it", sent, sent, duplicates,
                   time.monotonic() - restarted_at))  # fmt: skip


def test_kill9_of_the_broker_keeps_what_it_saved(stack: Platform) -> None:
    """kill -9 once the broker saved what it acknowledged (Mosquitto saves every second: what
    it acknowledged in the second before a crash is the window the README states)."""
    queued = plan_of("mq-kill-queued", QUEUED_DEVICES, QUEUED_PER_DEVICE)
    after = plan_of("mq-kill-after", AFTER_DEVICES, AFTER_PER_DEVICE)
    with faults.app_paused(stack.settings):
        sent = publish(stack, queued)
        faults.mosquitto_saved(stack.settings)
        faults.kill9_component(stack.settings, "mqtt")
        faults.restart_component(stack.settings, "mqtt", say=lambda _line: None)
        restarted_at = time.monotonic()
        sent += publish(stack, after)
    duplicates = delivery.wait_all_stored(stack, {**queued, **after}, "after kill -9 of the broker")
    assert duplicates == 0
    delivery.record(Outcome("kill -9 broker, app paused, inv up", sent, sent, duplicates,
                   time.monotonic() - restarted_at))  # fmt: skip
