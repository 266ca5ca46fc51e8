"""Faults of the monolith itself: paused under MQTT load, killed between a broker ack and
the relay moving on (failpoints), and two instances on one stack."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from devenv import stack as stacks
from tests.support import delivery, faults
from tests.support.clients import MqttClient, Platform, device_id, readings
from tests.support.delivery import Outcome, Publisher
from tests.support.wait import eventually

pytestmark = pytest.mark.faults

# Mosquitto's and EMQX's defaults queue 1,000 messages per session (+ 20 in flight): a paused
# app lost everything beyond. The fleet below sends five times that while the app is paused.
PAUSED_DEVICES, PAUSED_PER_DEVICE = 200, 25


def test_app_paused_under_mqtt_load_loses_nothing(stack: Platform, publisher: Publisher) -> None:
    plan = {
        d: readings(d, PAUSED_PER_DEVICE)
        for d in (device_id("pause") for _ in range(PAUSED_DEVICES))
    }
    with faults.app_paused(stack.settings) as pid:
        paused_at = time.monotonic()
        sent = publisher.publish_all(delivery.mqtt_messages(plan))  # every one acked by the broker
        assert sent > 1020, "more than a default broker session queue holds"
        # The fault is a pause of a given length, not a wait for the machine.
        time.sleep(max(0.0, faults.PAUSE_SECONDS - (time.monotonic() - paused_at)))
    resumed_at = time.monotonic()
    duplicates = delivery.wait_all_stored(stack, plan, f"after a {faults.PAUSE_SECONDS:.0f}s pause")
    assert duplicates == 0
    assert faults.app_pid(stack.settings) == pid
    fault = f"app SIGSTOP {faults.PAUSE_SECONDS:.0f}s under MQTT load"
    delivery.record(Outcome(fault, sent, sent, duplicates, time.monotonic() - resumed_at))


def test_kill9_between_broker_ack_and_relay_progress(stack: Platform) -> None:
    """Failpoints kill the monolith right after a broker acked a batch: before the event
    relay moves its cursor (Kafka) and before the command relay deletes its rows (MQTT);
    restarted without them, the relays publish those batches again. Duplicates on the wire
    are allowed; every reading is stored once and the spike yields exactly one command."""
    device = device_id("failpoint")
    rows = readings(device, 41, temperature=0.0)
    for i, row in enumerate(rows[:40]):
        row["metrics"] = {"temperature": 21.0 + (0.1 if i % 2 else -0.1)}
    rows[40]["metrics"] = {"temperature": 95.0}
    device_mqtt = MqttClient("127.0.0.1", stack.settings.MQTT_PORT)
    device_mqtt.subscribe(f"devices/{device}/commands")
    try:
        points = ("event-relay-after-publish", "command-relay-after-publish")
        with faults.apps_with_failpoints(stack.settings, *points) as spec:
            offset = spec.log_file.stat().st_size
            delivery.post_until_accepted(stack, rows[:40])
            delivery.post_until_accepted(stack, rows[40:])
            hit = f"failpoint {points[0]} hit"
            eventually(lambda: hit in spec.log_file.read_text()[offset:], 60,
                       "the failpoint's kill")  # fmt: skip
            killed_at = time.monotonic()
        shown = spec.log_file.read_text()[offset:]
        kills = sum(shown.count(f"failpoint {p} hit") for p in points)  # each: a batch again
        duplicates = delivery.wait_all_stored(stack, {device: rows}, "after the restart")
        commands = eventually(lambda: device_mqtt.received.get(f"devices/{device}/commands"),
                              60, "the cooldown command on MQTT")  # fmt: skip
        recovered = time.monotonic() - killed_at
    finally:
        device_mqtt.close()
    assert duplicates == 0
    anomalies = stack.get(f"/query/v1/devices/{device}/anomalies").json()["anomalies"]
    assert [a["reading_event_id"] for a in anomalies] == [rows[40]["event_id"]]
    command_ids = {json.loads(c)["command_id"] for c in commands}
    assert len(command_ids) == 1, f"one command for one anomaly, got {command_ids}"
    listed = stack.get(f"/actions/v1/commands/{command_ids.pop()}")
    assert listed.status_code == 200 and listed.json()["name"] == "cooldown"
    fault = f"kill -9 app after broker ack, before relay moves on (x{kills})"
    delivery.record(Outcome(fault, len(rows), len(rows), duplicates, recovered))


def test_two_instances_split_mqtt_without_loss_or_reconnect_loop(
    stack: Platform, publisher: Publisher
) -> None:
    ports = stacks.free_ports(3)
    with faults.second_instance(stack.settings, ports) as spec:
        first_log = stack.settings.state_dir / "apps" / "app.log"
        first_offset = first_log.stat().st_size
        plan = {d: readings(d, 20) for d in (device_id("two") for _ in range(50))}
        http_plan = {d: readings(d, 20) for d in (device_id("two-http") for _ in range(10))}
        started = time.monotonic()
        sent = publisher.publish_all(delivery.mqtt_messages(plan))
        for n, rows in enumerate(http_plan.values()):
            # Half straight to the second instance's ingestion port, half through the gateway.
            if n % 2:
                post_direct(ports[0], rows)
            else:
                delivery.post_until_accepted(stack, rows)
        duplicates = delivery.wait_all_stored(stack, {**plan, **http_plan}, "two instances")
        elapsed = time.monotonic() - started
        logs = [first_log.read_text()[first_offset:], spec.log_file.read_text()]
    assert duplicates == 0
    for text in logs:
        assert "mqtt connection lost" not in text, "an instance was kicked off the broker"
    total = sent + sum(len(r) for r in http_plan.values())
    delivery.record(Outcome("two app instances on one stack", total, total, duplicates, elapsed))


def post_direct(port: int, rows: list[dict[str, Any]]) -> None:
    url = f"http://127.0.0.1:{port}/ingest/v1/telemetry"
    response = requests.post(url, json={"readings": rows}, timeout=30)
    assert response.status_code in (200, 202), response.text
