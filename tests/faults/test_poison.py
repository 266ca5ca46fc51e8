"""Poison records on every consumer: the consumer moves on, the record is on its DLQ, a
counter on /readyz and a WARN line say so, and nothing behind it is held up."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer

from tests.support import delivery
from tests.support.clients import MqttClient, Platform, device_id, readings
from tests.support.delivery import Outcome, Publisher
from tests.support.wait import eventually

pytestmark = pytest.mark.faults


def dead_letters(stack: Platform) -> dict[str, int]:
    body = requests.get(
        f"http://127.0.0.1:{stack.settings.INGESTION_PORT}/readyz", timeout=5
    ).json()
    counts: dict[str, int] = body.get("dead_letters", {})
    return counts


def dlq_records(
    stack: Platform, topic: str, marker: str, consumers: set[str]
) -> dict[str, dict[str, Any]]:
    """The dead letters on `topic` whose original payload carries `marker`, by consumer,
    once every one of `consumers` wrote its own."""
    reader = Consumer({"bootstrap.servers": stack.kafka, "group.id": f"faults-{uuid.uuid4()}",
                       "auto.offset.reset": "earliest"})  # fmt: skip
    reader.subscribe([topic])
    found: dict[str, dict[str, Any]] = {}

    def all_found() -> bool:
        msg = reader.poll(0.5)
        if msg is not None and not msg.error():
            letter = json.loads(msg.value())
            if marker in base64.b64decode(letter["payload_base64"]).decode(errors="replace"):
                found[letter["consumer"]] = letter
        return consumers <= found.keys()

    try:
        eventually(all_found, 60, f"dead letters of {sorted(consumers)} on {topic}", interval=0)
    finally:
        reader.close()
    return found


def produce(stack: Platform, topic: str, key: str, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": stack.kafka})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0, f"the poison record was not acked on {topic}"


def test_value_outside_the_scorers_domain_does_not_stop_detection(
    stack: Platform, publisher: Publisher
) -> None:
    """Issue 11's first reproduction: 1e16 for one device, then another device's spike over
    MQTT must still become a cooldown command within seconds."""
    poisoned, device = device_id("1e16"), device_id("spike")
    huge = readings(poisoned, 1)
    huge[0]["metrics"] = {"temperature": 1e16}
    delivery.post_until_accepted(stack, huge)
    series = readings(device, 60, temperature=0.0)
    for i, row in enumerate(series):
        row["metrics"] = {"temperature": 95.0 if i == 59 else 21.0 + (0.1 if i % 2 else -0.1)}
    commands = MqttClient("127.0.0.1", stack.settings.MQTT_PORT)
    commands.subscribe(f"devices/{device}/commands")
    try:
        started = time.monotonic()
        publisher.publish_all(delivery.mqtt_messages({device: series}))
        got = eventually(lambda: commands.received.get(f"devices/{device}/commands"), 60,
                         "the spike's cooldown command")  # fmt: skip
        took = time.monotonic() - started
    finally:
        commands.close()
    assert json.loads(got[0])["name"] == "cooldown"
    # Devices are partitions of their own: the spike's partition may be scored first.
    skipped = eventually(
        lambda: stack.get(f"/query/v1/devices/{poisoned}/anomalies").json()["skipped"],
        30,
        "the 1e16 reading recorded as not scored",
    )
    assert [s["reading_event_id"] for s in skipped] == [huge[0]["event_id"]]
    assert "outside what the scorer accepts" in skipped[0]["reason"]
    duplicates = delivery.wait_all_stored(stack, {device: series, poisoned: huge}, "poison 1e16")
    delivery.record(
        Outcome("poison: 1e16 reading, then another device's spike", 61, 61, duplicates, took)
    )


def test_records_failing_their_schema_go_to_the_dlq(stack: Platform, publisher: Publisher) -> None:
    topics = stack.settings.value("TOPIC_TELEMETRY"), stack.settings.value("TOPIC_ANOMALIES")
    marker = uuid.uuid4().hex
    before = dead_letters(stack)
    started = time.monotonic()
    produce(stack, topics[0], "poison", json.dumps({"event_id": marker}).encode())
    produce(stack, topics[1], "poison", json.dumps({"type": marker}).encode())
    # Readings behind the poison are applied.
    plan = {d: readings(d, 10) for d in (device_id("behind") for _ in range(3))}
    publisher.publish_all(delivery.mqtt_messages(plan))
    duplicates = delivery.wait_all_stored(stack, plan, "readings behind the poison records")
    telemetry = dlq_records(stack, topics[0] + ".dlq", marker,
                            {"query-projector", "anomaly-detector"})  # fmt: skip
    anomalies = dlq_records(stack, topics[1] + ".dlq", marker, {"actions-anomalies"})
    took = time.monotonic() - started
    for letter in [*telemetry.values(), *anomalies.values()]:
        assert letter["source"] == "kafka" and letter["attempts"] >= 1 and letter["error"]
    after = dead_letters(stack)
    for consumer in ("query-projector", "anomaly-detector", "actions-anomalies"):
        assert after.get(consumer, 0) > before.get(consumer, 0), f"/readyz counts {consumer}'s"
    log = (stack.settings.state_dir / "apps" / "app.log").read_text()
    assert "record dead-lettered" in log
    delivery.record(
        Outcome("poison: 2 schema-invalid records, 30 readings after", 32, 30, duplicates, took)
    )
