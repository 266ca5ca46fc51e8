"""`eventually`: the tests' wait, on the one wait loop (devenv.poll.until)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from devenv import poll

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None], timeout: float = 20, what: str = "", *, interval: float = 0.1
) -> T:
    """Ask `check` every `interval` seconds until it answers something truthy, and return
    that; past `timeout`, fail saying what we waited for and the last answer."""
    answer = poll.until(check, timeout, interval=interval)
    if not answer:
        raise AssertionError(f"not within {timeout:g}s: {what} (last answer: {answer!r})")
    return answer
