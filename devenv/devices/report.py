"""What the simulation tells the user: the counts (`Tally`), a live progress line, a summary."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

_CLEAR = "\r\033[K"


@dataclass
class Tally:
    """Counts, from the devices' side and from the APIs'."""

    sent: int = 0
    broker_acked: int = 0
    stored: int = 0
    spikes: int = 0
    anomalies: int = 0
    commands: int = 0  # distinct commands received
    acks_sent: int = 0  # acks the broker acknowledged
    acknowledged: int = 0  # commands the actions API reports acknowledged
    unreadable: int = 0  # commands a device could not read (no command_id)
    connected: int = 0
    disconnected: int = 0  # cleanly: their DISCONNECT went out
    first_reading: datetime | None = None
    first_acknowledged: datetime | None = None  # the actions API's acknowledged_at
    api_problem: str | None = None

    def progress(self, elapsed: float) -> str:
        text = (
            f"{elapsed:4.0f} s  sent {self.sent}  puback {self.broker_acked}  "
            f"stored {self.stored}  spikes {self.spikes}  anomalies {self.anomalies}  "
            f"commands {self.commands}  acks {self.acknowledged}"
        )
        return text + (f"  (APIs: {self.api_problem})" if self.api_problem else "")

    def summary(
        self, devices: Sequence[str], elapsed: float, why: str, commanded: bool
    ) -> list[str]:
        ended = f", {why}" if why else ""
        lines = [
            f"summary: {len(devices)} devices ({devices[0]} … {devices[-1]}) for {elapsed:.1f} s"
            f"{ended}",
            f"  readings  {self.sent} sent, {self.broker_acked} acknowledged by the broker, "
            f"{self.stored} stored (query API)",
            f"  spikes    {self.spikes} injected, {self.anomalies} listed as anomalies (query API)",
            f"  commands  {self.commands} received, {self.acks_sent} acks acknowledged by the "
            f"broker, {self.acknowledged} acknowledged (actions API)",
            f"  devices   {self.connected} connected, {self.disconnected} disconnected cleanly",
        ]
        if self.first_reading and self.first_acknowledged:
            loop = (self.first_acknowledged - self.first_reading).total_seconds()
            lines.append(
                f"  loop      first command acknowledged {loop:.1f} s after the first reading"
            )
        elif not commanded:
            lines.append(
                "  loop      no command expected: ANOMALY_COMMAND_RULES has none for temperature"
            )
        if self.unreadable:
            lines.append(f"  {self.unreadable} commands could not be read (no command_id)")
        if self.api_problem:
            lines.append(f"  the APIs did not answer at the end: {self.api_problem}")
        return lines


class Output:
    """Where the simulation speaks: whole lines through `write`; the progress line rewritten
    in place on `terminal`, else written as a line every `every` seconds."""

    def __init__(
        self, write: Callable[[str], None], terminal: TextIO | None = None, every: float = 5.0
    ) -> None:
        self.write = write
        self.terminal = terminal
        self.every = every
        self._lock = threading.Lock()
        self._live = False

    @classmethod
    def to(cls, out: TextIO) -> Output:
        def write(text: str) -> None:
            out.write(text + "\n")
            out.flush()

        return cls(write, out if out.isatty() else None)

    def line(self, text: str) -> None:
        with self._lock:
            if self._live and self.terminal is not None:
                self.terminal.write(_CLEAR)
                self._live = False
            self.write(text)

    def progress(self, text: str, due: bool) -> None:
        """The progress: in place on a terminal each time, else as a line when `due`."""
        if self.terminal is None:
            if due:
                self.line(text)
            return
        with self._lock:
            self.terminal.write(_CLEAR + text)
            self.terminal.flush()
            self._live = True
