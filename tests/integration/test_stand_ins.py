"""INFRA_IMAGES=local for real: the stand-in images built on this machine, brought up through
the docker backend on free ports in a Compose project of their own, each healthy and each
answering its real client as the official image would (PostgreSQL's POSTGRES_* contract and
password auth, a Kafka record produced and consumed through the advertised address, an MQTT
QoS 1 round trip, Traefik's ping); data kept across a restart; a second build with nothing
changed is timed and printed. Runs in `nox -s "integration(docker)"`."""

from __future__ import annotations

import os
import secrets
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import backends
from devenv.backends import stand_ins
from devenv.backends.docker import DockerBackend
from devenv.settings import Settings, load
from devenv.stack import isolated_env

pytestmark = pytest.mark.docker

# deploy/aws.yaml's users, which the stand-ins run as (tests/contract holds the Dockerfiles).
USERS = {"postgres": "70 70", "redpanda": "101 101", "emqx": "1000 1000", "traefik": "65532 65532"}

BUILD_SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    problem = backends.docker_problem()
    if problem:
        pytest.fail(problem)
    state = tmp_path_factory.mktemp("stand-ins") / "state"
    env = {
        **isolated_env(state), "INFRA_BACKEND": "docker", "INFRA_IMAGES": "local",
        "POSTGRES_USER": "stand_in", "POSTGRES_DB": "stand_in_db",
        "POSTGRES_PASSWORD": secrets.token_urlsafe(12),
    }  # fmt: skip
    saved = os.environ.get("COMPOSE_PROJECT_NAME")
    os.environ["COMPOSE_PROJECT_NAME"] = f"stand-ins-test-{uuid.uuid4().hex[:8]}"
    current = load(env_file=Path(state) / "none", environ=env)
    try:
        yield current
    finally:
        DockerBackend(current, say=lambda _: None).remove_data()
        if saved is None:
            os.environ.pop("COMPOSE_PROJECT_NAME")
        else:
            os.environ["COMPOSE_PROJECT_NAME"] = saved


@pytest.fixture(scope="module")
def backend(settings: Settings) -> DockerBackend:
    """Built (cold or from the cache) and up: every stand-in healthy, or the `up` fails."""
    started = time.monotonic()
    stand_ins.ensure(settings, print)
    BUILD_SECONDS["first"] = time.monotonic() - started
    docker = DockerBackend(settings, say=print)
    docker.up([])
    return docker


def test_each_stand_in_is_up_and_healthy_as_its_ecs_user(backend: DockerBackend) -> None:
    rows = {row.service: row for row in backend.status()}
    assert {s: (r.state, r.healthy) for s, r in rows.items()} == dict.fromkeys(
        ["postgres", "redpanda", "emqx", "traefik"], ("running", True)
    )
    for service, ids in USERS.items():
        shown = backend._run("exec", "-T", service, "sh", "-c", "echo $(id -u) $(id -g)")
        assert shown.stdout.split() == ids.split(), service


def pg(settings: Settings, password: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1", port=settings.POSTGRES_PORT, user=settings.POSTGRES_USER,
        password=password or settings.POSTGRES_PASSWORD.get_secret_value(),
        dbname=settings.POSTGRES_DB, autocommit=True, connect_timeout=5,
    )  # fmt: skip


def test_postgres_keeps_the_official_contract(backend: DockerBackend, settings: Settings) -> None:
    with pg(settings) as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            "stand_in", "stand_in_db",
        )  # fmt: skip
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        pg(settings, password="not-the-password").close()


def kafka_round_trip(settings: Settings, topic: str, value: bytes | None) -> list[bytes]:
    """Produce `value` (unless None) with acks=all, then read the topic from the start."""
    servers = f"127.0.0.1:{settings.KAFKA_PORT}"
    if value is not None:
        producer = Producer({"bootstrap.servers": servers, "acks": "all"})
        producer.produce(topic, value)
        assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": servers, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topic])
    got: list[bytes] = []
    deadline = time.monotonic() + 30
    try:
        while not got and time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is not None and message.error() is None:
                got.append(message.value())
    finally:
        consumer.close()
    return got


def test_kafka_answers_on_the_advertised_address(
    backend: DockerBackend, settings: Settings
) -> None:
    assert kafka_round_trip(settings, "stand-in.check", b"hello") == [b"hello"]


def test_mqtt_qos1_round_trip(backend: DockerBackend, settings: Settings) -> None:
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"stand-in-{uuid.uuid4().hex}")
    client.on_message = lambda *args: arrived.set()
    client.connect("127.0.0.1", settings.MQTT_PORT)
    client.loop_start()
    try:
        client.subscribe("stand-in/check", qos=1)[0]
        info = client.publish("stand-in/check", b"hi", qos=1)
        info.wait_for_publish(10)  # the PUBACK
        assert info.is_published()
        assert arrived.wait(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_traefik_answers_its_ping(backend: DockerBackend, settings: Settings) -> None:
    url = f"http://127.0.0.1:{settings.GATEWAY_DASHBOARD_PORT}/ping"
    with urllib.request.urlopen(url, timeout=5) as reply:
        assert reply.status == 200


def test_data_survives_down_and_up(backend: DockerBackend, settings: Settings) -> None:
    with pg(settings) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('row')")
    assert kafka_round_trip(settings, "stand-in.kept", b"record") == [b"record"]
    backend.down([])  # containers gone, volumes kept
    backend.up([])
    with pg(settings) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("row",)]
    assert kafka_round_trip(settings, "stand-in.kept", None) == [b"record"]
    logs = backend._run("logs", "--no-color", "postgres", "redpanda").stdout
    assert "first start" not in logs  # initialised once, in the volume


def test_a_second_build_with_nothing_changed(
    backend: DockerBackend, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    stand_ins.ensure(settings, lambda _: None)
    unchanged = time.monotonic() - started
    with capsys.disabled():  # the figures, shown even when the test passes
        print(f"\nstand-ins build: first in this run {BUILD_SECONDS['first']:.1f}s "
              f"(cold when no image was there), unchanged {unchanged:.1f}s")  # fmt: skip
