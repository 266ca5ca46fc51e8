#!/usr/bin/env python3
"""How much a kill -9 of the native Mosquitto loses of what it acknowledged (the persistence
window), and what the broker's save policy costs.

Starts Mosquitto on a free loopback port with the generated config
(devenv/backends/native/mosquitto.py) in a temporary folder; a persistent session with a
plain subscription (the app's, offline: everything is queued for it) holds the readings.
Per run: CONNECTIONS devices publish QoS 1 as fast as the broker acknowledges, the broker is
killed (SIGKILL) after a run-dependent moment, restarted, and the session drained: every
acknowledged message that does not come back is lost; "window" is how long before the kill
the oldest lost one was acknowledged. Then the time to queue 5,000 messages from one
connection and from CONNECTIONS.
`--on-changes` replaces `autosave_interval N` by `autosave_on_changes true` +
`autosave_interval 1` (a save after every loop that changed something), for comparison.
Run: ./scripts/bootstrap python scripts/bench_broker_window.py [runs] [--on-changes]
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paho.mqtt import client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from devenv import poll
from devenv.backends.native import mosquitto
from devenv.backends.native.recipe import current_user
from devenv.proc import probe

CONNECTIONS = 20
TOPIC = "devices/bench/telemetry"


class Broker:
    def __init__(self, home: Path, on_changes: bool) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (home / "data").mkdir(parents=True)
        text = mosquitto.config(f"{self.port} 127.0.0.1", f"{home / 'data'}/", current_user())
        if on_changes:
            text = text.replace(
                f"autosave_interval {mosquitto.AUTOSAVE_SECONDS}",
                "autosave_on_changes true\nautosave_interval 1",
            )
        (home / "mosquitto.conf").write_text(text)
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "mosquitto.log").open("ab")
        binary = shutil.which("mosquitto", path="/usr/sbin:/usr/bin") or "mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.home / "mosquitto.conf")],
                                     stdout=log, stderr=log)  # fmt: skip
        ready = probe.mqtt_broker("127.0.0.1", self.port)
        if not poll.until(ready, 10, interval=0.02):
            sys.exit(f"mosquitto did not answer on {self.port}: see {self.home}/mosquitto.log")

    def kill(self) -> None:
        assert self.proc
        self.proc.kill()
        self.proc.wait()


def connect(port: int, client_id: str, clean: bool = True) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    if not poll.until(client.is_connected, 10, interval=0.01):
        sys.exit(f"could not connect to the broker on {port}")
    return client


def hold_session(port: int) -> None:
    """The app's session: persistent, one plain subscription, then offline."""
    app = connect(port, "app", clean=False)
    app.subscribe("devices/+/telemetry", 1)[1]
    poll.until(lambda: False, 0.3)  # let the SUBACK arrive before leaving
    app.disconnect()
    app.loop_stop()


def drain(port: int) -> set[str]:
    got: set[str] = set()
    app = connect(port, "app", clean=False)
    app.on_message = lambda _c, _u, m: got.add(m.payload.decode())
    seen = -1
    while seen != len(got):  # until 3 s pass without a new message (a loaded machine)
        seen = len(got)
        poll.until(lambda: False, 3.0)
    app.disconnect()
    app.loop_stop()
    return got


def stream(port: int, tag: str, stop: threading.Event, acked: dict[str, float]) -> None:
    """Publish until stopped; record when each PUBACK arrived."""
    client = connect(port, tag)
    pubacks: list[tuple[int, float]] = []  # (mid, when), appended on paho's thread
    client.on_publish = lambda _c, _u, mid, *_a: pubacks.append((mid, time.monotonic()))
    sent: dict[int, str] = {}
    n = 0
    while not stop.is_set() and client.is_connected():
        sent[client.publish(TOPIC, f"{tag}-{n}", qos=1).mid] = f"{tag}-{n}"
        n += 1
        if n % 20 == 0:
            time.sleep(0.02)  # a device fleet, not a flood: the broker keeps up
    client.loop_stop()
    acked.update((sent[mid], at) for mid, at in pubacks)


def kill_run(root: Path, on_changes: bool, after: float) -> tuple[int, int, float]:
    broker = Broker(root, on_changes)
    broker.start()
    hold_session(broker.port)
    stop, acked = threading.Event(), dict[str, float]()
    threads = [
        threading.Thread(target=stream, args=(broker.port, f"d{i}", stop, acked))
        for i in range(CONNECTIONS)
    ]
    for t in threads:
        t.start()
    poll.until(lambda: False, after)
    killed_at = time.monotonic()
    broker.kill()
    stop.set()
    for t in threads:
        t.join()
    broker.start()
    kept = drain(broker.port)
    broker.kill()
    lost = {m: at for m, at in acked.items() if m not in kept and at <= killed_at}
    window = killed_at - min(lost.values()) if lost else 0.0
    return len(acked), len(lost), window


def queue_time(root: Path, on_changes: bool, connections: int, total: int = 5000) -> float:
    broker = Broker(root, on_changes)
    broker.start()
    hold_session(broker.port)
    clients = [connect(broker.port, f"q{i}") for i in range(connections)]
    started = time.monotonic()
    infos = [clients[n % connections].publish(TOPIC, str(n), qos=1) for n in range(total)]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.monotonic() - started
    for c in clients:
        c.disconnect()
        c.loop_stop()
    broker.kill()
    return elapsed


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = int(args[0]) if args else 5
    on_changes = "--on-changes" in sys.argv
    policy = "autosave_on_changes 1" if on_changes else f"autosave {mosquitto.AUTOSAVE_SECONDS} s"
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp:
        for run in range(runs):
            acked, lost, window = kill_run(Path(tmp) / f"k{run}", on_changes, 2.0 + 0.37 * run)
            line = f"{policy}: kill -9 {run + 1}: {acked:>6} acknowledged, {lost:>5} lost"
            print(f"{line}, oldest lost acknowledged {window:.2f} s before the kill", flush=True)
        for n in (1, CONNECTIONS):
            secs = queue_time(Path(tmp) / f"q{n}", on_changes, n)
            print(f"{policy}: 5,000 queued from {n} connection(s) in {secs:.2f} s "
                  f"({5000 / secs:,.0f}/s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
