"""The native backend on real processes: `inv up`, real clients, `inv down`, and the failure
paths a user meets. Each test module runs its own private stack (own ports, own state)."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from confluent_kafka import Consumer, Producer
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.running import gone
from tests.support.stack import Stack, cleaned
from tests.support.wait import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with cleaned(tmp_path_factory.mktemp("stack") / "state") as s:
        yield s


@pytest.fixture(scope="module")
def running(stack: Stack) -> Stack:
    result = stack.inv("up")
    for role in ("db", "bus", "mqtt", "gateway"):
        assert f"✓ {role}" in result.stdout
    return stack


def test_up_reports_each_component_healthy(running: Stack) -> None:
    status = running.inv("status").stdout
    rows = [line.split() for line in status.splitlines()[1:]]
    assert {r[0] for r in rows} == {"db", "bus", "mqtt", "gateway"}
    assert all(r[2:5] == ["native", "running", "healthy"] for r in rows), status


def test_up_again_is_a_no_op(running: Stack) -> None:
    before = sorted(p.pid for p in running.our_processes())
    result = running.inv("up")
    assert "already up" in result.stdout
    assert sorted(p.pid for p in running.our_processes()) == before  # nothing restarted


def test_doctor_counts_the_running_stack_as_ours(running: Stack) -> None:
    report = running.inv("doctor", check=False).stdout
    busy = [line for line in report.splitlines() if "✗" in line and "in use" in line]
    assert busy == [], report
    for key in ("GATEWAY_DASHBOARD_PORT", "KAFKA_CONTROLLER_PORT", "POSTGRES_PORT"):
        assert f"✓ {running.port(key)} in use by this project's running stack ({key})" in report


def test_postgres_accepts_writes(running: Stack) -> None:
    with running.pg() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS survives (id text PRIMARY KEY)")
        conn.execute("INSERT INTO survives VALUES ('before-restart') ON CONFLICT DO NOTHING")
        assert conn.execute("SELECT count(*) FROM survives").fetchone() == (1,)


def test_kafka_produces_and_consumes(running: Stack) -> None:
    bootstrap = f"127.0.0.1:{running.port('KAFKA_PORT')}"
    topic = f"it-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, key=b"dev-1", value=b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is not None and msg.error() is None:
                assert (msg.key(), msg.value()) == (b"dev-1", b"hello")
                return
        pytest.fail("no message consumed within 30 s")
    finally:
        consumer.close()


def test_mqtt_publish_subscribe(running: Stack) -> None:
    got = threading.Event()
    received: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(msg.payload)
        got.set()

    client.on_message = on_message
    client.connect("127.0.0.1", running.port("MQTT_PORT"))
    client.loop_start()
    try:
        client.subscribe("devices/it/telemetry", qos=1)
        deadline = time.monotonic() + 10
        while not got.is_set() and time.monotonic() < deadline:
            client.publish("devices/it/telemetry", b"42", qos=1).wait_for_publish(2)
            got.wait(0.5)
        assert received and received[0] == b"42"
    finally:
        client.disconnect()
        client.loop_stop()


def test_gateway_routes_the_three_prefixes_and_nothing_else(running: Stack) -> None:
    gateway = f"http://127.0.0.1:{running.port('GATEWAY_PORT')}"
    for prefix in ("/ingest/v1/telemetry", "/query/v1/devices", "/actions/v1/commands/x"):
        # No app listens on the (isolated) app ports: routed, but the upstream is down.
        assert requests.get(gateway + prefix, timeout=5).status_code == 502, prefix
    assert requests.get(gateway + "/v1/score", timeout=5).status_code == 404
    assert requests.get(gateway + "/", timeout=5).status_code == 404
    dashboard = f"http://127.0.0.1:{running.port('GATEWAY_DASHBOARD_PORT')}"
    assert requests.get(dashboard + "/ping", timeout=5).text == "OK"


def test_logs_of_one_component(running: Stack) -> None:
    out = running.inv("logs", "-c", "bus", "--lines", "5").stdout.splitlines()
    assert out and all(line.startswith("kafka |") for line in out)


def test_down_stops_everything_and_up_reuses_the_data(running: Stack) -> None:
    running.inv("down")
    assert running.our_processes() == []
    for key in ("POSTGRES_PORT", "KAFKA_PORT", "MQTT_PORT", "GATEWAY_PORT"):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", running.port(key)))  # raises if anything still holds it
    status = running.inv("status").stdout
    assert status.count("stopped") == 4

    running.inv("up")
    with running.pg() as conn:
        assert conn.execute("SELECT id FROM survives").fetchall() == [("before-restart",)]


def test_stale_record_is_reported_and_never_trusted(running: Stack) -> None:
    """The broker and its supervisor both killed with -9 (the OOM killer, say): the record
    names processes that are gone; `status` says so once and forgets it, `up` starts afresh."""
    record = running.state_dir / "native" / "emqx" / "status.json"
    recorded = json.loads(record.read_text())
    supervisor = recorded["supervisor"]["pid"]
    broker = recorded["apps"]["mosquitto"]["identity"]["pid"]
    os.kill(supervisor, signal.SIGKILL)  # first: it would restart the broker
    eventually(lambda: gone(supervisor), 10, "the supervisor killed")
    os.kill(broker, signal.SIGKILL)
    eventually(lambda: gone(broker), 10, "the broker killed")
    rows = [line for line in running.inv("status").stdout.splitlines() if line.startswith("mqtt")]
    assert rows[0].split()[3] == "stale"
    # Reported once, then cleaned; `up` starts the broker again.
    assert not record.exists()
    result = running.inv("up")
    assert "✓ mqtt" in result.stdout
