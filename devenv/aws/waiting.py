"""The one wait loop of the AWS code: poll a condition every `poll` seconds until it holds,
and past `timeout` raise one AwsError saying what is still not done and what to do."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from devenv.aws.errors import AwsError

T = TypeVar("T")


def until(
    check: Callable[[], T | None],
    late: Callable[[], str],
    *,
    timeout: float,
    poll: float,
    sleep: Callable[[float], None],
    waiting: Callable[[], None] = lambda: None,
) -> T:
    """`check()` until it returns something other than None, and return that. After a check
    past the deadline, raise AwsError(late()); else `waiting()` (say what is awaited), sleep."""
    deadline = time.monotonic() + timeout
    while True:
        done = check()
        if done is not None:
            return done
        if time.monotonic() > deadline:
            raise AwsError(late())
        waiting()
        sleep(poll)
