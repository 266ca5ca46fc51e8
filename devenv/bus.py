"""The Kafka-API bus as this machine reaches it: 127.0.0.1:KAFKA_PORT on both backends (Apache
Kafka natively; Redpanda in docker advertises the same host port). `inv bus.tail` reads a
topic's records with their key, partition, offset, timestamp and headers.

It reads as a bare consumer — partitions assigned by hand, no offsets committed — so it
leaves no consumer group behind and never moves one of the platform's."""

from __future__ import annotations

import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from devenv.errors import UserError
from devenv.payload import describe
from devenv.settings import Settings

HOST = "127.0.0.1"
TIMEOUT = 5.0
READ_TIMEOUT = 30.0  # without a record while records are known to be there
_POLL = 0.5


class BusError(UserError):
    """The bus does not answer, the topic is not there, or a bad argument: the message is the
    one line the user sees."""


def bootstrap(settings: Settings) -> str:
    return f"{HOST}:{settings.KAFKA_PORT}"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: str | None
    timestamp: str | None
    headers: dict[str, str | None]
    value: bytes | None

    @classmethod
    def of(cls, message: Message) -> Record:
        _kind, millis = message.timestamp()
        stamp = None
        if millis is not None and millis >= 0:
            moment = datetime.fromtimestamp(millis / 1000, UTC)
            stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        key, headers = message.key(), message.headers() or []
        pairs = headers.items() if isinstance(headers, dict) else headers
        return cls(
            topic=message.topic() or "",
            partition=message.partition() or 0,
            offset=message.offset() or 0,
            key=None if key is None else key.decode(errors="replace"),
            timestamp=stamp,
            headers={name: _text(value) for name, value in pairs},
            value=message.value(),
        )

    def lines(self) -> list[str]:
        """A heading with where the record is and what it carries, then its value."""
        head = (
            f"{self.topic} partition={self.partition} offset={self.offset} "
            f"key={json.dumps(self.key)} timestamp={self.timestamp or '-'} "
            f"headers={json.dumps(self.headers)}"
        )
        return [head, f"  {describe(self.value)}"]


def _text(value: str | bytes | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.hex()


def count(text: str) -> int:
    """-n's value: how many past records, 0 or more."""
    try:
        number = int(text)
    except ValueError:
        number = -1
    if number < 0:
        raise BusError(f"-n {text!r}: give how many past records to show, a whole number >= 0")
    return number


def tail(settings: Settings, topic: str, count: int, follow: bool, out: TextIO) -> None:
    """Print the last `count` records of `topic` (in time order across its partitions); with
    `follow`, then every new one until Ctrl-C."""
    consumer = _consumer(settings)
    try:
        partitions = _partitions(consumer, topic, settings)
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for partition in partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=TIMEOUT
            )
            starts[partition], ends[partition] = max(low, high - count), high
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in starts.items()])
        past, newer = _read_to(consumer, starts, ends)
        past.sort(key=lambda r: (r.timestamp or "", r.partition, r.offset))
        shown = past[-count:] if count else []
        _print(out, shown)
        if not follow:
            if not shown:
                out.write(f"no records in {topic}\n")
            return
        out.write(f"following {topic} on {bootstrap(settings)} (Ctrl-C stops)\n")
        _print(out, newer)
        while True:
            for record in _records(consumer):
                _print(out, [record])
    finally:
        consumer.close()


def _consumer(settings: Settings) -> Consumer:
    quiet = logging.getLogger("devenv.bus.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap(settings),
        "group.id": f"bus-tail-{uuid.uuid4().hex[:8]}",  # required, never joined: assign()
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        # librdkafka logs every refused connection on stderr; one line says it instead.
        "logger": quiet,
        "error_cb": lambda _error: None,
    }
    return Consumer(config)


def _partitions(consumer: Consumer, topic: str, settings: Settings) -> list[int]:
    """The topic's partitions; BusError naming the topics there are when it is not one."""
    where = bootstrap(settings)
    try:  # at once, where librdkafka would retry for TIMEOUT
        socket.create_connection((HOST, settings.KAFKA_PORT), timeout=TIMEOUT).close()
        metadata = consumer.list_topics(timeout=TIMEOUT)  # all topics: never creates one
    except (OSError, KafkaException) as exc:
        why = exc.args[0].str() if isinstance(exc, KafkaException) else exc.strerror or exc
        raise BusError(
            f"the bus at {where} does not answer ({why}): run `inv up` first "
            "(`inv status` shows what runs)"
        ) from None
    if topic not in metadata.topics:
        topics = sorted(name for name in metadata.topics if not name.startswith("_"))
        listed = ", ".join(topics) if topics else "none yet (the monolith creates them: `inv run`)"
        raise BusError(f"no topic {topic!r} on the bus at {where}; its topics: {listed}")
    return sorted(metadata.topics[topic].partitions)


def _read_to(
    consumer: Consumer, starts: dict[int, int], ends: dict[int, int]
) -> tuple[list[Record], list[Record]]:
    """Records until every partition reached its end offset (its EOF): those before the ends,
    and those written since. BusError when the bus stops answering meanwhile."""
    pending = {partition for partition, end in ends.items() if starts[partition] < end}
    past: list[Record] = []
    newer: list[Record] = []
    quiet_since = time.monotonic()
    while pending:
        message = consumer.poll(_POLL)
        if message is None:
            if time.monotonic() - quiet_since > READ_TIMEOUT:
                raise BusError(f"the bus stopped answering while reading partitions {pending}")
            continue
        quiet_since = time.monotonic()
        error = message.error()
        if error is not None and error.code() == KafkaError._PARTITION_EOF:
            pending.discard(message.partition())
            continue
        record = _record(message)
        (past if record.offset < ends[record.partition] else newer).append(record)
        if record.offset + 1 >= ends[record.partition]:
            pending.discard(record.partition)
    return past, newer


def _records(consumer: Consumer) -> Iterator[Record]:
    message = consumer.poll(_POLL)
    if message is None:
        return
    error = message.error()
    if error is not None and error.code() == KafkaError._PARTITION_EOF:
        return
    yield _record(message)


def _record(message: Message) -> Record:
    error = message.error()
    if error is not None:
        raise BusError(f"reading {message.topic()} failed: {error.str()}")
    return Record.of(message)


def _print(out: TextIO, records: list[Record]) -> None:
    for record in records:
        out.write("\n".join(record.lines()) + "\n")
    out.flush()
