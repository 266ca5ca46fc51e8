"""E2E: the running stack, driven from outside only — HTTP through the gateway, MQTT through
the broker, Kafka only to observe. `nox -s e2e` starts a private stack and points these tests
at it through the environment; `nox -s e2e -- --reuse` runs them against `inv run`'s stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from devenv.settings import load
from tests.support.clients import MqttClient, Platform
from tests.support.traced import pytest_runtest_makereport  # noqa: F401 (the hook)


@pytest.fixture(scope="session")
def stack() -> Platform:
    s = Platform(load())
    try:
        requests.get(s.gateway + "/query/v1/devices", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        pytest.fail(
            f"the stack does not answer through the gateway at {s.gateway} ({exc}): "
            "run `nox -s e2e` (it starts one), or `inv run --detach` then `nox -s e2e -- --reuse`",
            pytrace=False,
        )
    return s


@pytest.fixture
def device_mqtt(stack: Platform) -> Iterator[MqttClient]:
    client = MqttClient("127.0.0.1", stack.settings.MQTT_PORT)
    yield client
    client.close()
