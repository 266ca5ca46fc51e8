"""The one wait loop: ask a condition until it holds or a deadline passes; never a bare sleep.

Readiness probes, the AWS waits (devenv/aws/waiting.py) and the tests' `eventually`
(tests/support/wait.py) all wait through `until`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Cancelled(Exception):
    """The wait was called off (Ctrl-C or another component failed)."""


def until(
    check: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.1,
    cancel: threading.Event | None = None,
    alive: Callable[[], bool] | None = None,
) -> T:
    """Ask `check` every `interval` seconds until its answer is truthy, and return that answer.
    Once `timeout` has passed, or `alive` says the awaited process died (no point waiting for a
    corpse), return its last answer (falsy: the caller says what it waited for). `check` is
    always asked once, and once more after the deadline. `cancel` set: raise Cancelled."""
    deadline = time.monotonic() + timeout
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled
        past = time.monotonic() >= deadline
        answer = check()
        if answer or past or (alive is not None and not alive()):
            return answer
        time.sleep(interval)
