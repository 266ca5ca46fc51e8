"""`inv run --simulate` as a user runs it: the simulated devices start once the apps are ready,
beside them, and show the whole loop; Ctrl-C stops the apps and the devices, whose summary
says every one disconnected cleanly."""

from __future__ import annotations

import pytest

from tests.support.commands import command
from tests.support.stack import Stack

pytestmark = pytest.mark.integration


def test_run_simulate_shows_readings_anomalies_and_acknowledged_commands(stack: Stack) -> None:
    with command("run", "--simulate", env=stack.env) as run:
        ready = run.wait_for(r"answers through the gateway", timeout=180)
        started = run.wait_for(r"^devices +\| simulating 5 devices \(sim-\w+-01 … sim-\w+-05\)")
        assert run.lines.index(ready.string) < run.lines.index(started.string)
        # A count every 10 s; the model scores from the 17th reading of a device (1 a second).
        run.wait_for(r"^devices +\| .* anomalies [1-9]\d*  commands [1-9]\d*  acks [1-9]", 90)
        code = run.interrupt()

    out = run.output()
    assert code == 0, out  # Ctrl-C is how `inv run` stops once the apps are ready
    assert run.wait_for(r"^devices +\| summary: 5 devices .* the apps stopped$")
    assert run.wait_for(r"^devices +\|   devices   5 connected, 5 disconnected cleanly$")
    assert run.wait_for(r"^devices +\|   loop      first command acknowledged [\d.]+ s after")
