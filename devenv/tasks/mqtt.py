"""`inv mqtt.watch`: what passes through the MQTT broker."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import mqtt, settings
from devenv.tasks import user_errors


@task(
    help={
        "filter": "Topic filter (default devices/#), e.g. devices/+/commands. A flag, not a "
        "positional: invoke has no optional positional arguments.",
    }
)
def watch(c: Context, filter_: str = "devices/#") -> None:
    """Print the MQTT messages matching a filter: topic, QoS, retain, payload.

    The payload decoded when it is JSON; until Ctrl-C (exit 130)."""
    with user_errors():
        try:
            mqtt.watch(settings.load(), filter_, sys.stdout)
        except KeyboardInterrupt:
            raise Exit(code=130) from None
