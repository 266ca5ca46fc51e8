"""`inv devices.simulate`: simulated devices that publish telemetry and answer commands."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import devices, settings
from devenv.tasks import user_errors


@task(
    help={
        "devices": "How many devices (default 5, at most 500), each its own MQTT client.",
        "rate": "Readings per second, per device (default 1, at most 100).",
        "seconds": "How long (default 60); 0 runs until Ctrl-C.",
        "anomalies": "Probability that a reading is a temperature spike (default 0.05).",
    }
)
def simulate(
    c: Context, devices_: str = "5", rate: str = "1", seconds: str = "60", anomalies: str = "0.05"
) -> None:
    """Simulated devices: telemetry over MQTT, spikes, commands acknowledged.

    Each device publishes readings (QoS 1), now and then a temperature spike, and acks the
    commands the platform sends it; a live count, a summary at the end (Ctrl-C: the summary,
    exit 130)."""
    with user_errors():
        plan = devices.Plan.parse(devices=devices_, rate=rate, seconds=seconds, anomalies=anomalies)
        if devices.simulate(settings.load(), plan, sys.stdout):
            raise Exit(code=130)
