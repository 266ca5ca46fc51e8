"""What a user meets when things go wrong: a busy port, a component that never becomes
healthy, Ctrl-C in the middle of `inv up`, and `inv clean`. Nothing may be left running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from devenv import poll, state
from tests.support.stack import INV, Stack

pytestmark = pytest.mark.integration


def test_busy_port_is_refused_before_anything_starts(stack: Stack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", stack.port("MQTT_PORT")))
        squatter.listen()
        result = stack.inv("up", check=False)
    assert result.returncode != 0
    message = result.stderr.strip()
    assert f"port {stack.port('MQTT_PORT')} is in use" in message
    assert "set MQTT_PORT in .env" in message
    assert f"pid {os.getpid()}" in message  # the holder is named: this very test process
    assert stack.our_processes() == []
    assert "Traceback" not in result.stderr


def test_component_that_fails_to_start_is_named_and_the_rest_stopped(stack: Stack) -> None:
    # Kafka refuses storage formatted for another cluster: a real start-up failure.
    meta = state.claim(stack.state_dir) / "native" / "redpanda" / "data" / "meta.properties"
    meta.parent.mkdir(parents=True)
    meta.write_text("version=1\ncluster.id=not-a-cluster\nnode.id=7\n")
    result = stack.inv("up", check=False)
    assert result.returncode != 0
    assert "bus (kafka) exited with code" in result.stderr
    assert "Last log lines:" in result.stderr
    assert "Stored node id 7" in result.stderr  # Kafka's own explanation, from its log
    assert "full log: " in result.stderr and "redpanda.log" in result.stderr
    assert stack.our_processes() == []
    assert stack.inv("status").stdout.count("stopped") == 4


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=str)
def test_ctrl_c_sigterm_or_sighup_during_up_stops_what_was_started(
    stack: Stack, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C, a `kill` and a closed terminal alike: nothing `inv up` started is left."""
    # The MQTT broker waits in its start: the signal arrives while `inv up` waits for it.
    release = tmp_path / "release"
    stack.hold_at_start("mosquitto", release)
    proc = subprocess.Popen(
        [*INV, "up"], env=stack.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    # Wait for another component to report healthy, then interrupt it.
    for line in proc.stdout:
        if "✓" in line:
            break
    proc.send_signal(sig)
    output = proc.communicate(timeout=60)[0]
    release.touch()
    poll.until(lambda: not stack.our_processes(), 5)
    assert stack.our_processes() == []
    assert proc.returncode != 0
    assert "interrupted" in output


def test_clean_needs_yes_then_deletes_state(stack: Stack) -> None:
    stack.inv("up", "-c", "mqtt")
    refused = stack.inv("clean", check=False)
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert stack.state_dir.exists()
    stack.inv("clean", "--yes")
    assert not stack.state_dir.exists()
    assert stack.our_processes() == []


def test_bad_setting_is_one_line_and_starts_nothing(stack: Stack) -> None:
    stack.env["POSTGRES_PORT"] = "abc"
    result = stack.inv("up", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "POSTGRES_PORT='abc'" in result.stderr
    assert not stack.state_dir.exists()
