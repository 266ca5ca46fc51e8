"""What `inv devices.simulate` is asked to do, checked: a bad value is one line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from devenv.errors import UserError

MAX_DEVICES = 500
MAX_RATE = 100.0  # readings per second, per device


class SimulationError(UserError):
    """A bad argument, or the platform not there: the message is the one line the user sees."""


@dataclass(frozen=True)
class Plan:
    """What to simulate. The defaults show readings -> anomaly -> command -> ack in well under
    a minute on a fresh stack."""

    devices: int = 5
    rate: float = 1.0  # readings per second, per device
    seconds: float = 60.0  # 0: until Ctrl-C
    anomalies: float = 0.05  # probability that a reading is a spike

    def __post_init__(self) -> None:
        # Written so that NaN fails too.
        if not 1 <= self.devices <= MAX_DEVICES:
            raise SimulationError(f"--devices {self.devices}: give 1 to {MAX_DEVICES} devices")
        if not 0 < self.rate <= MAX_RATE:
            raise SimulationError(
                f"--rate {self.rate:g}: give readings per second per device, "
                f"more than 0 and at most {MAX_RATE:g}"
            )
        if not 0 <= self.seconds < math.inf:
            raise SimulationError(f"--seconds {self.seconds:g}: give 0 (until Ctrl-C) or more")
        if not 0 <= self.anomalies <= 1:
            raise SimulationError(
                f"--anomalies {self.anomalies:g}: give a probability from 0 to 1 "
                "(0.05: one reading in 20 is a spike)"
            )

    @classmethod
    def parse(cls, *, devices: str, rate: str, seconds: str, anomalies: str) -> Plan:
        """From the command line's text: a value that is not a number is one line too (the
        task takes text, so that invoke's own cast does not end in a traceback)."""
        return cls(
            devices=_number(int, "devices", devices),
            rate=_number(float, "rate", rate),
            seconds=_number(float, "seconds", seconds),
            anomalies=_number(float, "anomalies", anomalies),
        )


def _number(kind: type[int] | type[float], flag: str, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise SimulationError(f"--{flag} {text!r}: give {what}") from None
