"""The one wait loop, on a clock of its own: it moves only when the loop sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from devenv import poll


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(poll, "time", fake)
    return fake


def answers(*values: object) -> Callable[[], object]:
    """A check answering `values` in turn, then the last one for ever."""
    queue = list(values)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


def test_returns_the_first_truthy_answer_asking_every_interval(clock: Clock) -> None:
    assert poll.until(answers(None, 0, "", {"status": "ok"}), 10, interval=0.5) == {"status": "ok"}
    assert clock.slept == [0.5, 0.5, 0.5]


def test_past_the_deadline_returns_the_last_answer_after_one_more_check(clock: Clock) -> None:
    asked: list[float] = []

    def check() -> int:
        asked.append(clock.now)
        return 0

    assert poll.until(check, 1.2, interval=0.5) == 0
    assert asked == [1000.0, 1000.5, 1001.0, 1001.5]  # the last one after the deadline


def test_asks_once_even_without_time(clock: Clock) -> None:
    assert poll.until(answers(False, True), 0) is False
    assert clock.slept == []


def test_a_dead_process_ends_the_wait(clock: Clock) -> None:
    alive = iter([True, False])
    assert poll.until(lambda: False, 60, alive=lambda: next(alive)) is False
    assert len(clock.slept) == 1


def test_cancel_stops_the_wait(clock: Clock) -> None:
    cancel = threading.Event()

    def check() -> bool:
        cancel.set()  # another component failed meanwhile
        return False

    with pytest.raises(poll.Cancelled):
        poll.until(check, 60, cancel=cancel)
    assert len(clock.slept) == 1
