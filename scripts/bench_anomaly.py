#!/usr/bin/env python3
"""Benchmark the anomaly loop on a running stack: ingest-to-command latency of a spike.

For one fresh device it posts --history normal temperature readings (21 degrees with Gaussian
noise) through the gateway, then --spikes times: --between normal readings, then one spike,
timed from just before the spike's HTTP POST (`/ingest/v1/telemetry` through the gateway)
until the `cooldown` command for that reading arrives on MQTT `devices/{id}/commands`
(matched on the command's args.ts). Each command is acknowledged like a device would.
Prints p50/p95/max; bounded by --timeout per spike and --deadline overall. Settings
(GATEWAY_PORT, MQTT_PORT, ...) come from the environment / .env like every other entry point.

    .venv/bin/python scripts/bench_anomaly.py [--spikes 20]
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from devenv.settings import load


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Commands:
    """MQTT subscriber that records when each command arrived, keyed by args.ts."""

    def __init__(self, host: str, port: int, device: str) -> None:
        self.topic = f"devices/{device}/commands"
        self.arrived: dict[str, tuple[float, dict[str, Any]]] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = False
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(self.topic, qos=1)
        with self.cond:
            if not self.cond.wait_for(lambda: self.subscribed, 10):
                raise SystemExit(f"no SUBACK for {self.topic} from MQTT {host}:{port} within 10 s")

    def _on_subscribe(self, *_args: object) -> None:
        with self.cond:
            self.subscribed = True
            self.cond.notify_all()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        body = json.loads(msg.payload)
        with self.cond:
            self.arrived[body.get("args", {}).get("ts", "")] = (now, body)
            self.cond.notify_all()

    def wait(self, ts: str, timeout: float) -> tuple[float, dict[str, Any]] | None:
        with self.cond:
            if self.cond.wait_for(lambda: ts in self.arrived, timeout):
                return self.arrived[ts]
        return None

    def ack(self, device: str, command_id: str) -> None:
        payload = json.dumps({"command_id": command_id, "status": "ok"})
        self.client.publish(f"devices/{device}/commands/ack", payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Device:
    """A fresh device that posts readings through the gateway, one second apart."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.id = f"bench-anom-{uuid.uuid4().hex[:10]}"
        self.http = requests.Session()
        self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
        self.sec = 0
        self.noise = random.Random(42)  # noqa: S311 - test data, not secrets

    def reading(self, value: float) -> dict[str, Any]:
        ts = (self.start + timedelta(seconds=self.sec)).isoformat().replace("+00:00", "Z")
        self.sec += 1
        metrics = {"temperature": value}
        return {"event_id": str(uuid.uuid4()), "device_id": self.id, "ts": ts, "metrics": metrics}

    def normal(self, n: int) -> list[dict[str, Any]]:
        """Room temperature with Gaussian noise (no ties, like a real sensor)."""
        return [self.reading(round(self.noise.gauss(21.0, 0.2), 3)) for _ in range(n)]

    def post(self, batch: list[dict[str, Any]]) -> None:
        url = self.gateway + "/ingest/v1/telemetry"
        r = self.http.post(url, json={"readings": batch}, timeout=30)
        if r.status_code not in (200, 202):
            raise SystemExit(f"ingest answered {r.status_code}: {r.text[:300]}")


def measure(
    args: argparse.Namespace, device: Device, commands: Commands
) -> tuple[list[float], int]:
    """Time each spike from its POST to its command on MQTT; returns latencies and misses."""
    device.post(device.normal(args.history))
    latencies: list[float] = []
    missed = 0
    run_end = time.monotonic() + args.deadline
    for _ in range(args.spikes):
        if time.monotonic() > run_end:
            print(f"deadline of {args.deadline:.0f} s reached", file=sys.stderr)
            break
        device.post(device.normal(args.between))
        spike = device.reading(95.0)
        t0 = time.perf_counter()
        device.post([spike])
        wait = min(args.timeout, max(0.1, run_end - time.monotonic()))
        got = commands.wait(spike["ts"], wait)
        if got is None:
            missed += 1
            print(
                f"no cooldown command for the spike at {spike['ts']} within {wait:.0f} s",
                file=sys.stderr,
            )
            continue
        arrived, body = got
        if body.get("name") != "cooldown":
            raise SystemExit(f"unexpected command {body}")
        latencies.append((arrived - t0) * 1000)
        commands.ack(device.id, body["command_id"])
    return latencies, missed


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--spikes", type=int, default=20, help="timed spikes (>= 1)")
    parser.add_argument("--history", type=int, default=40, help="normal readings first")
    parser.add_argument("--between", type=int, default=10, help="normal readings between spikes")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait per spike")
    parser.add_argument("--deadline", type=float, default=240.0, help="seconds for the whole run")
    args = parser.parse_args()
    settings = load()
    gateway = f"http://127.0.0.1:{settings.GATEWAY_PORT}"
    try:
        requests.get(gateway + "/query/v1/devices", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        print(
            f"the stack does not answer at {gateway} ({exc}): start it with `inv run`",
            file=sys.stderr,
        )
        return 1
    device = Device(gateway)
    commands = Commands("127.0.0.1", settings.MQTT_PORT, device.id)
    try:
        latencies, missed = measure(args, device, commands)
    finally:
        commands.close()
    if not latencies:
        print(f"no command arrived for {args.spikes} spikes (device {device.id})", file=sys.stderr)
        return 1
    print(
        f"anomaly loop, ingest (HTTP via gateway) -> cooldown command on MQTT, device {device.id}: "
        f"{len(latencies)} spikes, {missed} missed; p50 {percentile(latencies, 0.5):.1f} ms, "
        f"p95 {percentile(latencies, 0.95):.1f} ms, min {min(latencies):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )
    return 0 if missed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
