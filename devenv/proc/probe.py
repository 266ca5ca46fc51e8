"""Readiness probes that speak each component's own protocol (`devenv.poll.until` polls them).

A probe answers True only when a real client got a real answer: a PostgreSQL query, a Kafka
metadata response, an MQTT CONNACK, Traefik's /ping; `listening` and `answered_by` check that
the answer comes from the process that was started. Nothing here sleeps to 'let it start'.

Each client library is imported by the probe that uses it: a detached supervisor runs one
component's probe, and importing all three would cost it ~25 MB of memory for nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from http.client import HTTPException

import psutil

Probe = Callable[[], bool]
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def postgres(host: str, port: int, user: str, password: str, dbname: str) -> Probe:
    import psycopg  # noqa: PLC0415 - see the docstring

    def probe() -> bool:
        try:
            with psycopg.connect(
                host=host, port=port, user=user, password=password, dbname=dbname, connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    return probe


def kafka(host: str, port: int) -> Probe:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - see the docstring

    logger = logging.getLogger("devenv.proc.probe.kafka")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False

    def probe() -> bool:
        if not tcp(host, port)():
            return False
        # librdkafka would print every refused connection to stderr; route it to our logger.
        config = {"bootstrap.servers": f"{host}:{port}", "socket.timeout.ms": 2000}
        admin = AdminClient({**config, "logger": logger})  # type: ignore[dict-item]
        try:
            metadata = admin.list_topics(timeout=2)
            return bool(metadata.brokers)
        except Exception:
            return False

    return probe


def mqtt_broker(host: str, port: int) -> Probe:
    from paho.mqtt import client as mqtt  # noqa: PLC0415 - see the docstring
    from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

    def probe() -> bool:
        connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="devenv-probe")

        def on_connect(*args: object) -> None:
            if not getattr(args[3], "is_failure", True):
                connected.set()

        client.on_connect = on_connect
        try:
            client.connect(host, port, keepalive=5)
        except OSError:
            return False
        client.loop_start()
        try:
            return connected.wait(2)
        finally:
            client.disconnect()
            client.loop_stop()

    return probe


def http(url: str, timeout: float = 1.0, started: int | None = None) -> Probe:
    """GET `url` answers 2xx; with `started`, the JSON body's `pid` must be that process or
    one of its descendants (a worker): another process answering on the port is not ready.
    Never through a proxy (the target is on this machine)."""

    def probe() -> bool:
        try:
            with _NO_PROXY.open(url, timeout=timeout) as response:
                if not 200 <= int(response.status) < 300:
                    return False
                return started is None or answered_by(response.read(), started)
        # HTTPException: a server that dies mid-answer (IncompleteRead) is not ready either.
        except (urllib.error.URLError, OSError, ValueError, HTTPException):
            return False

    return probe


def answered_by(body: bytes, started: int) -> bool:
    """The JSON `body` names as its `pid` the process `started` or one of its descendants."""
    try:
        pid = json.loads(body).get("pid")
    except (ValueError, AttributeError):
        return False
    if not isinstance(pid, int):
        return False
    try:
        return pid == started or any(p.pid == started for p in psutil.Process(pid).parents())
    except psutil.Error:
        return False


def listening(ports: Iterable[int], started: int) -> Probe:
    """Every one of `ports` has a listening socket of the process `started` or of one of its
    descendants (a server's workers): a foreign server that holds the port (ours could not
    bind it, or is being restarted) is not ours, however well it answers. A listening socket
    on 127.0.0.1 or on every address excludes any other on the same port (no SO_REUSEPORT
    here), so a connection to the port reaches ours."""
    wanted = set(ports)

    def probe() -> bool:
        try:
            leader = psutil.Process(started)
            tree = [leader, *leader.children(recursive=True)]
        except psutil.Error:
            return False
        held: set[int] = set()
        for proc in tree:
            with contextlib.suppress(psutil.Error):
                held.update(
                    conn.laddr.port
                    for conn in proc.net_connections(kind="tcp")
                    if conn.status == psutil.CONN_LISTEN
                )
        return wanted <= held

    return probe


def tcp(host: str, port: int) -> Probe:
    def probe() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False

    return probe
