"""Readiness as data: what a process must answer before it counts as ready, in a form that
travels as JSON to the detached supervisor, which turns each check into a probe of the very
process it started (`probe(started)`). Every kind proves who answers: `Http` with the pid in
the answer's body, `Listening` with the listening sockets of the started process tree, which
the infrastructure recipes put before their protocol's own check.

A `Postgres` check carries the database password: it travels on the detached supervisor's
stdin like the rest of the spec and is never written to a file (the status file holds no
spec), never shown by `repr`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from devenv.proc import probe

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Http:
    """GET `url` answers 2xx; with `answers_pid`, its JSON body's `pid` is the started
    process or one of its workers."""

    kind: ClassVar[str] = "http"
    url: str
    answers_pid: bool = False

    def probe(self, started: int) -> probe.Probe:
        return probe.http(self.url, started=started if self.answers_pid else None)


@dataclass(frozen=True)
class Listening:
    """The started process (or a descendant) listens on every one of `ports`."""

    kind: ClassVar[str] = "listening"
    ports: tuple[int, ...]

    def probe(self, started: int) -> probe.Probe:
        return probe.listening(self.ports, started)


@dataclass(frozen=True)
class Postgres:
    """A query through a real login answers."""

    kind: ClassVar[str] = "postgres"
    port: int
    user: str
    dbname: str
    password: str = field(repr=False)
    host: str = LOOPBACK

    def probe(self, started: int) -> probe.Probe:
        return probe.postgres(self.host, self.port, self.user, self.password, self.dbname)


@dataclass(frozen=True)
class Kafka:
    """A metadata request names at least one broker."""

    kind: ClassVar[str] = "kafka"
    port: int
    host: str = LOOPBACK

    def probe(self, started: int) -> probe.Probe:
        return probe.kafka(self.host, self.port)


@dataclass(frozen=True)
class Mqtt:
    """An MQTT CONNECT gets its CONNACK."""

    kind: ClassVar[str] = "mqtt"
    port: int
    host: str = LOOPBACK

    def probe(self, started: int) -> probe.Probe:
        return probe.mqtt_broker(self.host, self.port)


Check = Http | Listening | Postgres | Kafka | Mqtt
KINDS: dict[str, type[Check]] = {c.kind: c for c in (Http, Listening, Postgres, Kafka, Mqtt)}


def all_of(checks: tuple[Check, ...], started: int) -> probe.Probe:
    """One probe: every check, in order, of the process `started`."""
    probes = [check.probe(started) for check in checks]
    return lambda: all(each() for each in probes)


def to_json(check: Check) -> dict[str, Any]:
    return {"kind": check.kind, **asdict(check)}


def from_json(data: Mapping[str, Any]) -> Check:
    fields: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k != "kind"
    }
    return KINDS[data["kind"]](**fields)
