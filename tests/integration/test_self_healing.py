"""A crashed infrastructure process heals itself: kill -9 of PostgreSQL, Kafka, Mosquitto or
Traefik while the stack is up, and its supervisor starts it again after a backoff — nobody
types `inv up` — with what it acknowledged before the kill still there; `inv status` shows
the restart and how it last exited. And readiness proves who answers: a foreign server on an
infrastructure port never makes the component healthy, and `inv up` names it."""

from __future__ import annotations

import getpass
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from confluent_kafka import Consumer, Producer
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv.backends.native.needs import MOSQUITTO
from devenv.backends.native.recipe import require
from devenv.proc import group, probe
from tests.support.stack import INV, Stack, cleaned
from tests.support.status import StatusRow
from tests.support.status import status_row as status_of
from tests.support.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HEAL_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with cleaned(tmp_path_factory.mktemp("healing") / "state") as s:
        s.inv("up")
        yield s


def status_row(stack: Stack, role: str) -> StatusRow:
    return status_of(stack.inv("status").stdout, role)


def kill9(stack: Stack, role: str) -> int:
    """SIGKILL the component's whole process group (a server's workers too, as a crash of the
    machine's OOM killer would); its pid."""
    row = status_row(stack, role)
    assert (row.state, row.health) == ("running", "healthy"), row
    assert row.pid is not None, row
    pid = row.pid
    group.stop_group(pid, 5, first_signal=signal.SIGKILL)
    return pid


def healed(stack: Stack, role: str, killed: int) -> StatusRow:
    """Wait, with no command typed but `inv status`, until `role` runs again, healthy, as
    another process than the one killed; its status line."""
    seen: list[StatusRow] = []

    def running_again() -> bool:
        seen.append(status_row(stack, role))
        row = seen[-1]
        return (row.state, row.health) == ("running", "healthy") and row.pid not in (None, killed)

    eventually(running_again, HEAL_TIMEOUT, f"{role} restarted by its supervisor ({seen[-1:]})")
    return seen[-1]


def assert_restarted_once_after_sigkill(row: StatusRow) -> None:
    assert row.restarts == "1", row
    assert re.fullmatch(r"SIGKILL \S+ ago", row.last_exit), row


def test_postgres_heals_and_keeps_committed_rows(up: Stack) -> None:
    with up.pg() as conn:
        conn.execute("CREATE TABLE healing (id text PRIMARY KEY)")
        conn.execute("INSERT INTO healing VALUES ('committed before the kill')")
    killed = kill9(up, "db")
    assert_restarted_once_after_sigkill(healed(up, "db", killed))
    with up.pg() as conn:
        assert conn.execute("SELECT id FROM healing").fetchall() == [("committed before the kill",)]


def test_kafka_heals_and_keeps_acknowledged_records(up: Stack) -> None:
    bootstrap = f"127.0.0.1:{up.port('KAFKA_PORT')}"
    topic = f"healing-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    acknowledged: list[bytes] = []

    def delivered(err: object, msg: object) -> None:
        if err is None:
            acknowledged.append(msg.value())  # type: ignore[attr-defined]

    for n in range(20):
        producer.produce(topic, key=b"dev-1", value=b"%d" % n, on_delivery=delivered)
    assert producer.flush(30) == 0 and len(acknowledged) == 20
    killed = kill9(up, "bus")
    assert_restarted_once_after_sigkill(healed(up, "bus", killed))
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": topic, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    got: list[bytes] = []
    try:
        deadline = time.monotonic() + 60
        while len(got) < 20 and time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    assert sorted(got) == sorted(acknowledged)


class Client:
    """A paho client that records what arrives; `clean=False` keeps its session on the broker."""

    def __init__(self, port: int, client_id: str, clean: bool = True) -> None:
        self.received: dict[str, list[bytes]] = {}
        self.subscribed: set[int] = set()
        self.arrived = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, clean_session=clean)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.arrived:
            self.received.setdefault(msg.topic, []).append(msg.payload)
            self.arrived.notify_all()

    def _on_subscribe(self, _c: object, _u: object, mid: int, *_rest: object) -> None:
        with self.arrived:
            self.subscribed.add(mid)
            self.arrived.notify_all()

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for the broker's SUBACK."""
        _, mid = self.client.subscribe(topic, qos=1)
        with self.arrived:
            assert self.arrived.wait_for(lambda: mid in self.subscribed, 10), f"SUBACK {topic}"

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK: acknowledged."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)
        assert info.is_published(), f"no PUBACK for {topic}"

    def wait_for(self, topic: str, timeout: float = 20) -> list[bytes]:
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.received.get(topic), timeout), topic
            return self.received[topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def mosquitto_saves_after_now(stack: Stack) -> None:
    """Wait until Mosquitto writes its state file again. It acknowledges a publish before it
    starts a save, so a save that ends after this call began holds what it acknowledged
    before (what a kill -9 may lose is the second before a save: README, Faults)."""
    saved = stack.state_dir / "native" / "emqx" / "data" / "mosquitto.db"

    def version() -> tuple[int, int] | None:
        return (saved.stat().st_ino, saved.stat().st_mtime_ns) if saved.exists() else None

    first = version()
    eventually(lambda: version() not in (None, first), 30, f"Mosquitto's next save of {saved}")


def test_mosquitto_heals_and_keeps_retained_messages_and_sessions(up: Stack) -> None:
    port = up.port("MQTT_PORT")
    device = f"healing-{uuid.uuid4().hex[:8]}"
    away = Client(port, f"{device}-app", clean=False)  # a persistent session, then offline
    away.subscribe(f"devices/{device}/commands")
    away.close()
    publisher = Client(port, f"{device}-pub")
    publisher.publish(f"devices/{device}/state", b"on", retain=True)
    publisher.publish(f"devices/{device}/commands", b"queued while away")
    publisher.close()
    mosquitto_saves_after_now(up)

    killed = kill9(up, "mqtt")
    assert_restarted_once_after_sigkill(healed(up, "mqtt", killed))

    back = Client(port, f"{device}-app", clean=False)  # the same session, restored
    fresh = Client(port, f"{device}-new")
    try:
        assert back.wait_for(f"devices/{device}/commands") == [b"queued while away"]
        fresh.subscribe(f"devices/{device}/state")
        assert fresh.wait_for(f"devices/{device}/state") == [b"on"]
    finally:
        back.close()
        fresh.close()


def test_traefik_heals_with_its_routes(up: Stack) -> None:
    killed = kill9(up, "gateway")
    assert_restarted_once_after_sigkill(healed(up, "gateway", killed))
    gateway = f"http://127.0.0.1:{up.port('GATEWAY_PORT')}"
    # Routed (no app runs on this stack's app ports: the upstream is down), and nothing else.
    assert requests.get(gateway + "/query/v1/devices", timeout=5).status_code == 502
    assert requests.get(gateway + "/", timeout=5).status_code == 404


# --- readiness proves who answers ------------------------------------------------------------


@pytest.fixture
def foreign_broker(stack: Stack, tmp_path: Path) -> Iterator[Callable[[], int]]:
    """Starts another project's Mosquitto on this stack's MQTT port (its own config and
    folder), waits until it answers MQTT, returns its pid; stopped after the test."""
    started: list[subprocess.Popen[bytes]] = []
    port = stack.port("MQTT_PORT")

    def start() -> int:
        conf = tmp_path / "foreign.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                        f"user {getpass.getuser()}\n")  # fmt: skip
        binary = require(MOSQUITTO)
        started.append(subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL))
        answers = probe.mqtt_broker("127.0.0.1", port)
        eventually(answers, 10, "the foreign broker answering MQTT")
        return started[-1].pid

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def test_a_foreign_broker_answering_while_up_waits_is_not_healthy(
    stack: Stack, tmp_path: Path, foreign_broker: Callable[[], int]
) -> None:
    """Our broker is held in its start; another one takes the port and answers MQTT: `up`
    does not call the component healthy — it fails once the wait is over."""
    release = tmp_path / "release"
    stack.hold_at_start("mosquitto", release)
    stack.env["UP_TIMEOUT"] = "5"
    proc = subprocess.Popen([*INV, "up", "-c", "mqtt"], env=stack.env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        status = stack.state_dir / "native" / "emqx" / "status.json"
        eventually(lambda: '"identity": {' in _text(status), 30, "the held broker started")
        foreign_broker()  # after `up` checked the port: it was free then
        out, err = proc.communicate(timeout=60)
    finally:
        release.touch()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    assert "✓ mqtt" not in out
    assert "mqtt (mosquitto) not ready after 5s" in err
    assert stack.our_processes() == []


def test_a_foreign_broker_on_the_port_of_a_restarting_one_is_not_healthy_and_named(
    stack: Stack, tmp_path: Path, foreign_broker: Callable[[], int]
) -> None:
    """kill -9 of the broker; while its supervisor restarts it (held in its start), another
    broker takes the port and answers: `inv status` says UNHEALTHY, `inv up` names the holder;
    once the foreign one is gone, ours starts and is healthy again."""
    release = tmp_path / "release"
    release.touch()
    stack.hold_at_start("mosquitto", release)
    stack.inv("up", "-c", "mqtt")
    release.unlink()  # the next start waits
    killed = kill9(stack, "mqtt")

    def restarted() -> bool:
        row = status_row(stack, "mqtt")
        return row.state == "running" and row.pid not in (None, killed)

    eventually(restarted, HEAL_TIMEOUT, "the supervisor starting the broker again")
    foreign = foreign_broker()
    row = status_row(stack, "mqtt")
    assert (row.state, row.health) == ("running", "UNHEALTHY"), row
    refused = stack.inv("up", "-c", "mqtt", check=False)
    assert refused.returncode == 1
    port = stack.port("MQTT_PORT")
    assert f"port {port} is in use by mosquitto (pid {foreign}): stop it" in refused.stderr

    os.kill(foreign, signal.SIGTERM)
    eventually(lambda: probe.tcp("127.0.0.1", port)() is False, 10, "the foreign broker gone")
    release.touch()
    healed(stack, "mqtt", killed)


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
