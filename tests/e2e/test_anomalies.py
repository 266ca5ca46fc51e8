"""The anomaly -> command loop: telemetry through the gateway, scored by the AI inference
service (reached only by the Go detector), an AnomalyDetected event listed by the query API,
and a `cooldown` command on MQTT that the device acknowledges."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from tests.support.clients import MqttClient, Platform, acknowledge, device_id, readings
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e


def test_spike_yields_an_anomaly_and_a_cooldown_command(
    stack: Platform, device_mqtt: MqttClient
) -> None:
    device = device_id("anom")
    device_mqtt.subscribe(f"devices/{device}/commands")

    # ~40 normal readings (a small jitter around 21 degrees), then a spike one second later.
    batch = readings(device, 41, temperature=0.0)
    for i, reading in enumerate(batch[:40]):
        reading["metrics"] = {"temperature": 21.0 + (0.1 if i % 2 else -0.1)}
    spike = batch[40]
    spike["metrics"] = {"temperature": 95.0}
    normal = stack.post("/ingest/v1/telemetry", {"readings": batch[:40]})
    assert normal.status_code in (200, 202), normal.text
    response = stack.post("/ingest/v1/telemetry", {"readings": [spike]})
    assert response.status_code in (200, 202), response.text

    def listed() -> list[dict[str, Any]]:
        r = stack.get(f"/query/v1/devices/{device}/anomalies")
        return r.json()["anomalies"] if r.status_code == 200 else []

    anomalies = eventually(listed, timeout=30, what=f"an anomaly listed for {device}")
    assert len(anomalies) == 1, anomalies
    anomaly = anomalies[0]
    assert anomaly["metric"] == "temperature"
    assert anomaly["value"] == 95.0
    assert anomaly["reading_event_id"] == spike["event_id"]
    assert anomaly["score"] >= 5
    assert datetime.fromisoformat(anomaly["ts"]) == datetime.fromisoformat(spike["ts"])

    message = json.loads(device_mqtt.wait_for(f"devices/{device}/commands", timeout=30)[0])
    assert message["name"] == "cooldown"
    assert message["device_id"] == device
    assert message["args"]["anomaly_event_id"] == anomaly["event_id"]
    command_id = message["command_id"]

    command = acknowledge(stack, device_mqtt, device, command_id)
    assert command["name"] == "cooldown" and command["acknowledged_at"]

    # Only one anomaly and one command for the one spike.
    assert len(listed()) == 1
    assert len(device_mqtt.received[f"devices/{device}/commands"]) == 1


def test_anomalies_of_an_unknown_device_is_404(stack: Platform) -> None:
    assert stack.get(f"/query/v1/devices/{device_id()}/anomalies").status_code == 404
