"""`inv bus.tail`: a topic's records on the Kafka-API bus, decoded."""

from __future__ import annotations

import sys

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.tasks import task

from devenv import bus, settings
from devenv.tasks import user_errors


@task(
    help={
        "topic": "The topic, e.g. telemetry.v1 (an unknown one lists the topics there are).",
        "n": "How many past records to show first (default 10).",
        "follow": "Then print every new record until Ctrl-C (exit 130).",
    }
)
def tail(c: Context, topic: str, n: str = "10", follow: bool = False) -> None:
    """A topic's last records, decoded, with key, partition, offset and headers."""
    with user_errors():
        try:
            bus.tail(settings.load(), topic, bus.count(n), follow, sys.stdout)
        except KeyboardInterrupt:
            raise Exit(code=130) from None
