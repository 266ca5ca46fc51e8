"""The developer's toolbox on the running stack, run as a user runs it: `inv devices.simulate`,
`inv bus.tail` and `inv mqtt.watch` in processes of their own, pointed at the stack by the
environment. They reach it by its ports only, so they run on either backend; what they claim
is checked through the query and actions APIs, a Kafka client and an MQTT client of the test's
own."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from typing import Any

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.clients import MqttClient, Platform, device_id, readings
from tests.support.commands import command
from tests.support.stack import INV
from tests.support.wait import eventually

pytestmark = pytest.mark.e2e

# These tests interrupt commands with SIGINT as a terminal would; a suite started in the
# background by a non-interactive shell inherits SIGINT as ignored, and so would every child
# (tests/integration/conftest.py does the same).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def inv(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*INV, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def counts(pattern: str, text: str) -> tuple[int, ...]:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in:\n{text}"
    return tuple(int(n) for n in match.groups())


def simulated_devices(text: str) -> list[str]:
    """The device ids from the simulator's first line, `simulating N devices (A … B)`."""
    count, first, tag = counts_and_tag(text)
    width = len(first.rsplit("-", 1)[1])
    return [f"{tag}-{n:0{width}d}" for n in range(1, count + 1)]


def counts_and_tag(text: str) -> tuple[int, str, str]:
    match = re.search(r"simulating (\d+) devices \(((sim-\w+)-\d+) … ", text)
    assert match, text
    return int(match.group(1)), match.group(2), match.group(3)


def listed_by_query(
    stack: Platform, device: str, what: str, metric: str = ""
) -> list[dict[str, Any]]:
    """Every item of the device's `what` (readings, anomalies) the query API lists."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000, **({"metric": metric} if metric else {})}
    while True:
        page = stack.get(f"/query/v1/devices/{device}/{what}", **params)
        assert page.status_code == 200, page.text
        items += page.json()[what]
        params["cursor"] = page.json()["next_cursor"]
        if not params["cursor"]:
            return items


def test_simulated_devices_close_the_loop(stack: Platform, device_mqtt: MqttClient) -> None:
    device_mqtt.subscribe("devices/+/commands")  # the commands, as the platform sent them

    result = inv("devices.simulate", "--devices", "3", "--rate", "4", "--seconds", "12",
                 "--anomalies", "0.1")  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    sent, pubacked, stored = counts(
        r"readings +(\d+) sent, (\d+) acknowledged by the broker, (\d+) stored", out
    )
    spikes, anomalies_listed = counts(r"spikes +(\d+) injected, (\d+) listed as anomalies", out)
    received, acks, acknowledged = counts(
        r"commands +(\d+) received, (\d+) acks acknowledged by the broker, (\d+) acknowledged",
        out,
    )
    assert sent == pubacked == stored > 0, out
    assert spikes == anomalies_listed == received == acks == acknowledged > 0, out
    assert re.search(r"first command acknowledged [\d.]+ s after the first reading", out), out

    # What a user sees through the APIs: every reading stored once, an anomaly for each spike
    # and none for the normal readings, each anomaly's command acknowledged by its device.
    devices = simulated_devices(out)
    stored_readings = [
        r for d in devices for r in listed_by_query(stack, d, "readings", "temperature")
    ]
    assert len(stored_readings) == len({r["event_id"] for r in stored_readings}) == sent
    anomalies = [a for d in devices for a in listed_by_query(stack, d, "anomalies")]
    assert len(anomalies) == spikes
    assert all(a["metric"] == "temperature" and a["value"] > 50 for a in anomalies), anomalies
    sent_commands = [
        json.loads(payload)
        for d in devices
        for payload in device_mqtt.received.get(f"devices/{d}/commands", [])
    ]
    assert {c["args"]["anomaly_event_id"] for c in sent_commands} == {
        a["event_id"] for a in anomalies
    }
    for sent_command in sent_commands:
        command = stack.get(f"/actions/v1/commands/{sent_command['command_id']}").json()
        assert command["status"] == "acknowledged", command
        assert command["name"] == "cooldown" and "simulated device" in command["result"]
    if stack.settings.TRACING == "on":  # a simulated device's ack closes its command's trace
        for sent_command in sent_commands:
            trace_id = sent_command["traceparent"].split("-")[1]
            eventually(lambda t=trace_id: ack_span(stack, t), 30, f"the ack in trace {trace_id}")


def ack_span(stack: Platform, trace_id: str) -> bool:
    viewer = f"http://127.0.0.1:{stack.settings.ZIPKIN_PORT}"
    answer = requests.get(f"{viewer}/api/v2/trace/{trace_id}", timeout=10)
    return answer.ok and any(
        span.get("localEndpoint", {}).get("serviceName") == "actions"
        and span.get("name") == "apply command ack"
        for span in answer.json()
    )


def test_ctrl_c_stops_the_simulation_with_a_summary(stack: Platform) -> None:
    with command("devices.simulate", "--seconds", "0", "--rate", "5") as simulation:
        simulation.wait_for(r"simulating 5 devices")
        simulation.wait_for(r"sent [1-9]\d*  puback [1-9]")  # a progress line: publishing
        code = simulation.interrupt()

    out = simulation.output()
    assert code == 130, out
    assert simulation.stderr == "", out  # no traceback, no "interrupted" line: a stop
    summary = simulation.wait_for(r"^summary: 5 devices .* stopped by Ctrl-C$").string
    assert summary
    sent, pubacked, _ = counts(
        r"readings +(\d+) sent, (\d+) acknowledged by the broker, (\d+) stored", out
    )
    assert sent >= pubacked > 0
    # Every device said goodbye (its DISCONNECT went out), none was left to be dropped.
    assert re.search(r"^  devices   5 connected, 5 disconnected cleanly$", out, re.MULTILINE), out


def test_bus_tail_shows_a_record_posted_through_ingestion(stack: Platform) -> None:
    device = device_id("tail")
    reading = readings(device, 1)[0]
    assert stack.post("/ingest/v1/telemetry", {"readings": [reading]}).status_code in (200, 202)

    def shown() -> re.Match[str] | None:
        out = inv("bus.tail", "telemetry.v1", "-n", "50").stdout
        return re.search(
            rf'^telemetry\.v1 partition=(\d+) offset=(\d+) key="{device}" timestamp=(\S+) '
            r"headers=(\{.*\})\n  (.*)$",
            out,
            re.MULTILINE,
        )

    match = eventually(shown, timeout=30, what=f"{device}'s record in `inv bus.tail`")
    partition, offset = int(match.group(1)), int(match.group(2))
    value = json.loads(match.group(5))
    assert value["event_id"] == reading["event_id"] and value["device_id"] == device
    assert value["metrics"] == reading["metrics"]
    # The relay's one header: the reading's trace context, continued from ingestion.
    headers = json.loads(match.group(4))
    assert list(headers) == ["traceparent"], headers
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", headers["traceparent"]), headers
    # The partition and offset are where a Kafka client finds that very record.
    consumer = Consumer({"bootstrap.servers": stack.kafka, "group.id": f"e2e-{uuid.uuid4()}"})
    try:
        consumer.assign([TopicPartition("telemetry.v1", partition, offset)])
        record = consumer.poll(10)
        assert record is not None and record.error() is None
        assert record.key() == device.encode()
        assert json.loads(record.value() or b"")["event_id"] == reading["event_id"]
    finally:
        consumer.close()


def test_bus_tail_decodes_headers_and_follows_new_records(stack: Platform) -> None:
    topic = f"e2e.tail.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": stack.kafka})
    try:
        headers = [("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                   ("raw", b"\xff\x00")]  # fmt: skip
        producer.produce(topic, key=b"k-1", value=b'{"n": 1}', headers=headers)
        producer.flush(10)
        with command("bus.tail", topic, "--follow") as tail:
            first = tail.wait_for(rf"^{re.escape(topic)} partition=0 offset=0 key=\"k-1\" ")
            assert json.loads(first.string.split("headers=", 1)[1]) == {
                "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "raw": "ff00",
            }
            tail.wait_for(r"^following ")
            producer.produce(topic, key=None, value=b"not json")
            producer.flush(10)
            tail.wait_for(r"^  'not json'$")
            assert tail.wait_for(r"offset=1 key=null ").string
            assert tail.interrupt() == 130
        assert tail.stderr == "", tail.output()
    finally:
        admin.delete_topics([topic])[topic].result(30)


def test_bus_tail_of_an_unknown_topic_lists_the_topics(stack: Platform) -> None:
    result = inv("bus.tail", "telemetry.v2")

    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no topic 'telemetry.v2' on the bus at ")
    topics = line.split("its topics: ", 1)[1].split(", ")
    assert {"telemetry.v1", "anomalies.v1", "telemetry.dlq"} <= set(topics), line


def test_mqtt_watch_shows_what_is_published_to_a_device_topic(
    stack: Platform, device_mqtt: MqttClient
) -> None:
    device = device_id("watch")
    with command("mqtt.watch") as watch:  # the default filter: devices/#
        watch.wait_for(r"^watching devices/# on ")
        reading = readings(device, 1)[0]
        device_mqtt.publish(f"devices/{device}/telemetry", reading)
        line = watch.wait_for(rf" devices/{device}/telemetry qos=1 retain=0 ").string
        assert json.loads(line.split(" retain=0 ", 1)[1]) == reading
        # Not JSON, retained, QoS 0, on a topic the platform only publishes to.
        info = device_mqtt.client.publish(f"devices/{device}/commands", b"\xff\x00", 0, True)
        info.wait_for_publish(10)
        try:
            watch.wait_for(rf" devices/{device}/commands qos=0 retain=1 <2 bytes> ff00$")
        finally:  # the broker keeps a retained message until an empty one replaces it
            device_mqtt.client.publish(f"devices/{device}/commands", b"", 0, True)
        assert watch.interrupt() == 130
    assert watch.stderr == "", watch.output()
