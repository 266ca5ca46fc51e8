"""Scenarios 1-4 and 8: telemetry in through the gateway and MQTT, out through the query API."""

from __future__ import annotations

import base64
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer

from tests.support.clients import MqttClient, Platform, device_id, readings
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


def latest(stack: Platform, device: str) -> dict[str, Any] | None:
    response = stack.get(f"/query/v1/devices/{device}/latest")
    return response.json() if response.status_code == 200 else None


def all_readings(stack: Platform, device: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = stack.get(
            f"/query/v1/devices/{device}/readings",
            limit=500,
            **params,
            **({"cursor": cursor} if cursor else {}),
        )
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["readings"]
        cursor = body["next_cursor"]
        if not cursor:
            return items


def test_http_batch_becomes_readable_from_the_query_api(stack: Platform) -> None:
    device = device_id()
    batch = readings(device, 5, temperature=20.0, humidity=40.0)
    response = stack.post("/ingest/v1/telemetry", {"readings": batch})
    assert response.status_code in (200, 202), response.text
    assert response.json() == {"accepted": 5, "duplicates": 0}

    state = eventually(
        lambda: (s := latest(stack, device)) and s["version"] == 5 and s, what="latest"
    )
    assert state["metrics"] == {"temperature": 24.0, "humidity": 44.0}
    assert state["last_ts"].startswith(batch[-1]["ts"][:19])
    items = eventually(
        lambda: (r := all_readings(stack, device, metric="temperature")) and len(r) == 5 and r
    )
    assert [item["value"] for item in items] == [20.0, 21.0, 22.0, 23.0, 24.0]
    assert [item["event_id"] for item in items] == [r["event_id"] for r in batch]


def test_mqtt_telemetry_is_stored_and_a_malformed_message_goes_to_the_dlq(
    stack: Platform, device_mqtt: MqttClient
) -> None:
    device = device_id("mqtt")
    dlq = Consumer(
        {
            "bootstrap.servers": stack.kafka,
            "group.id": f"e2e-{uuid.uuid4()}",
            "auto.offset.reset": "latest",
        }
    )
    dlq.subscribe([stack.settings.value("TOPIC_TELEMETRY_DLQ")])
    try:
        eventually(lambda: dlq.poll(0.5) is None and dlq.assignment(), what="DLQ consumer assigned")
        garbage = f'{{"event_id": "not-a-uuid", "marker": "{uuid.uuid4()}"'.encode()
        device_mqtt.publish(f"devices/{device}/telemetry", garbage)

        def dead_letter() -> dict[str, Any] | None:
            msg = dlq.poll(0.5)
            if msg is None or msg.error():
                return None
            record = json.loads(msg.value())
            return record if base64.b64decode(record["payload_base64"]) == garbage else None

        record = eventually(dead_letter, what="the malformed payload on the DLQ")
        assert record["topic"] == f"devices/{device}/telemetry"
        assert record["reason"]
    finally:
        dlq.close()

    # The subscriber survived the bad message: a good one right after is stored.
    good = readings(device, 1)[0]
    device_mqtt.publish(
        f"devices/{device}/telemetry", {k: good[k] for k in ("event_id", "ts", "metrics")}
    )
    state = eventually(lambda: latest(stack, device), what="MQTT reading visible")
    assert state["version"] == 1


def test_the_same_batch_twice_is_stored_once(stack: Platform) -> None:
    device = device_id("dup")
    batch = {"readings": readings(device, 3)}
    assert stack.post("/ingest/v1/telemetry", batch).json() == {"accepted": 3, "duplicates": 0}
    assert stack.post("/ingest/v1/telemetry", batch).json() == {"accepted": 0, "duplicates": 3}
    eventually(lambda: (s := latest(stack, device)) and s["version"] == 3, what="3 readings")
    assert len(all_readings(stack, device)) == 3
    events = stack.get(f"/query/v1/devices/{device}/events").json()["events"]
    assert len(events) == 3


@pytest.mark.parametrize(
    ("name", "body", "status", "code"),
    [
        ("malformed json", b'{"readings": [', 400, "malformed_json"),
        ("wrong types", "WRONG_TYPES", 400, "invalid_body"),
        ("1001 readings", "TOO_MANY", 413, "too_large"),
        ("empty batch", {"readings": []}, 400, "empty_batch"),
        ("over 1 MiB", "HUGE", 413, "too_large"),
    ],
)
def test_bad_bodies_are_rejected_and_nothing_is_stored(
    stack: Platform, name: str, body: Any, status: int, code: str
) -> None:
    device = device_id("bad")
    if body == "WRONG_TYPES":
        good = readings(device, 2)
        good[1]["metrics"] = {"temperature": "hot"}
        body = {"readings": good}
    elif body == "TOO_MANY":
        body = {"readings": readings(device, 1001)}
    elif body == "HUGE":
        body = {"readings": readings(device, 1), "padding": "x" * (1 << 20)}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = requests.post(
        stack.gateway + "/ingest/v1/telemetry", data=data,
        headers={"Content-Type": "application/json"}, timeout=30,
    )  # fmt: skip
    assert response.status_code == status, f"{name}: {response.status_code} {response.text[:300]}"
    error = response.json()["error"]
    assert error["message"]
    assert error["code"] == code
    if name == "wrong types":
        assert any(d.get("index") == 1 for d in error["details"]), error
    assert stack.get(f"/query/v1/devices/{device}/latest").status_code == 404


def test_concurrent_http_and_mqtt_2000_readings_over_20_devices(stack: Platform) -> None:
    devices = [device_id(f"load{i:02d}") for i in range(20)]
    plan = {device: readings(device, 100) for device in devices}

    def send_http(device: str) -> None:
        for start in range(0, 100, 25):
            response = stack.post(
                "/ingest/v1/telemetry", {"readings": plan[device][start : start + 25]}
            )
            assert response.status_code in (200, 202), response.text

    def send_mqtt(device: str) -> None:
        client = MqttClient("127.0.0.1", stack.settings.MQTT_PORT)
        try:
            for reading in plan[device]:
                client.publish(
                    f"devices/{device}/telemetry",
                    {k: reading[k] for k in ("event_id", "ts", "metrics")},
                )
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(send_http if i % 2 else send_mqtt, d) for i, d in enumerate(devices)]
        for future in futures:
            future.result()

    def stored() -> int:
        return sum((s or {}).get("version", 0) for s in (latest(stack, d) for d in devices))

    eventually(lambda: stored() == 2000, timeout=60, what="2000 readings stored")
    for device in devices:
        events = []
        cursor = None
        while True:
            page = stack.get(
                f"/query/v1/devices/{device}/events",
                limit=500,
                **({"cursor": cursor} if cursor else {}),
            ).json()
            events += page["events"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert [e["version"] for e in events] == list(range(1, 101))
        # Each device had one sender sending in ts order: the stream keeps that order.
        assert [e["event_id"] for e in events] == [r["event_id"] for r in plan[device]]
