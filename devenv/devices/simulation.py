"""Simulated devices: `inv devices.simulate`, and `inv run --simulate` beside the apps.

Each device is its own MQTT client (client id = device id, as a device's is; clean session)
that publishes mqtt-telemetry.schema.json readings on devices/{id}/telemetry at QoS 1,
subscribes to devices/{id}/commands and answers every command on devices/{id}/commands/ack
(command-ack.schema.json, status ok, echoing the command's `traceparent`), as the platform
expects of a device.

The signal: temperature and humidity go round a short cycle (a thermostat's, CYCLE readings
long) with a little noise. Against the detector's robust z-score (the median and MAD of the
readings before) such a cycle scores about 1, far below the threshold of 5, so only the
spikes are anomalies. A spike (+SPIKE on the temperature, which ANOMALY_COMMAND_RULES turns
into a `cooldown` command by default) comes with probability P per reading once the device
has sent the AI_MIN_HISTORY readings the model needs before it scores: an earlier one could
never be an anomaly.

What happens is counted from both ends: readings sent and acknowledged by the broker (PUBACK),
commands received and acks sent by the devices; readings stored, spikes listed as anomalies
and commands acknowledged, as the query and actions APIs say (devenv.platform_api).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import math
import random
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from paho.mqtt.client import Client, MQTTMessage, MQTTMessageInfo

from devenv import mqtt, poll
from devenv.devices.plan import Plan, SimulationError
from devenv.devices.report import Output, Tally
from devenv.platform_api import Api, PlatformDown
from devenv.settings import Settings

CYCLE = 8
SPIKE = 40.0
SPIKE_METRIC = "temperature"
POLL_INTERVAL = 1.0
DRAIN_TIMEOUT = 15.0


@dataclass
class Device:
    """One simulated device: its signal and what it is still waiting to see confirmed."""

    id: str
    temperature: float
    humidity: float
    phase: float
    readings: int = 0
    unstored: deque[datetime] = field(default_factory=deque)  # times of readings not yet stored
    unlisted: set[str] = field(default_factory=set)  # spikes not yet listed as anomalies
    client: Client | None = None

    def reading(self, now: datetime, spike: bool, noise: random.Random) -> dict[str, object]:
        angle = 2 * math.pi * self.readings / CYCLE + self.phase
        temperature = self.temperature + 0.5 * math.sin(angle) + noise.gauss(0, 0.02)
        humidity = self.humidity + 2.0 * math.sin(angle) + noise.gauss(0, 0.05)
        return {
            "event_id": str(uuid.uuid4()),
            "device_id": self.id,
            "ts": now.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "metrics": {
                "temperature": round(temperature + (SPIKE if spike else 0.0), 2),
                "humidity": round(humidity, 1),
            },
        }


class Simulation:
    """`plan.devices` devices publishing until `stop()`; `run()` runs them in the foreground."""

    def __init__(self, settings: Settings, plan: Plan, output: Output) -> None:
        self.settings = settings
        self.plan = plan
        self.output = output
        self.api = Api(settings)
        self.tally = Tally()
        # The model scores a reading only after this many before it (an AI service setting).
        history = settings.value("AI_MIN_HISTORY")
        if not history.isdigit():
            raise SimulationError(
                f"AI_MIN_HISTORY={history!r} is not a whole number (the AI service refuses it "
                "too): fix it in .env or the environment (see .env.example)"
            )
        self.warm_up = int(history)
        rules = settings.value("ANOMALY_COMMAND_RULES")
        self.commanded = SPIKE_METRIC in {pair.split(":")[0].strip() for pair in rules.split(",")}
        self.random = random.Random()  # noqa: S311 - a signal, not a secret
        tag = uuid.uuid4().hex[:6]
        width = max(2, len(str(plan.devices)))
        self.devices = [
            Device(
                id=f"sim-{tag}-{n:0{width}d}",
                temperature=round(self.random.uniform(19, 24), 1),
                humidity=round(self.random.uniform(35, 55), 1),
                phase=self.random.uniform(0, 2 * math.pi),
            )
            for n in range(1, plan.devices + 1)
        ]
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._in_flight: list[MQTTMessageInfo] = []  # readings the broker has not acked yet
        self._acks_in_flight: list[MQTTMessageInfo] = []
        self._commands: dict[str, str] = {}  # command id -> device id
        self._unconfirmed: set[str] = set()  # acked by a device, not yet by the actions API
        self._stop_publishing = threading.Event()
        self._stop_watching = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return bool(self._threads)

    def run(self) -> bool:
        """Start, run for `plan.seconds` (0: until Ctrl-C), stop with a summary. True when
        Ctrl-C stopped it."""
        self.start()
        interrupted = False
        try:
            if self.plan.seconds:
                time.sleep(self.plan.seconds)
            else:
                threading.Event().wait()
        except KeyboardInterrupt:
            interrupted = True
        self.stop(drain=not interrupted, why="stopped by Ctrl-C" if interrupted else "")
        return interrupted

    def start(self, wait: float = 0.0) -> None:
        """The platform checked (answering within `wait` seconds), every device connected and
        subscribed, then the publishing and the counting threads started. Nothing is left
        connected when this fails."""
        try:
            self.api.check(wait)
        except PlatformDown as exc:
            raise SimulationError(
                f"{exc}: start the platform with `inv run` (or `inv run --detach`) first"
            ) from None
        try:
            for device in self.devices:
                device.client = mqtt.connect(
                    self.settings,
                    device.id,
                    [(f"devices/{device.id}/commands", 1)],
                    functools.partial(self._on_command, device),
                )
                self.tally.connected += 1
        except BaseException:
            self._disconnect()
            raise
        until = f"for {self.plan.seconds:g} s" if self.plan.seconds else "until Ctrl-C"
        self.output.line(
            f"simulating {len(self.devices)} devices ({self.devices[0].id} … "
            f"{self.devices[-1].id}) on mqtt://{mqtt.address(self.settings)}: "
            f"{self.plan.rate:g} readings/s each, spike probability {self.plan.anomalies:g}, "
            f"{until}"
        )
        self.started = time.monotonic()
        for target in (self._publish, self._watch):
            thread = threading.Thread(target=target, name=f"devices-{target.__name__}")
            thread.start()
            self._threads.append(thread)

    def stop(self, *, drain: bool, why: str = "", recount: bool = True) -> Tally:
        """Stop publishing; with `drain`, wait up to DRAIN_TIMEOUT for the platform to store,
        detect and acknowledge what was sent (Ctrl-C cuts it short); disconnect every device;
        count a last time unless not `recount` (the APIs are gone: the last count, under
        POLL_INTERVAL old, stands); print the summary."""
        self._stop_publishing.set()
        self._threads[0].join()
        elapsed = time.monotonic() - self.started
        if drain:
            self._drain()
        self._stop_watching.set()
        self._threads[1].join()
        self._disconnect()
        if recount:
            self._count()
        else:
            self.tally.api_problem = None
        names = [device.id for device in self.devices]
        for text in self.tally.summary(names, elapsed, why, self.commanded):
            self.output.line(text)
        self.api.close()
        return self.tally

    def _drain(self) -> None:
        self.output.line(
            f"waiting up to {DRAIN_TIMEOUT:g} s for the platform to catch up (Ctrl-C skips)"
        )
        with contextlib.suppress(KeyboardInterrupt):
            poll.until(self._caught_up, DRAIN_TIMEOUT, interval=0.2)

    def _caught_up(self) -> bool:
        t = self.tally
        with self._lock:
            return (
                t.broker_acked == t.sent == t.stored
                and t.anomalies == t.spikes
                and (t.commands >= t.anomalies or not self.commanded)
                and t.acknowledged == t.commands
            )

    def _disconnect(self) -> None:
        with _sigint_deferred():
            for device in self.devices:
                if device.client is not None:
                    self.tally.disconnected += mqtt.close(device.client)
                    device.client = None

    # --- the devices ----------------------------------------------------------------------
    def _publish(self) -> None:
        """Every device in turn, spread evenly over each period of 1/rate seconds."""
        period = 1 / self.plan.rate
        count = len(self.devices)
        for turn in itertools.count():
            for n, device in enumerate(self.devices):
                due = self.started + (turn + n / count) * period
                if self._stop_publishing.wait(max(0.0, due - time.monotonic())):
                    return
                self._send(device)

    def _send(self, device: Device) -> None:
        assert device.client is not None
        spike = device.readings >= self.warm_up and self.random.random() < self.plan.anomalies
        now = datetime.now(UTC)
        reading = device.reading(now, spike, self.random)
        device.readings += 1
        info = device.client.publish(f"devices/{device.id}/telemetry", json.dumps(reading), qos=1)
        with self._lock:
            self.tally.sent += 1
            self.tally.first_reading = self.tally.first_reading or now
            self._in_flight.append(info)
            device.unstored.append(now)
            if spike:
                self.tally.spikes += 1
                device.unlisted.add(str(reading["event_id"]))

    def _on_command(self, device: Device, client: Client, message: MQTTMessage) -> None:
        """As a device does: read the command, carry it out (here: nothing to do), ack it.
        A redelivered command is acked again; the actions server keeps the first ack."""
        try:
            command = json.loads(message.payload)
            command_id = str(command["command_id"])
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.tally.unreadable += 1
            self.output.line(f"{device.id}: cannot read the command on {message.topic}")
            return
        ack = {
            "command_id": command_id,
            "status": "ok",
            "result": f"{command.get('name', 'command')} done (simulated device)",
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if isinstance(command.get("traceparent"), str):  # echoed: the ack closes its trace
            ack["traceparent"] = command["traceparent"]
        info = client.publish(f"devices/{device.id}/commands/ack", json.dumps(ack), qos=1)
        with self._lock:
            if command_id not in self._commands:
                self._commands[command_id] = device.id
                self._unconfirmed.add(command_id)
                self.tally.commands += 1
            self._acks_in_flight.append(info)

    # --- counting -------------------------------------------------------------------------
    def _watch(self) -> None:
        last_line = time.monotonic()
        while not self._stop_watching.wait(POLL_INTERVAL):
            self._count()
            due = time.monotonic() - last_line >= self.output.every
            if due:
                last_line = time.monotonic()
            self.output.progress(self._progress(), due)

    def _count(self) -> None:
        """Settle the broker's acks, then ask the APIs what they have."""
        with self._lock:
            for pending, counter in ((self._in_flight, "broker_acked"),
                                     (self._acks_in_flight, "acks_sent")):  # fmt: skip
                done = [info for info in pending if info.is_published()]
                pending[:] = [info for info in pending if not info.is_published()]
                setattr(self.tally, counter, getattr(self.tally, counter) + len(done))
            spiked = {device.id: set(device.unlisted) for device in self.devices if device.unlisted}
            unconfirmed = set(self._unconfirmed)
        try:
            latest = self.api.last_readings()
            listed = {d: self.api.anomalies(d, SPIKE_METRIC) & ids for d, ids in spiked.items()}
            confirmed = {}
            for command_id in unconfirmed:
                command = self.api.command(command_id)
                if command and command["status"] == "acknowledged":
                    confirmed[command_id] = datetime.fromisoformat(command["acknowledged_at"])
        except PlatformDown as exc:
            with self._lock:
                self.tally.api_problem = str(exc)
            return
        with self._lock:
            t = self.tally
            t.api_problem = None
            for device in self.devices:
                last = latest.get(device.id)
                while last and device.unstored and device.unstored[0] <= last:
                    device.unstored.popleft()
                    t.stored += 1
                found = listed.get(device.id, set())
                device.unlisted -= found
                t.anomalies += len(found)
            self._unconfirmed -= confirmed.keys()
            t.acknowledged += len(confirmed)
            for when in confirmed.values():
                t.first_acknowledged = min(t.first_acknowledged or when, when)

    def _progress(self) -> str:
        with self._lock:
            return self.tally.progress(time.monotonic() - self.started)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """A second Ctrl-C while the devices disconnect must not leave some connected."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def ignore(_signum: int, _frame: FrameType | None) -> None:
        pass

    previous = signal.signal(signal.SIGINT, ignore)  # not SIG_IGN: children would inherit it
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
