"""PostgreSQL stalled (SIGSTOP of every postgres process) during HTTP ingest from three
clients and MQTT ingest: no request waits longer than REQUEST_TIMEOUT (then 503 with
Retry-After, retried by the client with the same event ids), /readyz says the database is not
ready while it stalls and ready after, the pool recovers by itself, the MQTT intake holds its
acks and resumes; every 2xx'd or PUBACKed reading is queryable exactly once."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.support import delivery, faults
from tests.support.clients import Platform, device_id, readings
from tests.support.delivery import Outcome, Publisher
from tests.support.wait import eventually

pytestmark = pytest.mark.faults

STALL_SECONDS = 15.0
CLIENTS, BATCH = 3, 20
# Each client sends a batch, then the next one this long after its 2xx: a steady load.
PACE_SECONDS = 0.1
MQTT_DEVICES, MQTT_PER_DEVICE = 5, 20
# What a request may take beyond REQUEST_TIMEOUT: its own work and the gateway's hop. The
# bound comes from the setting; the stall lasts three times as long.
MARGIN_SECONDS = 3.0
# Long enough that a request held for the whole stall is measured, not cut off.
CLIENT_TIMEOUT = STALL_SECONDS * 4


@dataclass
class Answer:
    started: float
    seconds: float
    status: int
    retry_after: str | None


@dataclass
class IngestClient:
    """A client ingesting batches for its own device until told to stop: every request
    timed, a 503 retried with the same event ids after its Retry-After."""

    url: str
    device: str = field(default_factory=lambda: device_id("stall"))
    accepted: list[dict[str, Any]] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        while not stop.is_set():
            at = start + timedelta(seconds=len(self.accepted))
            self.post_until_accepted(readings(self.device, BATCH, start=at))
            stop.wait(PACE_SECONDS)

    def post_until_accepted(self, batch: list[dict[str, Any]]) -> None:
        while True:
            started = time.monotonic()
            response = requests.post(self.url, json={"readings": batch}, timeout=CLIENT_TIMEOUT)
            retry_after = response.headers.get("Retry-After")
            answer = Answer(started, time.monotonic() - started, response.status_code, retry_after)
            self.answers.append(answer)
            if response.status_code == 200:
                self.accepted.extend(batch)
                return
            assert response.status_code == 503, f"{response.status_code} {response.text}"
            time.sleep(float(retry_after or 1))

    def accepted_since(self, moment: float) -> bool:
        return any(a.status == 200 and a.started > moment for a in self.answers)


def seconds(duration: str) -> float:
    """A duration setting's text (500ms, 5s, 2m) in seconds."""
    number, unit = re.fullmatch(r"([0-9]+)(ms|s|m)", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]


def timed_get(url: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=CLIENT_TIMEOUT)
    return response, time.monotonic() - started


def test_database_stall_bounds_every_request(stack: Platform, publisher: Publisher) -> None:
    limit = seconds(stack.settings.value("REQUEST_TIMEOUT")) + MARGIN_SECONDS
    readyz = f"http://127.0.0.1:{stack.settings.INGESTION_PORT}/readyz"
    clients = [IngestClient(stack.gateway + "/ingest/v1/telemetry") for _ in range(CLIENTS)]
    query_url = f"{stack.gateway}/query/v1/devices/{clients[0].device}/readings"
    during, after = (
        {d: readings(d, MQTT_PER_DEVICE) for d in (device_id(n) for _ in range(MQTT_DEVICES))}
        for n in ("stall-mqtt", "stall-mqtt-after")
    )
    app_before = faults.app_pid(stack.settings)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=CLIENTS + 2) as pool:
        runs = [pool.submit(c.run, stop) for c in clients]
        try:
            eventually(lambda: all(c.accepted for c in clients), 60, "each client's first 2xx")
            with faults.paused_component(stack.settings, "db"):
                stalled_at = time.monotonic()
                probes = [pool.submit(timed_get, url) for url in (readyz, query_url)]
                publisher.publish_all(delivery.mqtt_messages(during))  # PUBACKed by the broker
                # The fault is a stall of a given length, not a wait for the machine.
                time.sleep(max(0.0, STALL_SECONDS - (time.monotonic() - stalled_at)))
            resumed_at = time.monotonic()
            (not_ready, readyz_took), (query, query_took) = (p.result() for p in probes)
            eventually(lambda: requests.get(readyz, timeout=10).status_code == 200,
                       delivery.RECOVERY_TIMEOUT, "/readyz ready after the stall")  # fmt: skip
            eventually(lambda: all(c.accepted_since(resumed_at) for c in clients),
                       delivery.RECOVERY_TIMEOUT, "every client's 2xx after the stall")  # fmt: skip
        finally:
            stop.set()
        for run in runs:
            run.result()
    publisher.publish_all(delivery.mqtt_messages(after))
    plan = {**{c.device: c.accepted for c in clients}, **during, **after}
    duplicates = delivery.wait_all_stored(stack, plan, "after the database stall")
    recovered = time.monotonic() - resumed_at

    answers = [a for c in clients for a in c.answers]
    in_stall = [a for a in answers if a.started + a.seconds > stalled_at and a.started < resumed_at]
    slowest = max(a.seconds for a in answers)
    refused = [a for a in answers if a.status == 503]
    print(f"database stall {STALL_SECONDS:.0f}s: {len(in_stall)} HTTP requests met it, slowest "
          f"{slowest:.1f}s (bound {limit:.1f}s), {len(refused)} answered 503; /readyz "
          f"{not_ready.status_code} in {readyz_took:.1f}s, query {query.status_code} in "
          f"{query_took:.1f}s")  # fmt: skip
    assert slowest <= limit, f"a request waited {slowest:.1f}s, over the bound of {limit:.1f}s"
    assert refused, "no request was refused during the stall"
    assert all(a.retry_after for a in refused), "a 503 without Retry-After"
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["postgres"] != "ok"
    assert readyz_took <= limit, f"/readyz took {readyz_took:.1f}s"
    assert query.status_code == 503 and query.headers.get("Retry-After"), query.text
    assert query_took <= limit, f"the query API took {query_took:.1f}s"
    assert duplicates == 0, f"{duplicates} readings stored twice"
    assert faults.app_pid(stack.settings) == app_before, "recovered without a restart"
    stored = sum(len(rows) for rows in plan.values())
    fault = (
        f"db SIGSTOP {STALL_SECONDS:.0f}s, HTTP+MQTT: slowest {slowest:.1f}s, {len(refused)} 503s"
    )
    delivery.record(Outcome(fault, stored, stored, duplicates, recovered))
