"""The one wait loop of the AWS code: poll a condition every `poll` seconds until it holds,
and past `timeout` raise one AwsError saying what is still not done and what to do."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from devenv.aws.errors import AwsError

T = TypeVar("T")


@dataclass(frozen=True)
class Patience:
    """How long a wait may take and how often it looks (tests pass a `sleep` that returns)."""

    timeout: float
    poll: float = 5.0
    sleep: Callable[[float], None] = time.sleep


def until(
    check: Callable[[], T | None],
    late: Callable[[], str],
    patience: Patience,
    waiting: Callable[[], None] = lambda: None,
) -> T:
    """`check()` until it returns something other than None, and return that. After a check
    past the deadline, raise AwsError(late()); else `waiting()` (say what is awaited), sleep."""
    deadline = time.monotonic() + patience.timeout
    while True:
        done = check()
        if done is not None:
            return done
        if time.monotonic() > deadline:
            raise AwsError(late())
        waiting()
        patience.sleep(patience.poll)
