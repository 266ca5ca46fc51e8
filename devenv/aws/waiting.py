"""The AWS code's waits: `devenv.poll.until` every `poll` seconds, and past `timeout` one
AwsError saying what is still not done and what to do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from devenv import poll
from devenv.aws.errors import AwsError

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How long a wait may take and how often it looks (tests pass `poll=0`)."""

    timeout: float
    poll: float = 5.0


def until(check: Callable[[], T | None], late: Callable[[], str], patience: Patience) -> T:
    """`check()` until it returns something truthy (a task, an ARN, True), and return that;
    after a check past the deadline, raise AwsError(late())."""
    done = poll.until(check, patience.timeout, interval=patience.poll)
    if not done:
        raise AwsError(late())
    return done
