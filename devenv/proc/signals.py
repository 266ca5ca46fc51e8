"""The signals that end a supervised run, routed to a handler for the run's duration."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

# Ctrl-C, a `kill`, a closed terminal: each stops the run the same way.
STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def handled(
    handler: Callable[[int], None], signums: tuple[signal.Signals, ...] = STOPPING
) -> Iterator[None]:
    """Call `handler(signum)` on each of `signums` for the block, then restore the previous
    handlers. Only the main thread may set handlers: elsewhere (a test's thread) a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def call(signum: int, _frame: FrameType | None) -> None:
        handler(signum)

    previous = {sig: signal.signal(sig, call) for sig in signums}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
