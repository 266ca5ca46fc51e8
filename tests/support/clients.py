"""The running platform as its clients see it: HTTP through the gateway (`Platform`), a
device on MQTT (`MqttClient`), the readings they send. The e2e, fault and aws-local tests
drive the stack through these, from outside only."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv.settings import Settings
from tests.support import traced
from tests.support.wait import eventually


@dataclass(frozen=True)
class Platform:
    """The running platform as a client sees it: HTTP through its gateway; its settings
    name the other ports (MQTT, Kafka)."""

    settings: Settings

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.settings.GATEWAY_PORT}"

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.settings.KAFKA_PORT}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.gateway + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        if isinstance(body, dict):
            traced.sent(self.settings, [body])
        return requests.post(self.gateway + path, json=body, timeout=30)


def device_id(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def readings(
    device: str, count: int, start: datetime | None = None, **metrics: float
) -> list[dict[str, Any]]:
    """`count` readings one second apart, each metric's value rising by one per reading."""
    start = start or datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "device_id": device,
            "ts": (start + timedelta(seconds=i)).isoformat().replace("+00:00", "Z"),
            "metrics": {k: v + i for k, v in (metrics or {"temperature": 20.0}).items()},
        }
        for i in range(count)
    ]


@dataclass
class MqttClient:
    """A paho client that records what arrives on the topics it subscribed to."""

    host: str
    port: int
    # A broker that refuses anonymous clients (the ECS task's) is given the device's login.
    login: tuple[str, str] | None = None
    received: dict[str, list[bytes]] = field(default_factory=dict)
    arrived: threading.Condition = field(default_factory=threading.Condition)
    subscribed: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"e2e-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if self.login:
            self.client.username_pw_set(*self.login)
        self.client.connect(self.host, self.port)
        self.client.loop_start()

    def _on_subscribe(self, _c: object, _u: object, mid: int, *_rest: object) -> None:
        with self.arrived:
            self.subscribed.add(mid)
            self.arrived.notify_all()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.received.setdefault(msg.topic, []).append(bytes(msg.payload))
            self.arrived.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe and wait for the broker's SUBACK, so nothing published after is missed."""
        result, mid = self.client.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS
        with self.arrived:
            assert self.arrived.wait_for(lambda: mid in self.subscribed, 10), (
                f"no SUBACK for {topic}"
            )

    def publish(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.client.publish(topic, data, qos=1).wait_for_publish(10)

    def wait_for(self, topic: str, timeout: float = 20) -> list[bytes]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: self.received.get(topic), timeout):
                pytest.fail(f"nothing arrived on MQTT {topic} within {timeout}s")
            return self.received[topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def acknowledge(
    stack: Platform, device: MqttClient, device_id: str, command_id: str
) -> dict[str, Any]:
    """Ack a command as the device would, and wait until the actions API says acknowledged."""
    device.publish(f"devices/{device_id}/commands/ack", {"command_id": command_id, "status": "ok"})

    def acknowledged() -> dict[str, Any] | None:
        command: dict[str, Any] = stack.get(f"/actions/v1/commands/{command_id}").json()
        return command if command["status"] == "acknowledged" else None

    return eventually(acknowledged, what=f"command {command_id} acknowledged")
