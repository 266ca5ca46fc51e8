"""Scenarios 5 and 7: commands to a device and back, and what the gateway exposes."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.clients import MqttClient, Platform, acknowledge, device_id

pytestmark = pytest.mark.e2e


def test_command_reaches_the_device_and_its_ack_is_recorded(
    stack: Platform, device_mqtt: MqttClient
) -> None:
    device = device_id("cmd")
    device_mqtt.subscribe(f"devices/{device}/commands")
    command_id = str(uuid.uuid4())
    response = stack.post(
        f"/actions/v1/devices/{device}/commands",
        {"command_id": command_id, "name": "reboot", "args": {"delay_s": 1}},
    )
    assert response.status_code in (200, 201, 202), response.text
    assert response.json()["status"] in ("issued", "sent")

    message = json.loads(device_mqtt.wait_for(f"devices/{device}/commands")[0])
    assert message["command_id"] == command_id
    assert message["name"] == "reboot" and message["args"] == {"delay_s": 1}

    command = acknowledge(stack, device_mqtt, device, command_id)
    assert command["acknowledged_at"]

    # The same command_id again returns the existing command and publishes nothing new.
    again = stack.post(
        f"/actions/v1/devices/{device}/commands",
        {"command_id": command_id, "name": "reboot", "args": {"delay_s": 1}},
    )
    assert again.json()["command_id"] == command_id
    assert len(device_mqtt.received[f"devices/{device}/commands"]) == 1


@pytest.mark.parametrize(
    "path",
    ["/v1/score", "/v1/model", "/healthz", "/readyz", "/", "/admin", "/ai/v1/score", "/ingestx"],
)
def test_gateway_exposes_only_the_three_prefixes(stack: Platform, path: str) -> None:
    assert stack.get(path).status_code == 404


def test_gateway_routes_each_prefix_to_its_server(stack: Platform) -> None:
    assert stack.get("/query/v1/devices").status_code == 200
    assert stack.get(f"/query/v1/devices/{device_id()}/latest").status_code == 404
    assert stack.get(f"/actions/v1/commands/{uuid.uuid4()}").status_code == 404
    assert stack.post("/ingest/v1/telemetry", {"readings": []}).status_code == 400
